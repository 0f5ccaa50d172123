"""Two queued photos overlap: the second one's inference starts before the first one's file
is written (finish-worker.js finishes photo N while the model runs photo N+1, which
worker.js read and resized while photo N was inferred), and both
files are byte for byte those of the one-at-a-time pipeline with no helper workers
(`?finish=inline&band=off`: every stage in the model's worker, one photo after another, each
stage over the whole photo; the default splits the resize of these 8.6 MP photos in two
bands, and `band-pixels` lowers the size from which the mask stages are split so that they
are too, band.js)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from .test_app import card, download, wait_js

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An 8.6 MP PNG with input alpha (hidden RGB under alpha 0, a half-transparent band)
    and an 8.6 MP JPEG: large enough that finishing the first takes longer than decoding
    and resizing the second."""
    from skimage import data

    d = tmp_path_factory.mktemp("finish")
    coffee = Image.fromarray(data.coffee()).resize((3600, 2400), Image.LANCZOS)
    rgba = np.dstack([np.asarray(coffee), np.full((2400, 3600), 255, np.uint8)])
    rgba[:, :300, 3] = 0
    rgba[:, 300:600, 3] = 128
    Image.fromarray(rgba, "RGBA").save(d / "first.png", compress_level=1)
    Image.fromarray(data.chelsea()).resize((3600, 2400), Image.LANCZOS).save(d / "second.jpg", quality=92)
    return [d / "first.png", d / "second.jpg"]


def idat_count(png: bytes) -> int:
    n, o = 0, 8
    while o + 8 <= len(png):
        size = int.from_bytes(png[o:o + 4], "big")
        n += png[o + 4:o + 8] == b"IDAT"
        o += 12 + size
    return n


def preview_of(rgba: np.ndarray, side: int = 1600) -> np.ndarray:
    """The page's preview of a cut-out, as resize.js previewRGBA defines it: each preview
    pixel the alpha-weighted mean colour and the mean alpha of its box of source pixels."""
    h, w = rgba.shape[:2]
    f = max(w, h) / side
    pw, ph = max(1, int(np.floor(w / f + 0.5))), max(1, int(np.floor(h / f + 0.5)))
    ys = [(i * h) // ph for i in range(ph)]
    xs = [(i * w) // pw for i in range(pw)]
    a = rgba[..., 3].astype(np.float64)
    wsum = np.add.reduceat(np.add.reduceat(rgba[..., :3].astype(np.float64) * a[..., None], ys, 0), xs, 1)
    asum = np.add.reduceat(np.add.reduceat(a, ys, 0), xs, 1)
    count = np.outer(np.diff(ys + [h]), np.diff(xs + [w]))
    rgb = np.where(asum[..., None] > 0, wsum / np.where(asum > 0, asum, 1)[..., None], 0)
    return np.clip(np.rint(np.dstack([rgb, asum / count])), 0, 255).astype(np.uint8)


def run_pair(browser, server, paths, query, dest):
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "?sw=off" + query)
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        page.set_input_files("#files", [str(p) for p in paths])
        wait_js(page, "window.alphacut.events.filter(e => ['done', 'error', 'fatal'].includes(e.type)).length >= 2", 600)
        done = page.evaluate("window.alphacut.events.filter(e => e.type === 'done')")
        events = page.evaluate("window.alphacut.events.filter(e => e.type !== 'queued')")
        if [e["name"] for e in done] != ["first.png", "second.png"]:  # seen twice under load: the whole record
            print(json.dumps(page.evaluate("window.alphacut.events")))
        assert [e["name"] for e in done] == ["first.png", "second.png"], events
        dest.mkdir()
        files = [download(page, card(page, p.name), dest).read_bytes() for p in paths]
        # each photo's "after" preview (a PNG made for photos over 1600 px a side: its strips
        # made by the strip workers with the file's strips) is its file's, by definition
        for p, f in zip(paths, files):
            src = card(page, p.name).locator("img.after").get_attribute("src")
            b64 = page.evaluate("async (u) => { const job = [...window.alphacut.state.jobs.values()].find((j) => j.afterUrl === u);"
                                " const b = new Uint8Array(await job.afterBlob.arrayBuffer());"
                                " let s = ''; for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));"
                                " return btoa(s); }", src)
            shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))
            assert np.array_equal(shown, preview_of(np.asarray(Image.open(io.BytesIO(f)).convert("RGBA")))), p.name
        assert not errors, errors
        return {e["name"]: e for e in done}, files
    finally:
        context.close()


def test_two_photos_overlap_and_write_the_same_bytes(browser, server, pair, tmp_path):
    # (png-strip-pixels: both runs write these PNGs in png-rs strips on the strip workers)
    done, files = run_pair(browser, server, pair, "&band-pixels=2000000&png-strip-pixels=2000000", tmp_path / "overlapped")
    first, second = done["first.png"]["marks"], done["second.png"]["marks"]
    # the model took the second photo (its tensor sent while the first one was inferred; its
    # inference counted from when the model was free) before the first file was written
    assert first["inferEnd"] <= second["inferStart"] < first["written"], (first, second)
    assert done["first.png"]["timings"]["encode"] > 0 and done["first.png"]["timings"]["infer"] > 0

    inline, alone = run_pair(browser, server, pair, "&finish=inline&band=off&png-strip-pixels=2000000", tmp_path / "inline")
    # one photo after another there: the second's inference after the first's file
    assert inline["second.png"]["marks"]["inferStart"] > inline["first.png"]["marks"]["written"]
    for a, b in zip(files, alone):
        assert a == b
        assert idat_count(a) > 3  # laid out in strips (pipeline.pngWriter), read by Pillow below
    # the input alpha came through the hand-over: hidden RGB kept, the band halved at most
    out = np.asarray(Image.open(tmp_path / "overlapped" / "first.png"))
    src = np.asarray(Image.open(pair[0]))
    assert np.array_equal(out[..., :3], src[..., :3])
    assert (out[:, :300, 3] == 0).all() and (out[:, 300:600, 3] <= 128).all()
