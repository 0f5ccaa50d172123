"""What the browser app keeps in memory between photos: the model's worker (ONNX Runtime and
its WASM heap) ends once no photo waits for it, never while one does, and the next photo
starts it again from Cache Storage and gets the same bytes; a finished photo keeps no
full-size pixels in the worker (the editor's side is checked in test_editor.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from .chromium_memory import Peak, anonymous_mappings, chromium_bytes, largest_mapping_bytes
from .test_app import add_and_wait, card, download, rgba_of, wait_js
from .test_editor import open_viewer, wait_count

pytestmark = pytest.mark.browser


def events(page, kind: str) -> list:
    return page.evaluate(f"window.alphacut.events.filter(e => e.type === '{kind}')")


def held(page) -> dict:
    n = len(events(page, "held"))
    page.evaluate("window.alphacut.held()")
    wait_js(page, f"window.alphacut.events.filter(e => e.type === 'held').length > {n}", 30)
    return events(page, "held")[-1]


def test_model_released_when_no_photo_waits_then_the_same_bytes(browser, server, samples, tmp_path):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # ?idle=0: the model goes as soon as no photo waits for it
    page.goto(server.url + "?idle=0")
    wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
    with Peak("pss") as sampler:
        # two photos queued at once: the model stays for the second, then goes
        add_and_wait(page, [samples["astronaut"], samples["chelsea"]])
        wait_js(page, "window.alphacut.events.some(e => e.type === 'released')", 30)
    ready = events(page, "ready")
    assert len(ready) == 1 and not ready[0]["restart"], ready
    order = [e["type"] for e in page.evaluate("window.alphacut.events") if e["type"] in ("done", "released")]
    assert order == ["done", "done", "released"] or order == ["done", "released", "done"], order
    # released after the second photo's inference, not between the two
    assert len(events(page, "released")) == 1
    state = held(page)
    assert state == {**state, "model": False, "photos": 0}, state
    # its memory went back (ONNX Runtime's heap alone is about 0.7 GiB)
    end, seen = time.time() + 20, []
    while time.time() < end:
        seen.append(chromium_bytes("pss"))
        if seen[-1] < sampler.peak - 400 * 2**20:
            break
        time.sleep(0.5)
    print(f"PSS peak {sampler.peak / 2**30:.2f} GiB, after the release {seen[-1] / 2**30:.2f} GiB")
    assert seen[-1] < sampler.peak - 400 * 2**20, ([round(v / 2**30, 2) for v in seen], sampler.peak / 2**30)

    first = download(page, card(page, "astronaut.png"), tmp_path / "a").read_bytes()
    card(page, "astronaut.png").get_by_role("button", name="Remove").click()
    add_and_wait(page, [samples["astronaut"]])
    ready = events(page, "ready")
    assert len(ready) == 2 and ready[1]["restart"] and ready[1]["fromCache"], ready
    infer = [round(e["timings"]["infer"] / 1000, 2) for e in events(page, "done")]
    print(f"model restart: {ready[1]['timings']}; first start {ready[0]['timings']}; inference s {infer}")
    second = download(page, card(page, "astronaut.png"), tmp_path / "b").read_bytes()
    assert second == first
    wait_js(page, "window.alphacut.events.filter(e => e.type === 'released').length === 2", 30)
    assert not errors, errors
    context.close()


def test_model_made_ready_as_the_page_opens_then_released_if_no_photo_comes(browser, server):
    """By default the model is loaded while the person picks a photo (its download, or Cache
    Storage and the session), and goes back after the idle time if none comes; ?preload=off
    leaves it for the first photo."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "?idle=2000")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'ready')", 120)
        assert not events(page, "queued") and not events(page, "done")
        assert page.locator("#load-model").is_disabled()
        wait_js(page, "window.alphacut.events.some(e => e.type === 'released')", 30)
        assert held(page)["model"] is False
        page.goto(server.url + "?preload=off")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        assert held(page)["model"] is False and not events(page, "ready")
        assert page.locator("#model-status").inner_text().startswith("Model not loaded yet")
    finally:
        context.close()


def test_model_heap_after_a_photo(browser, server, samples):
    """ONNX Runtime's WASM heap after a 1024x1024 inference of the default model with two
    threads: 637 MiB with the parallel executor the page asks for, 738 MiB with the sequential
    one (the same output bytes); a WASM memory never shrinks, so its size is the heap's peak."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "?threads=2&idle=60000")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        add_and_wait(page, [samples["astronaut"]])
        assert events(page, "done") and not events(page, "released")
        heap = largest_mapping_bytes("renderer")
        print(f"largest renderer mapping after the photo: {heap / 2**20:.1f} MiB")
        assert 400 * 2**20 < heap < 680 * 2**20, heap / 2**20
    finally:
        context.close()


def test_a_finished_photo_leaves_no_buffer_of_its_pixels(browser, server, tmp_path):
    """Once a photo's file is offered, no buffer of its full-size pixels is left in the page's
    workers for a garbage collection to find (a 12 MP photo's 46 MiB were held beside the next
    photo: Chromium keeps a buffer that came in a message until then, even when detached with
    transfer(0); web/free.js). The photo has an odd size, so that its RGBA buffer's mapping is
    told from the others by its size."""
    from skimage import data

    width, height = 2907, 2111  # 6.1 MP: PNG strips, one band
    photo = tmp_path / "odd.jpg"
    Image.fromarray(data.astronaut()).resize((width, height), Image.BILINEAR).save(photo, quality=90)
    rgba = width * height * 4

    def photo_sized():
        return [m for m in anonymous_mappings("renderer") if rgba <= m < rgba + (1 << 20)]

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "?idle=60000")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        before = photo_sized()
        seen = []  # while it is worked on, its buffers are there
        page.set_input_files("#files", [str(photo)])
        end = time.time() + 120
        while not events(page, "done") and time.time() < end:
            seen.append(len(photo_sized()))
            time.sleep(0.2)
        assert events(page, "done"), page.evaluate("window.alphacut.events")
        assert max(seen) > len(before), "the photo's buffer was never seen: the test misses its point"
        time.sleep(2)
        left = photo_sized()
        print(f"photo-sized mappings before {before}, at most {max(seen)} while it ran, after {left}")
        assert len(left) <= len(before), (left, before)
    finally:
        context.close()


def test_a_large_png_is_decoded_where_its_codec_heap_goes_after(browser, server, tmp_path):
    """png-rs's WASM heap grows to hold the photo it decodes and never shrinks: a large PNG
    with alpha is decoded by a helper worker, ended after its job (pipeline.js decodePhoto),
    so the pipeline worker's heap stays small; with ?band=off (no helpers) it is decoded there
    and the heap holds the photo. An opaque PNG is decoded by the platform (codecs.opaquePng),
    even with ?band=off. (test_finish compares the files of helper and no helper.)"""
    from skimage import data

    width, height = 4000, 3000  # 12 MP: its pixels (48 MB) well over what png-rs needs here for the previews
    rgb = Image.fromarray(data.chelsea()).resize((width, height), Image.BILINEAR)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((width, height)))
    photos = {"alpha": tmp_path / "alpha.png", "opaque": tmp_path / "opaque.png"}
    rgba.save(photos["alpha"], compress_level=1)
    rgb.save(photos["opaque"], compress_level=1)
    heaps = {}
    for name, query in (("alpha", ""), ("alpha", "&band=off"), ("opaque", "&band=off")):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(server.url + "?sw=off" + query)
            wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
            add_and_wait(page, [photos[name]])
            heaps[name + query] = held(page)["codecHeap"]
        finally:
            context.close()
    print(f"png-rs heap in the pipeline worker after a {width}x{height} PNG: {heaps}")
    photo = width * height * 4
    assert heaps["alpha&band=off"] >= photo, heaps  # decoded there, the heap held the pixels
    assert heaps["alpha"] < photo * 3 // 4, heaps
    assert heaps["opaque&band=off"] < photo * 3 // 4, heaps


def test_a_large_webp_is_written_where_its_codec_heaps_go_after(browser, server, tmp_path):
    """libwebp's encoder and decoder heaps grow to hold the photo they write and read back, and
    never shrink: a large WebP is written and checked by the finishing worker's helper, ended
    after its job (pipeline.js writeAway), so no heap of the photo's size is left in the page
    after it. The file: the photo's pixels, RGB kept (rule 7)."""
    from skimage import data

    width, height = 3000, 2000  # 6 MP
    photo = tmp_path / "large.jpg"
    Image.fromarray(data.coffee()).resize((width, height), Image.BILINEAR).save(photo, quality=92)
    rgba = width * height * 4

    def heap_sized():  # WASM heaps and photos of this size, under ONNX Runtime's heap
        return sorted(m for m in anonymous_mappings("renderer") if rgba <= m < 400 * 2**20)

    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(server.url + "?sw=off&idle=60000")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        page.select_option("#format", "webp")
        wait_js(page, "window.alphacut.events.some(e => e.type === 'ready')", 120)
        time.sleep(1)  # (the model's bytes, once in ONNX Runtime, go)
        before = heap_sized()
        add_and_wait(page, [photo])
        done = events(page, "done")[-1]
        assert done["name"] == "large.webp" and done["timings"]["encode"] > 0 and done["timings"]["verify"] > 0, done
        time.sleep(2)
        after = heap_sized()
        print(f"mappings of {rgba / 2**20:.0f}-400 MiB before {before}, after {after}")
        assert len(after) <= len(before), (before, after)
        out = Image.open(download(page, card(page, "large.jpg"), tmp_path))
        assert out.format == "WEBP" and out.size == (width, height)
        src = np.asarray(Image.open(photo).convert("RGB"))
        assert np.abs(np.asarray(out.convert("RGBA"))[..., :3].astype(int) - src).max() <= 1
    finally:
        context.close()


def test_the_editor_reads_and_writes_a_large_photo_where_codec_heaps_go_after(browser, server, tmp_path):
    """The editor decodes a finished photo again (pipeline.rebuild) and writes its file again in
    another format (worker.js saveEdited): for a large PNG with alpha and a WebP file both go
    to the decoding helper, as a photo's first decode does (pipeline.decodeFile, writeAway), so
    the pipeline worker keeps no codec heap of the photo's size (with the decode and the write
    there: png-rs's heap held the photo, libwebp's two more). The WebP (lossless, exact) has
    the pixels of the PNG written first."""
    from skimage import data

    width, height = 3000, 2000  # 6 MP
    photo = tmp_path / "photo.png"
    rgba = Image.fromarray(data.chelsea()).resize((width, height), Image.BILINEAR).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((width, height)))
    rgba.save(photo, compress_level=1)
    size = width * height * 4
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 800})
    try:
        page = context.new_page()
        page.goto(server.url + "?sw=off&idle=60000")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        add_and_wait(page, [photo])
        for d in ("png", "webp"):
            (tmp_path / d).mkdir()
        first = rgba_of(download(page, card(page, "photo.png"), tmp_path / "png"))  # (not over the input)
        heaps = {"done": held(page)["codecHeap"]}
        open_viewer(page, "photo.png")
        heaps["opened"] = held(page)["codecHeap"]
        page.select_option("#edit-format", "webp")
        n = len(events(page, "edited"))
        page.keyboard.press("Escape")
        wait_count(page, "edited", n + 1)
        heaps["saved"] = held(page)["codecHeap"]
        print(f"codec heaps in the pipeline worker, 6 MP photo: {heaps}")
        out = Image.open(download(page, card(page, "photo.png"), tmp_path / "webp"))
        assert out.format == "WEBP" and out.size == (width, height)
        assert np.array_equal(np.asarray(out.convert("RGBA")), first)
        assert heaps["done"] < size and heaps["opened"] <= heaps["done"] and heaps["saved"] <= heaps["done"], heaps
    finally:
        context.close()
