"""Compose stage: apply the float mask to the original pixels, quantising exactly once.

The alpha contract (docs/alpha-contract.md) in code:
- alpha_out = floor(alpha_in * m + 0.5), computed in float64 so the JS side (which computes
  in float64 numbers) gets the same byte for every input; m is float32 in [0, 1];
- RGB is never touched, alpha 0 included (straight alpha);
- with a background colour, each channel is flattened with integer arithmetic:
  c_out = (c * A + bg * (255 - A) + 127) // 255, and alpha becomes 255.
Work goes in row bands so a 100 MP photo needs no float64 copy of itself.
"""

from __future__ import annotations

import numpy as np

from alphacut import parallel

BAND_PIXELS = 1 << 21  # rows are processed in bands of about 2 MP


def _bands(h: int, w: int):
    rows = max(1, BAND_PIXELS // max(w, 1))
    for y in range(0, h, rows):
        yield slice(y, min(h, y + rows))


#: Pixels per step inside a band: its float64 scratch (512 KB) stays in the CPU cache.
CHUNK_PIXELS = 1 << 16


def _quantise_band(alpha_in: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    """out = floor(alpha_in * mask + 0.5) in float64, as uint8 (out may be alpha_in); a few
    rows at a time through one reused float64 buffer."""
    h, w = mask.shape
    rows = max(1, CHUNK_PIXELS // max(w, 1))
    buf = np.empty((min(rows, h), w), np.float64)
    for y in range(0, h, rows):
        s = slice(y, min(h, y + rows))
        v = buf[: s.stop - y]
        np.multiply(alpha_in[s], mask[s], out=v, dtype=np.float64)  # exact: both widened first
        v += 0.5
        np.floor(v, out=v)
        out[s] = v


def apply_mask(rgba: np.ndarray, mask: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Straight-alpha cut-out: the input RGB, alpha = input alpha × mask (quantised once).
    Band by band on a few threads, each band copied (unless in place: a writable ``rgba``
    becomes the output) and its alpha read before it is written."""
    h, w = mask.shape
    same = in_place and rgba.flags.writeable
    out = rgba if same else np.empty_like(rgba)

    def band(s: slice) -> None:
        if not same:
            out[s] = rgba[s]
        _quantise_band(out[s, :, 3], mask[s], out[s, :, 3])

    parallel.map_ordered(band, _bands(h, w), "alphacut-compose")
    return out


def flatten(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Composite a straight-alpha cut-out over an opaque colour; returns (H, W, 3) uint8."""
    h, w = rgba.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    bg = np.asarray(background, np.uint32)
    for s in _bands(h, w):
        a = rgba[s, :, 3:4].astype(np.uint32)
        c = rgba[s, :, :3].astype(np.uint32)
        out[s] = (c * a + bg * (255 - a) + 127) // 255
    return out


def parse_color(text: str) -> tuple[int, int, int]:
    """'#rrggbb', '#rgb', 'rrggbb', 'r,g,b' or a CSS colour name Pillow knows."""
    from PIL import ImageColor

    t = text.strip()
    if "," in t:
        parts = [int(p) for p in t.split(",")]
        if len(parts) != 3 or any(not 0 <= p <= 255 for p in parts):
            raise ValueError(f"bad colour {text!r}: give three numbers 0-255")
        return tuple(parts)  # type: ignore[return-value]
    if len(t) in (3, 6) and all(ch in "0123456789abcdefABCDEF" for ch in t):
        t = "#" + t
    try:
        return ImageColor.getrgb(t)[:3]
    except ValueError:
        raise ValueError(f"bad colour {text!r}: use #rrggbb, r,g,b or a colour name") from None
