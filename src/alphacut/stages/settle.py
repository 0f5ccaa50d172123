"""Settle stage: decide large half-believed regions of the mask by the photo's own colours.

On soft, low-contrast photos IS-Net sometimes returns a grey 0.2-0.8 over a whole part of
the subject (a dark sweater under a bright head, a second flower behind the first), which
would stay half transparent. Such a region is not an edge: the refine stage's local colour
model sees no confident pixel near it. This stage finds those regions and decides them with
evidence from the whole photo:

1. on a small grid (``GRID`` x ``GRID``, the model's stretched frame reduced), the uncertain
   pixels (``lo < m < hi``) are opened morphologically: what survives is thicker than an edge
   band; components of it that cover at least ``min_area`` of the frame and touch the
   confident subject are the regions to settle;
2. a colour model of the photo: smoothed 3D colour histograms of the confident subject
   (``m >= hi``) and the confident background (``m <= lo``) give each colour a posterior
   ``p = P(subject | colour)``;
3. in the regions the mask rises toward ``p`` by ``|2p - 1|`` where ``p`` is above it: a
   colour the photo clearly shows as subject restores that part; an ambiguous one leaves the
   network's value. The mask is never lowered (colour is weaker evidence than the network
   for removing something it half sees).

It works on the model's output grid, before the float upscale, so its cost does not grow with
the photo (a few tens of ms) and the refine stage then fits the edges at full resolution as
before. What stays uncertain over a large area afterwards is reported (``Settled.uncertain``)
so that the CLI and the API can say so. Measured in docs/quality.md (the colour histogram did
as well as OpenCV's grabCut on the soft-matte set at a hundredth of its cost).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Side of the square working grid (the model's stretched 1024x1024 frame, halved).
GRID = 512


def preload() -> None:
    """Import SciPy's ndimage in the background (0.2 s of CPU, once per process) while the
    model loads, so the first photo's settle stage does not pay for it. Only the first call
    starts the import (the API's per-request Removers call it again)."""
    global _preloading
    with _preload_lock:
        if _preloading:
            return
        _preloading = True
    threading.Thread(target=_import_ndimage, name="alphacut-settle-import", daemon=True).start()


_preload_lock = threading.Lock()
_preloading = False


def _import_ndimage() -> None:
    from scipy import ndimage  # noqa: F401


@dataclass(frozen=True)
class SettleParams:
    lo: float = 0.1  # at or below: confident background
    hi: float = 0.9  # at or above: confident subject; between: uncertain
    thickness: float = 0.01  # opening radius, as a fraction of the grid side: thinner is edge
    min_area: float = 0.005  # a region's least share of the frame
    bins: int = 16  # colour histogram bins per channel
    sigma: float = 1.0  # histogram smoothing, in bins
    notice_area: float = 0.02  # share of the frame still uncertain (thick) that is reported


DEFAULT = SettleParams()


@dataclass
class Settled:
    mask: np.ndarray  # the mask on its input grid, float32
    settled: float  # share of the frame raised by colour (by more than 0.01)
    uncertain: float  # share of the frame that is still a large uncertain region afterwards
    box: tuple[float, float, float, float] | None  # that region's bounds, fractions (x0, y0, x1, y1)

    def notice(self, params: SettleParams = DEFAULT) -> str | None:
        """One line for the user when a large part of the cut-out stays half transparent."""
        if self.uncertain < params.notice_area:
            return None
        return (f"{100 * self.uncertain:.0f}% of the photo stays uncertain (half transparent); "
                "check the cut-out there")


def guide_from_tensor(tensor: np.ndarray, mean, std) -> np.ndarray:
    """The model's input tensor (1, 3, h, w) back to uint8 RGB on the working grid: the photo
    as the model saw it, without keeping or reading the full-resolution pixels again."""
    x = np.asarray(tensor, np.float32)[0]
    if x.shape[1:] == (2 * GRID, 2 * GRID):  # the usual 1024x1024 input: 2x2 block means
        x = (x[:, ::2, ::2] + x[:, 1::2, ::2] + x[:, ::2, 1::2] + x[:, 1::2, 1::2]) * np.float32(0.25)
    x = x.transpose(1, 2, 0) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    rgb = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if rgb.shape[:2] != (GRID, GRID):
        rgb = np.asarray(Image.fromarray(rgb, "RGB").resize((GRID, GRID), Image.Resampling.BOX))
    return rgb


def _grid(m: np.ndarray) -> np.ndarray:
    if m.shape == (GRID, GRID):
        return m
    return np.asarray(Image.fromarray(m, "F").resize((GRID, GRID), Image.Resampling.BOX))


def _components(m: np.ndarray, params: SettleParams):
    """The uncertain pixels opened by a square (what a window of the thickness fits in),
    labelled: (labels, count, pixels per label)."""
    from scipy import ndimage as ndi

    unc = ((m > params.lo) & (m < params.hi)).view(np.uint8)
    size = 2 * max(1, round(params.thickness * max(m.shape))) + 1
    # Opening by a square (separable running min/max).
    thick = ndi.maximum_filter(ndi.minimum_filter(unc, size), size).view(bool)
    lab, n = ndi.label(thick)
    return lab, n, np.bincount(lab.ravel(), minlength=n + 1) if n else None


def thick_uncertain(m: np.ndarray, params: SettleParams = DEFAULT, *, attached: bool = True, components=None) -> np.ndarray:
    """Uncertain pixels thicker than an edge band, in components of at least ``min_area``
    (and, with ``attached``, touching the confident subject). ``components``: the mask's
    ``_components`` already computed (the same mask asked twice)."""
    from scipy import ndimage as ndi

    lab, n, counts = components if components is not None else _components(m, params)
    if n == 0:
        return lab.astype(bool)
    keep = np.zeros(n + 1, bool)
    keep[1:] = counts[1:] >= params.min_area * m.size
    if attached:
        near = ndi.maximum_filter((m >= params.hi).view(np.uint8), 5).view(bool)
        keep &= np.bincount(lab[near], minlength=n + 1) > 0
    return keep[lab]


def colour_posterior(rgb: np.ndarray, m: np.ndarray, params: SettleParams = DEFAULT) -> np.ndarray | None:
    """P(subject | colour) per pixel from smoothed colour histograms of the confident subject
    and background; None when either side has too few pixels to learn from."""
    from scipy import ndimage as ndi

    b = params.bins
    q = (rgb.reshape(-1, 3).astype(np.int32) * b) >> 8
    cell = (q[:, 0] * b + q[:, 1]) * b + q[:, 2]
    hist = []
    for side in (m.ravel() >= params.hi, m.ravel() <= params.lo):
        if np.count_nonzero(side) < 50:
            return None
        h = np.bincount(cell[side], minlength=b**3).reshape(b, b, b).astype(np.float64)
        h = ndi.gaussian_filter(h, params.sigma)
        hist.append(h / h.sum())
    eps = 1e-6
    post = (hist[0] + eps) / (hist[0] + hist[1] + 2 * eps)
    return post.ravel()[cell].reshape(m.shape).astype(np.float32)


def settle(guide: np.ndarray, mask: np.ndarray, params: SettleParams = DEFAULT) -> Settled:
    """Decide the large half-believed regions of ``mask`` (float32, the model's grid) by the
    colours of ``guide`` (uint8 RGB on the working grid); returns the new mask on the input
    grid and what stays uncertain."""
    mask = np.asarray(mask, np.float32)
    m = _grid(mask)
    found = _components(m, params)
    region = thick_uncertain(m, params, components=found)
    settled = 0.0
    out = mask
    if region.any():
        p = colour_posterior(guide, m, params)
        if p is not None:
            # Only upward: colour confirms a half-believed part of the subject; it is not
            # trusted to delete what the network partly sees (measured: lowering lost on
            # every set, and one photo's subject shared its colours with the background).
            delta = np.where(region, np.abs(2 * p - 1) * np.maximum(p - m, 0), 0).astype(np.float32)
            settled = float(np.count_nonzero(delta > 0.01) / delta.size)
            m = m + delta
            found = None  # the mask changed: its uncertain regions are found again
            if mask.shape != m.shape:
                h, w = mask.shape
                delta = np.asarray(Image.fromarray(delta, "F").resize((w, h), Image.Resampling.BILINEAR))
            out = np.clip(mask + delta, 0, 1).astype(np.float32)
    left = thick_uncertain(m, params, attached=False, components=found)
    box = None
    uncertain = float(left.mean())
    if uncertain > 0:
        ys, xs = np.nonzero(left)
        g = float(GRID)
        box = (xs.min() / g, ys.min() / g, (xs.max() + 1) / g, (ys.max() + 1) / g)
    return Settled(out, settled, uncertain, box)
