"""The alpha contract (docs/alpha-contract.md): quantisation, straight alpha, encoders."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import OutputError, VerifyError
from alphacut.stages import compose, encode, verify

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "contract.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_shared_vectors(case):
    h, w = case["height"], case["width"]
    rgba = np.array(case["rgba_in"], np.uint8).reshape(h, w, 4)
    m = np.array(case["mask"], np.float32).reshape(h, w)
    got = compose.apply_mask(rgba, m)
    assert got.reshape(-1).tolist() == case["expected_rgba"]
    flat = compose.flatten(got, tuple(case["background"]))
    assert flat.reshape(-1).tolist() == case["expected_flat"]


def test_vectors_file_is_current(tmp_path, monkeypatch):
    """Regenerating the vectors from today's code gives the committed file (no silent drift)."""
    import make_vectors  # tests/ is on sys.path under pytest's rootdir conftest

    out = tmp_path / "contract.json"
    monkeypatch.setattr(make_vectors, "OUT", out)
    make_vectors.main()
    assert json.loads(out.read_text()) == VECTORS


def test_round_not_truncate():
    rgba = np.full((1, 3, 4), 255, np.uint8)
    m = np.array([[0.9999, 0.5, 0.002]], np.float32)
    a = compose.apply_mask(rgba, m)[..., 3][0].tolist()
    assert a == [255, 128, 1]  # truncation would give 254, 127, 0


def test_input_alpha_times_mask_and_rgb_kept():
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [70, 80, 90, 200]]], np.uint8)
    m = np.array([[1.0, 0.5, 0.75]], np.float32)
    out = compose.apply_mask(rgba, m)
    assert out[..., 3].tolist() == [[0, 64, 150]]  # hidden pixel stays hidden
    assert np.array_equal(out[..., :3], rgba[..., :3])  # RGB untouched, alpha 0 included


def test_flatten_integer_formula():
    px = np.array([[[200, 100, 50, 128]]], np.uint8)
    assert compose.flatten(px, (255, 255, 255)).tolist() == [[[227, 177, 152]]]
    assert compose.flatten(px[..., :4] * 0 + np.array([9, 9, 9, 255], np.uint8), (0, 0, 0)).tolist() == [[[9, 9, 9]]]


def _random_cutout(rng, h=64, w=80):
    rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[: h // 3, :, 3] = 0  # RGB under alpha 0 must survive
    rgba[h // 3 : h // 2, :, 3] = rng.integers(1, 255, (h // 2 - h // 3, w), dtype=np.uint8)
    return rgba


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_lossless_round_trip_keeps_rgb_under_alpha_zero(fmt, rng):
    rgba = _random_cutout(rng)
    data = encode.encode(rgba, fmt)
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    assert np.array_equal(back, rgba)
    verify.verify(data, rgba, lossless=True)


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_grey_and_rgb_round_trip(fmt, rng):
    """Mask-only (grey) and flattened (RGB) outputs: another decoder reads back exactly the
    pixels, and our own check agrees."""
    import imagecodecs

    for px in (rng.integers(0, 256, (20, 30), dtype=np.uint8), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)):
        data = encode.encode(px, fmt)
        back = imagecodecs.avif_decode(data) if fmt == "avif" else np.asarray(Image.open(io.BytesIO(data)))
        if back.ndim == 3 and px.ndim == 2:  # a decoder that expands grey: every channel equal
            assert all(np.array_equal(back[..., c], px) for c in range(3))
        else:
            assert back.shape == px.shape and np.array_equal(back, px)
        verify.verify(data, px, lossless=True)


def test_png_carries_icc_profile(rng):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode.encode(_random_cutout(rng), "png", icc_profile=icc)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == icc


def test_lossy_avif_within_tolerance(rng):
    y, x = np.mgrid[0:64, 0:64]
    rgba = np.dstack([x * 4, y * 4, (x + y) * 2, np.clip(x * 8, 0, 255)]).astype(np.uint8)
    data = encode.encode(rgba, "avif", quality=80)
    verify.verify(data, rgba, lossless=False)
    with pytest.raises(VerifyError):
        verify.verify(data, rgba, lossless=True)  # lossy is not byte-exact, and verify sees it


def test_verify_catches_webp_without_exact(rng):
    """libwebp without `exact` rewrites RGB under alpha 0; verification must refuse that file."""
    rgba = _random_cutout(rng)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "WEBP", lossless=True, exact=False)
    with pytest.raises(VerifyError, match="differ"):
        verify.verify(buf.getvalue(), rgba, lossless=True)


def test_webp_side_limit_is_a_clear_error():
    big = np.zeros((2, 16384, 4), np.uint8)
    with pytest.raises(OutputError, match="16383"):
        encode.encode(big, "webp")


def test_parse_color():
    assert compose.parse_color("#fff") == (255, 255, 255)
    assert compose.parse_color("00ff00") == (0, 255, 0)
    assert compose.parse_color("10,20,30") == (10, 20, 30)
    assert compose.parse_color("red") == (255, 0, 0)
    with pytest.raises(ValueError):
        compose.parse_color("not-a-colour")


@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_one_pixel_mask_encodes(fmt):
    """A 1x1 slice has strides codecs reject unless copied (found by the API's schemathesis run)."""
    import imagecodecs

    rgba = np.array([[[1, 2, 3, 200]]], np.uint8)
    alpha = rgba[..., 3]
    data = encode.encode(alpha, fmt)
    back = imagecodecs.avif_decode(data) if fmt == "avif" else np.asarray(Image.open(io.BytesIO(data)))
    assert back.shape[:2] == (1, 1) and np.all(back[..., :3] == 200 if back.ndim == 3 else back == 200)
    verify.verify(data, alpha, lossless=True)


@pytest.mark.parametrize("q", [40, 60, 85])
def test_lossy_avif_tolerance_follows_quality(q):
    y, x = np.mgrid[0:64, 0:64]
    rgba = np.dstack([x * 4, y * 4, (x + y) * 2, np.clip(x * 8, 0, 255)]).astype(np.uint8)
    verify.verify(encode.encode(rgba, "avif", quality=q), rgba, lossless=False, quality=q)
    assert verify.lossy_tolerance(q) == max(4.0, (100 - q) / 4)


# ------------------------------------------------------------------ the PNG writer and checker


@pytest.mark.parametrize("shape", [(1, 1), (1, 9, 4), (9, 1, 3), (40, 30), (40, 30, 3), (97, 61, 4)])
def test_png_strips_decode_exactly_in_other_decoders(shape, rng, monkeypatch):
    """Strips deflated apart and joined into one stream: Pillow and libpng read every byte."""
    import imagecodecs

    monkeypatch.setattr(encode, "PNG_STRIP_BYTES", 200)  # many strips, some of one row
    px = rng.integers(0, 256, shape, dtype=np.uint8)
    px[: shape[0] // 2] //= 9  # some structure for the filter to find
    data = encode.encode(px, "png")
    assert data.count(b"IDAT") > (2 if shape[0] > 3 else 1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), px)
    assert np.array_equal(imagecodecs.png_decode(data).reshape(px.shape), px)
    verify.verify(data, px, lossless=True)


@pytest.mark.parametrize("png_filter", [8, 16, 32, 64, 128, 248])  # none, sub, up, avg, paeth, adaptive
def test_png_checker_reads_every_row_filter(png_filter, rng):
    """The checker follows each row's filter byte, so libpng's PNGs of any filter pass, and a
    single changed sample in the intended pixels is found at its place."""
    import imagecodecs

    rgba = _random_cutout(rng, 50, 70)
    rgba[10:20] //= 5
    data = imagecodecs.png_encode(rgba, filter=png_filter)
    assert verify._check_png(data, rgba, "x")
    wrong = rgba.copy()
    wrong[33, 44, 2] ^= 1
    with pytest.raises(VerifyError, match=r"differ.*x=44, y=33, channel 2"):
        verify.verify(data, wrong, lossless=True)


def _rechunk(data: bytes, kind: bytes, fn) -> bytes:
    """``data`` with the body of its last ``kind`` chunk passed through fn and the CRC fixed."""
    import struct
    import zlib

    i = data.rindex(kind) - 4
    (n,) = struct.unpack_from(">I", data, i)
    body = fn(data[i + 8 : i + 8 + n])
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return data[:i] + chunk + data[i + 12 + n :]


def test_png_checker_refuses_damaged_files(rng):
    rgba = _random_cutout(rng)
    data = encode.encode(rgba, "png")
    verify.verify(data, rgba, lossless=True)
    damaged = {
        "bad CRC": data[:60] + bytes([data[60] ^ 1]) + data[61:],
        "truncated": data[: len(data) // 2],
        # valid chunks, wrong Adler-32 in the zlib trailer
        "does not inflate.*checksum": _rechunk(data, b"IDAT", lambda b: bytes([b[0] ^ 1]) + b[1:]),
        # a header that promises one row more than the image stream holds
        "holds 63 of 64 rows": _rechunk(encode.encode(rgba[:-1], "png"), b"IHDR", lambda b: b[:4] + (len(rgba)).to_bytes(4, "big") + b[8:]),
    }
    for pattern, bad in damaged.items():
        with pytest.raises(VerifyError, match=pattern):
            verify.verify(bad, rgba, lossless=True)


def test_png_checker_leaves_other_layouts_to_pillow(rng):
    """An interlaced or palette PNG is not read by the fast checker but still verified."""
    rgb = rng.integers(0, 4, (30, 20, 3), dtype=np.uint8) * 80
    pal = io.BytesIO()
    Image.fromarray(rgb).quantize(8).save(pal, "PNG")
    want = np.asarray(Image.open(io.BytesIO(pal.getvalue())).convert("RGB"))
    assert not verify._check_png(pal.getvalue(), want, "x")
    verify.verify(pal.getvalue(), want, lossless=True)
    wrong = want.copy()
    wrong[0, 0, 0] ^= 1
    with pytest.raises(VerifyError, match="differ"):
        verify.verify(pal.getvalue(), wrong, lossless=True)


def _strip_png(px: np.ndarray, rows: int, *, shared_window: bool) -> bytes:
    """A PNG of ``px`` in the writer's layout (header chunk, one IDAT a strip of ``rows``
    Up-filtered rows ending on a sync flush, trailer chunk), deflated by one compressor
    when ``shared_window`` (strips then refer back into earlier ones) or a fresh one a strip."""
    import struct
    import zlib

    h = px.shape[0]
    flat = px.reshape(h, -1)
    filtered = np.empty((h, flat.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=filtered[1:, 1:])
    chunk = encode._png_chunk
    c = {1: 0, 3: 2, 4: 6}[1 if px.ndim == 2 else px.shape[2]]
    parts = [encode.PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", px.shape[1], h, 8, c, 0, 0, 0)),
             chunk(b"IDAT", b"\x78\x01")]
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    for y in range(0, h, rows):
        if not shared_window:
            z = zlib.compressobj(6, zlib.DEFLATED, -15)
        last = y + rows >= h
        body = z.compress(filtered[y : y + rows].tobytes()) + z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        parts.append(chunk(b"IDAT", body))
    parts += [chunk(b"IDAT", struct.pack(">I", zlib.adler32(filtered.tobytes()))), chunk(b"IEND", b"")]
    return b"".join(parts)


def test_png_checker_checks_independent_strips_apart(rng, monkeypatch):
    """The writer's strips are inflated and checked apart (the fast path decides); a stream
    whose strips share one deflate window is left to the sequential check, which reads it;
    a wrong sample is still found at its place either way."""
    px = np.repeat(rng.integers(0, 256, (1, 50, 4), dtype=np.uint8), 60, axis=0)  # repeats: back-references
    px[:, :, 3] = rng.integers(0, 3, (60, 50), dtype=np.uint8)
    decided = []
    fast = verify._check_strips
    monkeypatch.setattr(verify, "_check_strips", lambda *a: decided.append(fast(*a)) or decided[-1])
    monkeypatch.setattr(encode, "PNG_STRIP_BYTES", 50 * 4 * 7)  # 7 rows a strip
    for data in (encode.encode(px, "png"), _strip_png(px, 7, shared_window=False)):
        verify.verify(data, px, lossless=True)
        assert decided.pop() is True
    shared = _strip_png(px, 7, shared_window=True)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(shared))), px)
    verify.verify(shared, px, lossless=True)
    assert decided.pop() is False  # a strip alone does not inflate: the sequential check passed it
    wrong = px.copy()
    wrong[45, 3, 1] ^= 4
    for data in (encode.encode(px, "png"), shared):
        with pytest.raises(VerifyError, match=r"differ.*x=3, y=45, channel 1"):
            verify.verify(data, wrong, lossless=True)
        assert decided.pop() is False
    odd = _strip_png(px[:59], 7, shared_window=False)
    verify.verify(odd, px[:59], lossless=True)
    assert decided.pop() is True  # 8 strips of 7 rows and a last one of 3
