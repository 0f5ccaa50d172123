"""Decode stage: any supported file → straight RGBA uint8 pixels, upright, plus its ICC profile.

Pillow does the decoding. What this module adds is what naive code gets wrong: the pixel
limit is checked from the header before any pixel is decoded; EXIF orientation is applied;
16-bit samples are scaled (x / 257, rounded), not clipped; palette transparency, tRNS colour keys and LA keep
their alpha; CMYK is converted through its ICC profile when it has one. The result is always
straight (non-premultiplied) RGBA, so later stages handle one layout only.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from alphacut.errors import ImageTooLargeError, InputError

#: Default pixel limit (width × height). 100 MP photos pass; above it we refuse before decoding.
DEFAULT_MAX_PIXELS = int(os.environ.get("ALPHACUT_MAX_PIXELS", 120_000_000))

SUPPORTED_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "TGA", "PPM"}

#: File name extensions of image formats: a folder run treats such a file as an image even
#: when Pillow cannot identify it (then it fails with a reason instead of being skipped).
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".webp", ".gif", ".bmp", ".dib", ".tif",
                    ".tiff", ".avif", ".avifs", ".tga", ".ppm", ".pgm", ".pbm", ".pnm", ".heic", ".heif"}

# Pillow's own bomb guard is replaced by ours, which gives a clear message with the limit.
Image.MAX_IMAGE_PIXELS = None


@dataclass
class DecodedImage:
    rgba: np.ndarray  # (H, W, 4) uint8, straight alpha, upright
    has_alpha: bool  # the source carried an alpha channel or transparency
    icc_profile: bytes | None  # RGB profile to carry to the output, if any
    format: str  # Pillow's format name of the source
    notice: str | None = None  # e.g. "animated: first frame used"

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]

    @property
    def alpha(self) -> np.ndarray:
        return self.rgba[..., 3]


def open_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """Open lazily (header only). Raises InputError with the file name and the reason."""
    if isinstance(source, Image.Image):
        return source
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        if isinstance(source, bytes):
            if not source:
                raise InputError(f"{label}: empty input (0 bytes)")
            return Image.open(io.BytesIO(source))
        path = Path(source)
        if path.is_dir():
            raise InputError(f"{label}: is a directory, not an image")
        if path.stat().st_size == 0:
            raise InputError(f"{label}: empty file (0 bytes)")
        return Image.open(path)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{label}: not an image Pillow can identify (unsupported format or not an image)") from None
    except OSError as e:
        raise InputError(f"{label}: cannot read: {e.strerror or e}") from None
    except Exception as e:  # a malformed header can make a plugin raise anything
        raise InputError(f"{label}: not a readable image ({type(e).__name__}: {e})") from None


def looks_like_image(path: Path) -> bool:
    """Whether a file found in a folder is an image to cut out (or to report as broken), as
    opposed to a file that is no image at all (notes, sidecars, videos), which a folder run
    skips: an image extension, or a header Pillow identifies."""
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return True
    try:
        with Image.open(path):
            return True
    except Exception:  # noqa: BLE001 - anything Pillow cannot identify is not an image here
        return False


def check_pixels(img: Image.Image, label: str, max_pixels: int | None) -> None:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise InputError(f"{label}: image has no pixels ({w}x{h})")
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if limit and w * h > limit:
        raise ImageTooLargeError(
            f"{label}: {w}x{h} is {w * h / 1e6:.1f} megapixels, over the limit of "
            f"{limit / 1e6:.1f} MP (raise it with --max-pixels or ALPHACUT_MAX_PIXELS)"
        )


def _to_rgba(img: Image.Image) -> tuple[np.ndarray, bool, bytes | None]:
    icc = img.info.get("icc_profile") or None
    mode = img.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.uint32 if mode == "I" else np.uint16).astype(np.float32)
        if mode == "I" and a.max(initial=0) <= 255:
            g = a.astype(np.uint8)  # 8-bit data stored as 32-bit ints
        else:
            g = np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
        rgba = np.empty(g.shape + (4,), np.uint8)
        rgba[..., :3] = g[..., None]
        rgba[..., 3] = 255
        return rgba, False, None
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        g = np.clip(np.rint(a * 255.0 if a.max(initial=0) <= 1.0 else a), 0, 255).astype(np.uint8)
        rgba = np.dstack([g, g, g, np.full_like(g, 255)])
        return rgba, False, None
    if mode == "CMYK":
        if icc:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                dst = ImageCms.createProfile("sRGB")
                img = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
            except (ImageCms.PyCMSError, OSError):
                img = img.convert("RGB")
        else:
            img = img.convert("RGB")
        icc = None  # the CMYK profile does not describe RGB output
    elif mode == "RGBa":
        img = img.convert("RGBA")  # un-premultiply
    elif mode == "La":
        img = img.convert("LA")
    if img.mode == "RGB" and "transparency" not in img.info:  # a tRNS colour key needs convert()
        # Pillow stores RGB as 4 bytes a pixel with an opaque pad byte: packed as RGBX, that
        # is RGBA with alpha 255 in one copy, without a converted image beside it (at 48 MP
        # 0.3-0.4 s and 192 MB less). Checked, as the pad is Pillow's business.
        rgbx = np.frombuffer(img.tobytes("raw", "RGBX"), np.uint8).reshape(img.size[1], img.size[0], 4)
        if rgbx[..., 3].min(initial=255) == 255:
            return rgbx, has_alpha, icc
    if img.mode != "RGBA":
        if icc and img.mode in ("L", "LA"):
            icc = None  # a grey profile does not describe RGB output
        img = img.convert("RGBA")
    # np.asarray takes Pillow's fast export (np.array re-copies through a slow path: 4x slower
    # at 48 MP); the result may be read-only, and the compose stage copies it if so.
    return np.asarray(img, dtype=np.uint8), has_alpha, icc


def _is_png16(img: Image.Image) -> bool:
    """A 16-bit-per-sample PNG, which Pillow reads as 8-bit by dropping the low byte (and then
    misses a 16-bit tRNS colour key): its raw mode is ``RGB;16B``, ``RGBA;16B``, ``LA;16B``…"""
    if img.format != "PNG" or not img.tile:
        return False
    raw = img.tile[0].args if hasattr(img.tile[0], "args") else img.tile[0][3]
    raw = raw[0] if isinstance(raw, tuple) else raw
    return isinstance(raw, str) and raw.endswith("16B")


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _decode_png16(img: Image.Image, source: str | os.PathLike | bytes) -> tuple[np.ndarray, bool, bytes | None]:
    """A 16-bit PNG decoded by libpng (through imagecodecs, which also expands a tRNS key to
    alpha) and scaled to 8 bits as the contract says, ``round(v / 257)``, upright."""
    import imagecodecs

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    a = imagecodecs.png_decode(data)
    if a.ndim == 2:
        a = a[..., None]
    # round(v / 257) in integers: v / 257 is never exactly k + 0.5, so (v + 128) // 257 is exact
    a8 = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    h, w, c = a8.shape
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = a8[..., :3] if c >= 3 else a8[..., :1]
    rgba[..., 3] = a8[..., -1] if c in (2, 4) else 255
    icc = img.info.get("icc_profile") or None
    if icc and c < 3:
        icc = None  # a grey profile does not describe RGB output
    turn = _TRANSPOSE.get(img.getexif().get(0x0112, 1))
    if turn is not None:
        rgba = np.asarray(Image.fromarray(rgba, "RGBA").transpose(turn))
    return rgba, c in (2, 4), icc


def _jpeg_scan_complete(data: bytes) -> bool:
    """Whether a sequential JPEG's data holds an end-of-image marker after its first scan.

    libjpeg fills a truncated scan with grey and only warns (imagecodecs passes no warning
    on), so the fast decode below first checks that the scan is complete. Marker segments
    are walked up to the first start-of-scan; after it a sequential JPEG holds only
    entropy-coded data, in which 0xFF is always followed by 0x00 or a restart marker, so
    0xFF 0xD9 there is the end of the image."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", i + 2) != -1
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return False


def _decode_jpeg_rgba(img: Image.Image, source: str | os.PathLike | bytes) -> np.ndarray | None:
    """An upright, sequential RGB JPEG decoded by libjpeg-turbo (through imagecodecs) straight
    into a writable RGBA array (alpha 255), or None to let Pillow decode it.

    Pillow decodes into its own image and then copies it out (``tobytes``), and the array it
    gives is read-only, so the compose stage must copy it again: at 48 MP this path saves
    about 0.3 s and a 192 MB copy. Same library, same default IDCT and upsampling as
    Pillow's: the pixels are the same (tested). Everything else (progressive, rotated, CMYK,
    grey, MPO, incomplete files) takes Pillow's path, which also words the errors."""
    if img.format != "JPEG" or img.mode != "RGB" or "progressive" in img.info or "progression" in img.info:
        return None
    if img.getexif().get(0x0112, 1) != 1:
        return None
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if not _jpeg_scan_complete(data):
            return None
        import imagecodecs

        w, h = img.size
        out = np.empty((h, w, 4), np.uint8)
        imagecodecs.jpeg8_decode(data, outcolorspace="RGBA", out=out)
        return out
    except Exception:  # any doubt: Pillow decodes it, and reports what is wrong
        return None


def decode(
    source: str | os.PathLike | bytes | Image.Image,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
) -> DecodedImage:
    """Decode ``source`` to upright straight RGBA. Every failure is an ``InputError``."""
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<image>")
    img = open_image(source, label)
    fmt = img.format or "RAW"
    if img.format is not None and fmt not in SUPPORTED_FORMATS:
        raise InputError(f"{label}: format {fmt} is not supported")
    check_pixels(img, label, max_pixels)
    notice = None
    try:
        if getattr(img, "n_frames", 1) > 1:
            notice = f"{label}: animated {fmt} with {img.n_frames} frames; only the first frame was cut out"
            img.seek(0)
        if not isinstance(source, Image.Image):
            fast = _decode_jpeg_rgba(img, source)
            if fast is not None:
                icc = img.info.get("icc_profile") or None
                img.close()
                return DecodedImage(rgba=fast, has_alpha=False, icc_profile=icc, format=fmt, notice=notice)
            if _is_png16(img):
                rgba, has_alpha, icc = _decode_png16(img, source)
                img.close()
                return DecodedImage(rgba=rgba, has_alpha=has_alpha, icc_profile=icc, format=fmt, notice=notice)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when upright already
            rgba, has_alpha, icc = _to_rgba(img)
    except InputError:
        raise
    except MemoryError:
        raise ImageTooLargeError(f"{label}: not enough memory to decode {img.size[0]}x{img.size[1]}") from None
    except Exception as e:  # codec plugins raise OSError, SyntaxError, RuntimeError, struct.error…
        reason = str(e) or type(e).__name__
        if "truncated" in reason.lower() or isinstance(e, EOFError):
            reason = f"truncated or corrupt file ({reason})"
        raise InputError(f"{label}: cannot decode {fmt}: {reason}") from None
    return DecodedImage(rgba=rgba, has_alpha=has_alpha, icc_profile=icc, format=fmt, notice=notice)


def decode_rgb_for_model(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
    min_pixels: int = 0,
    model_size: tuple[int, int] | None = None,
    reduced_only: bool = False,
) -> tuple[Image.Image, tuple[int, int]] | None:
    """Upright RGB Pillow image of an 8-bit RGB/RGBA/grey file over ``min_pixels``, made to
    be resized to the model's input, without the RGBA array; and the photo's full upright
    size (w, h).

    The model only needs the RGB, and these modes convert to it exactly as ``decode`` would
    (no scaling, no colour transform), so a large photo can be resized for the model with
    one copy of its pixels instead of three. A JPEG is decoded at a reduced scale where both
    sides stay at least ``model_size`` (libjpeg's DCT scaling by 1/2, 1/4 or 1/8: an
    averaging reduction, 0.13 s instead of 0.33 s at 48 MP, and the resize that follows
    reads 16x fewer pixels). Returns None for smaller photos and other modes (16-bit, CMYK,
    palette…), which then take the full ``decode``, and with ``reduced_only`` for files that
    cannot be decoded at a reduced scale (then the full decode serves both); a file that
    cannot be opened raises the same ``InputError`` as ``decode``.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<image>")
    img = open_image(source, label)
    w, h = img.size
    fmt = img.format or "RAW"
    if (w * h <= min_pixels or fmt not in SUPPORTED_FORMATS or img.mode not in ("RGB", "RGBA", "L")
            or _is_png16(img)):
        img.close()
        return None
    check_pixels(img, label, max_pixels)
    full = (h, w) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)  # as exif_transpose turns it
    try:
        if model_size and fmt in ("JPEG", "MPO"):
            side = max(model_size)  # square: the same reduction whatever the EXIF rotation
            img.draft(img.mode, (side, side))
        if reduced_only and img.size == (w, h):
            img.close()
            return None
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:
        img.close()
        return None  # let the full decode report it
    return (img if img.mode == "RGB" else img.convert("RGB")), full
