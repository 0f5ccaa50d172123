"""Brush stage: erase or restore parts of the float mask with a stroke (contract rule 10).

The twin of the browser editor's ``web/brush.js``; both pass ``tests/vectors/brush.json``,
so a stroke recorded in the app gives the same float32 mask here. Pixel ``(x, y)`` has its
centre at ``(x + 0.5, y + 0.5)``; a stroke's weight is ``W = w(d)`` with ``d`` the distance
from that centre to the stroke's polyline, ``w = 1`` up to ``radius * (1 - softness)``, 0 from
``radius`` on, linear between. Erase: ``m * (1 - W)``; restore: ``m + (1 - m) * W``; float64,
stored as float32. Segments are combined by the maximum of ``W`` (a stroke applies once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stroke:
    mode: str  # "erase" or "restore"
    radius: float  # image pixels
    softness: float  # 0 = hard edge, 1 = linear fall-off from the centre line
    points: tuple[tuple[float, float], ...]  # image coordinates

    def __post_init__(self):
        if self.mode not in ("erase", "restore"):
            raise ValueError(f"unknown brush mode {self.mode!r}")
        if not self.radius > 0 or not 0 <= self.softness <= 1:
            raise ValueError("the brush radius must be > 0 and its softness within [0, 1]")

    @classmethod
    def from_dict(cls, d: dict) -> Stroke:
        return cls(d["mode"], float(d["radius"]), float(d["softness"]), tuple((float(x), float(y)) for x, y in d["points"]))


def _segment_weight(xs, ys, ax, ay, bx, by, radius, softness) -> np.ndarray:
    """w(distance) for the pixel centres of a box, in the operation order of brush.js."""
    px = xs + 0.5
    py = ys + 0.5
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    if length > 0:
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / length, 0.0, 1.0)
    else:
        t = np.zeros(np.broadcast_shapes(px.shape, py.shape))
    ex = px - (ax + t * dx)
    ey = py - (ay + t * dy)
    d = np.sqrt(ex * ex + ey * ey)
    inner = radius * (1 - softness)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(d <= inner, 1.0, np.where(d >= radius, 0.0, (radius - d) / (radius - inner)))
    return w


def apply_stroke(mask: np.ndarray, stroke: Stroke | dict) -> np.ndarray:
    """Apply one stroke to a float32 (H, W) mask in place; returns the mask."""
    s = Stroke.from_dict(stroke) if isinstance(stroke, dict) else stroke
    if mask.dtype != np.float32 or mask.ndim != 2:
        raise ValueError("the mask must be a 2-D float32 array")
    if not s.points:
        return mask
    h, w = mask.shape
    pts = s.points
    segs = [(pts[0], pts[0])] + list(zip(pts[:-1], pts[1:]))
    r = s.radius
    x0 = max(0, math.floor(min(p[0] for p in pts) - r - 0.5))
    x1 = min(w - 1, math.ceil(max(p[0] for p in pts) + r - 0.5))
    y0 = max(0, math.floor(min(p[1] for p in pts) - r - 0.5))
    y1 = min(h - 1, math.ceil(max(p[1] for p in pts) + r - 0.5))
    if x0 > x1 or y0 > y1:
        return mask
    weights = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.float64)
    for (ax, ay), (bx, by) in segs:
        sx0 = max(x0, math.floor(min(ax, bx) - r - 0.5))
        sx1 = min(x1, math.ceil(max(ax, bx) + r - 0.5))
        sy0 = max(y0, math.floor(min(ay, by) - r - 0.5))
        sy1 = min(y1, math.ceil(max(ay, by) + r - 0.5))
        if sx0 > sx1 or sy0 > sy1:
            continue
        xs = np.arange(sx0, sx1 + 1, dtype=np.float64)[None, :]
        ys = np.arange(sy0, sy1 + 1, dtype=np.float64)[:, None]
        seg = _segment_weight(xs, ys, ax, ay, bx, by, r, s.softness)
        box = weights[sy0 - y0 : sy1 - y0 + 1, sx0 - x0 : sx1 - x0 + 1]
        np.maximum(box, seg, out=box)
    m = mask[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
    new = m * (1 - weights) if s.mode == "erase" else m + (1 - m) * weights
    touched = weights > 0
    mask[y0 : y1 + 1, x0 : x1 + 1][touched] = new[touched].astype(np.float32)
    return mask
