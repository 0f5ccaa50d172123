"""Decode stage: every mode lands as upright straight RGBA; bad input is one clear error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from alphacut.errors import ImageTooLargeError, InputError
from alphacut.stages.decode import decode


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def test_l_and_rgb_get_opaque_alpha(rng):
    g = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    d = decode(_save(Image.fromarray(g, "L"), "PNG"))
    assert d.rgba.shape == (10, 12, 4) and not d.has_alpha
    assert np.array_equal(d.rgba[..., 0], g) and np.array_equal(d.rgba[..., 2], g)
    assert (d.alpha == 255).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_rgb_decodes_as_pillow_converts_it(fmt, rng):
    """RGB files take a shorter path to RGBA (Pillow's padded RGB packed as RGBX): the same
    pixels as Pillow's own RGBA conversion, alpha 255, also after an EXIF rotation."""
    rgb = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 8
    data = _save(Image.fromarray(rgb), fmt, exif=exif.tobytes())
    d = decode(data)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        from PIL import ImageOps

        want = np.asarray(ImageOps.exif_transpose(im).convert("RGBA"))
    assert d.rgba.shape == (47, 33, 4) and not d.has_alpha
    assert np.array_equal(d.rgba, want)


@pytest.mark.parametrize(
    ("kw", "fast"),
    [
        ({"quality": 90}, True),  # 4:2:0
        ({"quality": 95, "subsampling": 0}, True),  # 4:4:4
        ({"quality": 80, "subsampling": 1}, True),  # 4:2:2
        ({"quality": 85, "progressive": True}, False),  # Pillow's path
        ({"quality": 90, "restart_marker_rows": 1}, True),  # restart markers inside the scan
    ],
)
def test_jpeg_fast_decode_matches_pillow(kw, fast, tmp_path):
    """Sequential RGB JPEGs are decoded by libjpeg-turbo straight into a writable RGBA
    array: the very pixels Pillow gives, from a path or bytes, ICC profile carried."""
    from skimage import data as skdata

    from alphacut.stages import decode as decode_module

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    jpeg = _save(Image.fromarray(skdata.astronaut()[:301, :257]), "JPEG", icc_profile=icc, **kw)
    with Image.open(io.BytesIO(jpeg)) as im:
        want = np.asarray(im.convert("RGBA"))
        assert (decode_module._decode_jpeg_rgba(im, jpeg) is not None) == fast
    p = tmp_path / "x.jpg"
    p.write_bytes(jpeg)
    for d in (decode(jpeg), decode(p)):
        assert np.array_equal(d.rgba, want) and d.icc_profile == icc and not d.has_alpha
        assert d.rgba.flags.writeable == fast  # Pillow's own array is read-only


def test_jpeg_scan_completeness_check(rng):
    from alphacut.stages.decode import _jpeg_scan_complete

    jpeg = _save(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    assert _jpeg_scan_complete(jpeg)
    assert _jpeg_scan_complete(jpeg + b"trailing bytes after the image")
    assert not _jpeg_scan_complete(jpeg[:-2])
    assert not _jpeg_scan_complete(jpeg[: len(jpeg) // 2])
    assert not _jpeg_scan_complete(jpeg[:200])


def test_la_keeps_alpha(rng):
    la = rng.integers(0, 256, (8, 9, 2), dtype=np.uint8)
    d = decode(_save(Image.fromarray(la, "LA"), "PNG"))
    assert d.has_alpha and np.array_equal(d.alpha, la[..., 1]) and np.array_equal(d.rgba[..., 1], la[..., 0])


def test_palette_with_transparency():
    p = Image.new("P", (4, 4), 1)
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((0, 0), 0)
    d = decode(_save(p, "PNG", transparency=0))
    assert d.has_alpha
    assert tuple(d.rgba[0, 0]) == (255, 0, 0, 0) and tuple(d.rgba[1, 1]) == (0, 255, 0, 255)


def test_rgba_hidden_rgb_survives(rng):
    rgba = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    d = decode(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert np.array_equal(d.rgba, rgba)


def test_16bit_grey_is_scaled_not_clipped():
    v = np.array([[0, 257, 32896, 65535]], np.uint16)  # 0, 1, 128, 255 after /257
    img = Image.fromarray(v)  # 16-bit grey (mode I;16)
    d = decode(_save(img, "PNG"))
    assert d.rgba[0, :, 0].tolist() == [0, 1, 128, 255]


def test_16bit_rgba_png():
    """A 16-bit RGBA PNG written by imagecodecs (Pillow reads it as 8-bit, top bits)."""
    import imagecodecs

    a = np.zeros((2, 2, 4), np.uint16)
    a[..., 0] = 65535
    a[..., 3] = [[0, 32896], [65535, 257]]
    d = decode(imagecodecs.png_encode(a))
    assert d.rgba[..., 0].tolist() == [[255, 255], [255, 255]]
    assert d.alpha.tolist() == [[0, 128], [255, 1]]


def _png16(samples: np.ndarray, color_type: int, trns: bytes | None = None, exif: bytes | None = None) -> bytes:
    """A 16-bit PNG written chunk by chunk (so a tRNS key and eXIf can be put in)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    if exif is not None:
        out += chunk(b"eXIf", exif)
    return out + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# Values where truncating to the top byte and round(v / 257) differ, and two where they agree.
_V16 = [0x00FF, 0xFF00, 0x7F80, 0x0180, 0x80FF, 0xFFFF, 0x0000]
_R16 = [round(v / 257) for v in _V16]  # 1, 254, 127, 1, 129, 255, 0


@pytest.mark.parametrize("color_type,channels", [(2, 3), (6, 4), (0, 1), (4, 2)])
def test_16bit_png_rounds_every_sample(color_type, channels):
    """The contract: an 8-bit sample is round(v / 257), for every channel of every 16-bit layout
    (Pillow alone drops the low byte of RGB, RGBA and LA PNGs)."""
    v = np.array(_V16, np.uint16)
    a = np.stack([np.roll(v, k) for k in range(channels)], axis=-1)[None]  # (1, 7, channels)
    d = decode(_png16(a if channels > 1 else a[..., 0], color_type))
    r = np.array(_R16, np.uint8)
    want = np.stack([np.roll(r, k) for k in range(channels)], axis=-1)
    if channels >= 3:
        assert d.rgba[0, :, :channels].tolist() == want.tolist()
    else:
        assert d.rgba[0, :, 0].tolist() == want[:, 0].tolist() == d.rgba[0, :, 2].tolist()
    if channels in (2, 4):
        assert d.has_alpha and d.alpha[0].tolist() == want[:, -1].tolist()
    else:
        assert (d.alpha == 255).all()


def test_16bit_png_trns_key_and_orientation():
    """A 16-bit RGB PNG with a tRNS colour key: the key's pixels get alpha 0 (it is compared on
    all 16 bits), and EXIF orientation still applies."""
    a = np.array([[[0x00FF, 0xFF00, 0x7F80], [0x0100, 0x0200, 0x0300]]], np.uint16)  # (1, 2, 3)
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180
    d = decode(_png16(a, 2, trns=struct.pack(">HHH", 0x0100, 0x0200, 0x0300), exif=exif.tobytes()))
    assert d.has_alpha
    assert d.rgba.tolist() == [[[1, 2, 3, 0], [1, 254, 127, 255]]]


@pytest.mark.parametrize("key_mode", ["RGB", "L"])
def test_png_trns_colour_key_is_transparent(key_mode):
    """An 8-bit RGB (or grey) PNG with a tRNS colour key decodes as Pillow's RGBA conversion
    gives: the key colour with alpha 0, its RGB kept, every other pixel opaque."""
    if key_mode == "RGB":
        img = Image.new("RGB", (3, 2), (10, 20, 30))
        img.putpixel((1, 0), (1, 2, 3))
        data = _save(img, "PNG", transparency=(10, 20, 30))
    else:
        img = Image.new("L", (3, 2), 40)
        img.putpixel((1, 0), 7)
        data = _save(img, "PNG", transparency=40)
    d = decode(data)
    with Image.open(io.BytesIO(data)) as im:
        want = np.asarray(im.convert("RGBA"))
    assert d.has_alpha
    assert np.array_equal(d.rgba, want)
    assert d.alpha.tolist() == [[0, 255, 0], [0, 0, 0]]


def test_cmyk_jpeg_becomes_rgb():
    img = Image.new("CMYK", (5, 5), (0, 255, 255, 0))  # red
    d = decode(_save(img, "JPEG", quality=95))
    r, g, b, a = d.rgba[2, 2].tolist()
    assert r > 200 and g < 60 and b < 60 and a == 255
    assert d.icc_profile is None


def test_exif_orientation_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 20))  # white strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    d = decode(_save(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert d.size == (20, 40)
    assert d.rgba[2, 10, 0] > 200 and d.rgba[-3, 10, 0] < 50  # strip now on top


def test_icc_profile_carried():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    d = decode(_save(Image.new("RGB", (3, 3)), "PNG", icc_profile=icc))
    assert d.icc_profile == icc


def test_animated_gif_first_frame_with_notice():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    b = io.BytesIO()
    frames[0].save(b, "GIF", save_all=True, append_images=frames[1:])
    d = decode(b.getvalue(), name="anim.gif")
    assert d.notice and "first frame" in d.notice
    assert d.rgba[0, 0, 0] > 200 and d.rgba[0, 0, 2] < 50


# ---- bad input: one clear line naming the file and the reason ----------------------------


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.png: empty file"):
        decode(p)


def test_text_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello, I am not a photo\n")
    with pytest.raises(InputError, match=r"notes.jpg: not an image"):
        decode(p)


def test_truncated_jpeg(tmp_path, rng):
    data = _save(Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)), "JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.jpg: cannot decode JPEG: truncated"):
        decode(p)


def test_truncated_png(tmp_path, rng):
    data = _save(Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)), "PNG")
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.png: cannot decode PNG"):
        decode(p)


def _png_header_only(w: int, h: int) -> bytes:
    """A tiny PNG that claims w x h pixels: a decompression bomb by its header."""
    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(100_000, 100_000))
    assert p.stat().st_size < 200
    with pytest.raises(ImageTooLargeError, match=r"bomb.png: 100000x100000 is 10000.0 megapixels, over the limit"):
        decode(p)


def test_pixel_limit_is_configurable(rng):
    data = _save(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ImageTooLargeError, match="over the limit of 0.0 MP"):
        decode(data, max_pixels=5000)
    assert decode(data, max_pixels=10_000).size == (100, 100)


def test_unsupported_format(tmp_path):
    p = tmp_path / "doc.pdf"
    Image.new("RGB", (10, 10)).save(p, "PDF")
    with pytest.raises(InputError, match=r"doc.pdf: (format PDF is not supported|not an image)"):
        decode(p)


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        decode(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a directory"):
        decode(tmp_path)
