"""The browser's decoders on inputs where a careless conversion differs from the alpha
contract, run in Chromium on the app's own codec module (no model needed)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest

pytestmark = pytest.mark.browser

DECODE = r"""async (b64) => {
  const main = document.querySelector('script[type=module]').src;
  const codecs = await import(main.replace(/main\.js$/, 'codecs.js'));
  await codecs.preload();
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const img = await codecs.decode(bytes, 'image/png');
  return [img.width, img.height, Array.from(img.data)];
}"""


def _png16(samples: np.ndarray, color_type: int, trns: bytes | None = None) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(h))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def page(browser, server):
    context = browser.new_context()
    p = context.new_page()
    p.goto(server.url)
    yield p
    context.close()


def _decode(page, data: bytes) -> np.ndarray:
    w, h, px = page.evaluate(DECODE, base64.b64encode(data).decode())
    return np.array(px, np.uint8).reshape(h, w, 4)


def test_16bit_png_is_round_v_over_257_like_python(page):
    """0x00FF, 0xFF00, 0x0180, 0x80FF: truncating to the top byte gives 0, 255, 1, 128;
    the contract (and the Python decoder) round(v / 257): 1, 254, 1, 129."""
    from alphacut.stages.decode import decode

    v = np.array([0x00FF, 0xFF00, 0x7F80, 0x0180, 0x80FF, 0xFFFF, 0x0000], np.uint16)
    a = np.stack([v, np.roll(v, 1), np.roll(v, 2), np.roll(v, 3)], axis=-1)[None]
    data = _png16(a, 6)
    got = _decode(page, data)
    want = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    assert got.tolist() == want.tolist()
    assert np.array_equal(got, decode(data).rgba)


def test_png_trns_colour_keys_like_python(page):
    """8-bit and 16-bit RGB PNGs with a tRNS key: the key colour has alpha 0 in both decoders."""
    import io

    from PIL import Image

    from alphacut.stages.decode import decode

    img = Image.new("RGB", (3, 1), (10, 20, 30))
    img.putpixel((1, 0), (1, 2, 3))
    b = io.BytesIO()
    img.save(b, "PNG", transparency=(10, 20, 30))
    a16 = np.array([[[0x00FF, 0xFF00, 0x7F80], [0x0100, 0x0200, 0x0300]]], np.uint16)
    for data, alpha in ((b.getvalue(), [0, 255, 0]), (_png16(a16, 2, struct.pack(">HHH", 0x0100, 0x0200, 0x0300)), [255, 0])):
        got = _decode(page, data)
        assert got[0, :, 3].tolist() == alpha
        assert np.array_equal(got, decode(data).rgba)


def test_opaque_pngs_decoded_by_the_platform_like_python(page):
    """Grey, RGB and palette PNGs at 8 bits with no tRNS go through the platform's decoder
    (codecs.opaquePng, a canvas as for JPEG): lossless, the same pixels as the Python decoder
    even under an ICC profile and a gAMA chunk (neither is applied: rule 9); a PNG with alpha
    does not take that path."""
    import io

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    from skimage import data

    from alphacut.stages.decode import decode

    info = PngInfo()
    info.add(b"gAMA", struct.pack(">I", 100000))  # gamma 1.0: applied, it would change every mid-tone
    rgb = Image.fromarray(data.coffee()).resize((150, 100))
    cases = {
        "rgb": (rgb, {"icc_profile": _swapped_primaries_profile(), "pnginfo": info}),
        "grey": (rgb.convert("L"), {"pnginfo": info}),
        "palette": (rgb.convert("P", palette=Image.ADAPTIVE, colors=200), {}),
        "rgba": (rgb.convert("RGBA"), {}),
    }
    for name, (img, kw) in cases.items():
        buf = io.BytesIO()
        img.save(buf, "PNG", **kw)
        png = buf.getvalue()
        opaque = page.evaluate(OPAQUE, base64.b64encode(png).decode())
        assert opaque == (name != "rgba"), name
        assert np.array_equal(_decode(page, png), decode(png).rgba), name


def test_damaged_opaque_pngs_decided_as_python_does(page):
    """An opaque PNG the platform's decoder refuses goes to png-rs, which decides as before:
    half the image data gone, or only the IEND chunk (Pillow reads that one), is an error
    with the file's kind named. An image data chunk with a bad CRC is read, as Pillow reads it."""
    import io

    from PIL import Image
    from playwright.sync_api import Error
    from skimage import data

    from alphacut.stages.decode import decode

    buf = io.BytesIO()
    Image.fromarray(data.coffee()).save(buf, "PNG")
    png = buf.getvalue()
    for cut in (png[: len(png) // 2], png[:-12]):
        with pytest.raises(Error, match="cannot decode this PNG file"):
            _decode(page, cut)
    bad_crc = bytearray(png)
    idat = png.index(b"IDAT")
    size = struct.unpack(">I", png[idat - 4: idat])[0]
    bad_crc[idat + 4 + size] ^= 0xFF
    assert np.array_equal(_decode(page, bytes(bad_crc)), decode(bytes(bad_crc)).rgba)


OPAQUE = r"""async (b64) => {
  const main = document.querySelector('script[type=module]').src;
  const codecs = await import(main.replace(/main\.js$/, 'codecs.js'));
  return codecs.opaquePng(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
}"""


DECODE_JPEG = r"""async (b64) => {
  const main = document.querySelector('script[type=module]').src;
  const codecs = await import(main.replace(/main\.js$/, 'codecs.js'));
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const img = await codecs.decode(bytes, 'image/jpeg');
  return [img.width, img.height, Array.from(img.data)];
}"""


def _swapped_primaries_profile() -> bytes:
    """Pillow's sRGB profile with its red and green colorants swapped: a valid RGB profile
    that any colour conversion would visibly apply."""
    from PIL import ImageCms

    b = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    tags = {}
    for i in range(struct.unpack(">I", b[128:132])[0]):
        sig, off, size = struct.unpack(">4sII", b[132 + 12 * i: 144 + 12 * i])
        tags[sig] = (132 + 12 * i, off, size)
    (r, r_off, r_size), (g, g_off, g_size) = tags[b"rXYZ"], tags[b"gXYZ"]
    b[r + 4: r + 12] = struct.pack(">II", g_off, g_size)
    b[g + 4: g + 12] = struct.pack(">II", r_off, r_size)
    return bytes(b)


@pytest.mark.parametrize("profile", [False, True], ids=["plain", "icc"])
def test_jpeg_pixels_are_the_files_without_colour_conversion(page, profile):
    """A JPEG's pixels are the file's own values, as Pillow decodes them, even under an ICC
    profile (the profile is carried to the output, never applied: rule 9). (Copying them out
    through a WebCodecs VideoFrame instead of a canvas gave the same bytes 50-100 ms sooner at
    48 MP, but raised that photo's peak PSS by about 0.2 GiB: not kept.)"""
    import io

    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.coffee()).save(buf, "JPEG", quality=92, **({"icc_profile": _swapped_primaries_profile()} if profile else {}))
    w, h, px = page.evaluate(DECODE_JPEG, base64.b64encode(buf.getvalue()).decode())
    got = np.array(px, np.uint8).reshape(h, w, 4)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert (w, h) == (600, 400) and (got[..., 3] == 255).all()
    assert np.abs(got[..., :3].astype(int) - want).max() <= 1


def test_a_codec_that_cannot_load_is_reported_and_loaded_next_time(browser, server):
    """WebP's codec loads on first use: when its files cannot be fetched (offline before the
    service worker has them), decoding a WebP says so, not that the file is damaged, and the
    next attempt loads it and decodes the same pixels as Python."""
    import io

    from PIL import Image

    from alphacut.stages.decode import decode

    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 3] = 200, np.arange(4) * 60, [[0, 90, 180, 255]] * 3
    b = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(b, "WEBP", lossless=True, exact=True)
    context = browser.new_context()
    try:
        p = context.new_page()
        p.goto(server.url + "?sw=off")
        blocked = []
        p.route("**/@jsquash/webp@*/**", lambda route: (blocked.append(route.request.url), route.abort()))
        with pytest.raises(Exception, match="could not load the WEBP codec") as e:
            _decode(p, b.getvalue())
        assert "damaged" not in str(e.value) and blocked
        p.unroute("**/@jsquash/webp@*/**")
        got = _decode(p, b.getvalue())
        assert np.array_equal(got, decode(b.getvalue()).rgba) and got[0, :, 3].tolist() == [0, 90, 180, 255]
    finally:
        context.close()
