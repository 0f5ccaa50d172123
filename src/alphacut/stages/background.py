"""Background stage: crop to the subject, a background (colour, image, blurred photo), a drop
shadow, flattening (contract rule 11).

The twin of the browser's ``web/background.js``; both pass ``tests/vectors/background.json``.
Integer arithmetic throughout, so the same options give the same bytes on both sides.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Background:
    """kind "color" (color), "image" (path or pixels, x/y position in [0, 1]) or "blur"
    (radius in pixels; None: 2 % of the output's longer side)."""

    kind: str
    color: tuple[int, int, int] | None = None
    image: object = None  # a path, or an (H, W, 3|4) uint8 array
    x: float = 0.5
    y: float = 0.5
    radius: int | None = None


def parse_background(text: str) -> Background:
    """``--background``: a colour (#rrggbb, r,g,b, a name), ``blur`` / ``blur:R``, or the path
    of an image file."""
    from alphacut.stages.compose import parse_color

    t = text.strip()
    m = re.fullmatch(r"blur(?::(\d+))?", t, re.I)
    if m:
        r = int(m.group(1)) if m.group(1) else None
        if r is not None and not 1 <= r <= 1000:
            raise ValueError(f"bad blur radius {r}: 1 to 1000 pixels")
        return Background("blur", radius=r)
    p = Path(t).expanduser()
    if p.is_file():
        return Background("image", image=p)
    try:
        return Background("color", color=parse_color(t))
    except ValueError:
        raise ValueError(f"bad colour or background {text!r}: a colour (#rrggbb, r,g,b or a name), blur, blur:R, or an image file") from None


def padding_pixels(text: str | int | None, box_w: int, box_h: int) -> int:
    """``10`` pixels or ``5%`` of the subject box's longer side (rounded half up)."""
    t = str(text if text is not None else "").strip()
    if not t:
        return 0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%?)", t)
    if not m:
        raise ValueError(f"bad padding {text!r}: give pixels (10) or a percentage (5%)")
    v = float(m.group(1))
    return math.floor(v / 100 * max(box_w, box_h) + 0.5) if m.group(2) else math.floor(v + 0.5)


def crop_box(alpha: np.ndarray, padding: str | int | None = 0, aspect: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), ends exclusive: the pixels with alpha > 0, grown by the padding and
    clipped; widened or heightened to the aspect, centred, moved inside the photo."""
    h, w = alpha.shape
    cols = np.flatnonzero(alpha.any(axis=0))
    if not len(cols):
        return 0, 0, w, h
    rows = np.flatnonzero(alpha.any(axis=1))
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    p = padding_pixels(padding, x1 - x0, y1 - y0)
    x0, y0, x1, y1 = max(0, x0 - p), max(0, y0 - p), min(w, x1 + p), min(h, y1 + p)
    if aspect:
        aw, ah = aspect
        bw, bh = x1 - x0, y1 - y0
        if bw * ah < bh * aw:
            bw = -(-bh * aw // ah)
        else:
            bh = -(-bw * ah // aw)
        bw, bh = min(bw, w), min(bh, h)
        nx = min(max(0, (x0 + x1 - bw) // 2), w - bw)
        ny = min(max(0, (y0 + y1 - bh) // 2), h - bh)
        x0, y0, x1, y1 = nx, ny, nx + bw, ny + bh
    return x0, y0, x1, y1


def box_blur(img: np.ndarray, r: int) -> np.ndarray:
    """Three rounds of a horizontal then a vertical box of 2r+1 (edges repeated), each pass
    rounded as floor((sum + n // 2) / n); (H, W) or (H, W, C) uint8."""
    if r < 1:
        return img
    n = 2 * r + 1
    a = img.astype(np.int32)
    for _ in range(3):
        for axis in (1, 0):
            pad = [(0, 0)] * a.ndim
            pad[axis] = (r + 1, r)
            c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.int32)
            size = a.shape[axis]
            s = np.take(c, np.arange(n, n + size), axis=axis) - np.take(c, np.arange(0, size), axis=axis)
            a = (s + n // 2) // n
    return a.astype(np.uint8)


def cover(image: np.ndarray, w: int, h: int, x: float = 0.5, y: float = 0.5) -> np.ndarray:
    """The largest rectangle of aspect w:h in ``image`` at position (x, y), resized to w x h
    with Pillow's BILINEAR (the model input's filter); RGB uint8."""
    bh, bw = image.shape[:2]
    if bw * h >= bh * w:
        ch, cw = bh, max(1, min(bw, math.floor(bh * w / h + 0.5)))
    else:
        cw, ch = bw, max(1, min(bh, math.floor(bw * h / w + 0.5)))
    sx, sy = math.floor((bw - cw) * x + 0.5), math.floor((bh - ch) * y + 0.5)
    part = Image.fromarray(np.ascontiguousarray(image[sy : sy + ch, sx : sx + cw, :3]), "RGB")
    return np.asarray(part.resize((w, h), Image.BILINEAR))


def shadow_strength(alpha: np.ndarray) -> np.ndarray:
    """k = (blur(alpha moved by (d, d), d) + 1) >> 1, d = max(1, round(longer side / 100))."""
    h, w = alpha.shape
    d = max(1, math.floor(max(w, h) / 100 + 0.5))
    s = np.zeros((h, w), np.uint8)
    s[d:, d:] = alpha[: h - d, : w - d]
    return ((box_blur(s, d).astype(np.int32) + 1) >> 1).astype(np.uint8)


_last_image: list = [None, None]  # (key, pixels) of the last background file decoded


def background_image(source) -> np.ndarray:
    """The RGBA pixels of a background image (a path or bytes), decoded once for a whole
    batch: the last file's pixels are kept while its size and modification time stay the
    same (a batch with ``--background beach.jpg`` decodes it once, not once a photo)."""
    from alphacut.stages.decode import decode

    if not isinstance(source, (str, Path)):
        return decode(source, name="background image").rgba
    path = Path(source)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    held_key, held = _last_image
    if key is not None and key == held_key:
        return held
    rgba = decode(path).rgba
    if key is not None:
        _last_image[:] = [key, rgba]
    return rgba


def _background_pixels(px: np.ndarray, bg: Background) -> np.ndarray:
    h, w = px.shape[:2]
    if bg.kind == "color":
        return np.broadcast_to(np.asarray(bg.color, np.uint8), (h, w, 3))
    if bg.kind == "image":
        img = bg.image if isinstance(bg.image, np.ndarray) else background_image(bg.image)
        return cover(img, w, h, bg.x, bg.y)
    if bg.kind == "blur":
        r = bg.radius if bg.radius else max(1, math.floor(max(w, h) * 0.02 + 0.5))
        return box_blur(px[..., :3], r)
    raise ValueError(f"unknown background {bg.kind!r}")


def compose_file(
    rgba: np.ndarray,
    background: Background | None = None,
    *,
    shadow: bool = False,
    crop: str | int | None = None,
    aspect: tuple[int, int] | None = None,
) -> np.ndarray:
    """The file's pixels (rule 11): cropped when ``crop`` is not None (its padding), then, with
    a background, flattened over it (and the shadow) as opaque RGBA; else the cut-out's own."""
    px = rgba
    if crop is not None:
        x0, y0, x1, y1 = crop_box(rgba[..., 3], crop, aspect)
        px = rgba[y0:y1, x0:x1]
    if background is None:
        if shadow:
            raise ValueError("a shadow needs a background (on transparency it would change RGB)")
        return np.ascontiguousarray(px)
    bgp = _background_pixels(px, background).astype(np.uint32)
    if shadow:
        k = shadow_strength(px[..., 3]).astype(np.uint32)[..., None]
        bgp = (bgp * (255 - k) + 127) // 255
    a = px[..., 3:4].astype(np.uint32)
    out = np.empty(px.shape, np.uint8)
    out[..., :3] = (px[..., :3].astype(np.uint32) * a + bgp * (255 - a) + 127) // 255
    out[..., 3] = 255
    return out
