"""The browser app end to end in Debian's Chromium (headless), driven by Playwright.

One page on a cross-origin-isolated server is shared by the first tests (IS-Net takes
10-20 s per image on two cores with threaded WASM), so the order of the tests matters:
single download → batch ZIP → privacy → offline → parity; then a second visit on the same
origin (model from Cache Storage, single thread), the static build on a bare host (no
COOP/COEP), and WebGPU on SwiftShader. Playwright's wait_for_function evaluates strings,
which the app's CSP forbids, so waits poll with page.evaluate (which CDP runs outside the
page's CSP).
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from .conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

IMAGE_TIMEOUT = 240  # seconds for one image, model load included


def wait_js(page, expr: str, timeout: float = IMAGE_TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        if page.evaluate(expr):
            return
        time.sleep(0.25)
    events = page.evaluate("window.alphacut && window.alphacut.events")
    raise AssertionError(f"timed out waiting for {expr}; events: {events}")


def finished(page) -> int:
    return page.evaluate(
        "window.alphacut.events.filter(e => e.type === 'done' || e.type === 'error').length"
    )


DISPATCH = """([event, files]) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bin = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bin], f.name, { type: f.type }));
  }
  const ev = event === 'paste'
    ? new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true })
    : new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true });
  (event === 'paste' ? document : document.querySelector('#drop')).dispatchEvent(ev);
}"""


def add_and_wait(page, paths, timeout: float | None = None, via: str = "input"):
    """Add files through the file input, a paste on the page, or a drop on the drop zone."""
    before = finished(page)
    if via == "input":
        page.set_input_files("#files", [str(p) for p in paths])
    else:
        import base64

        files = [{"name": p.name, "type": "image/png" if p.suffix == ".png" else "image/jpeg",
                  "b64": base64.b64encode(p.read_bytes()).decode()} for p in paths]
        page.evaluate(DISPATCH, [via, files])
    wait_js(page, f"window.alphacut.events.filter(e => e.type === 'done' || e.type === 'error').length >= {before + len(paths)}",
            timeout or IMAGE_TIMEOUT * len(paths))
    if page.evaluate("window.alphacut.events.some(e => e.type === 'fatal')"):
        raise AssertionError(page.evaluate("window.alphacut.events"))


def card(page, name: str):
    return page.locator("li.card", has=page.locator(".name", has_text=name)).last


def download(page, card_locator, dest: Path) -> Path:
    with page.expect_download() as d:
        card_locator.get_by_role("link", name="Download").click()
    dl = d.value
    path = dest / dl.suggested_filename
    dl.save_as(path)
    return path


def rgba_of(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def check_cutout(out: np.ndarray, src_path: Path) -> None:
    """RGB equals the input everywhere (alpha 0 included), alpha ≤ input alpha, alpha has
    partial values, size unchanged."""
    src = rgba_of(src_path)
    assert out.shape == src.shape, (out.shape, src.shape)
    assert np.array_equal(out[..., :3], src[..., :3]), "RGB changed"
    a = out[..., 3]
    assert (a <= src[..., 3]).all(), "alpha exceeds the input alpha"
    partial = ((a > 0) & (a < 255)).mean()
    assert partial > 0.001, f"no soft edge: {partial:.5f} of pixels partial"
    assert (a == 0).any() and (a == 255).any()


class Recorder:
    """Every request the page and its workers make, with the time it was seen."""

    def __init__(self, context):
        self.requests = []
        context.on("request", lambda r: self.requests.append((time.monotonic(), r.url, r.method, r.post_data_buffer)))


@pytest.fixture(scope="module")
def main_page(browser, server):
    context = browser.new_context(accept_downloads=True)
    rec = Recorder(context)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
    yield {"page": page, "context": context, "rec": rec, "errors": errors, "results": {}}
    context.close()


def test_file_input_to_download(main_page, samples, tmp_path):
    page = main_page["page"]
    page.evaluate("""window.__statuses = [];
        new MutationObserver(() => window.__statuses.push(document.querySelector('#model-status').textContent))
            .observe(document.querySelector('#model-status'), { childList: true, characterData: true, subtree: true });""")
    t = time.time()
    add_and_wait(page, [samples["astronaut"]])
    main_page["cold_s"] = time.time() - t
    # a PNG photo to a PNG cut-out: WebP's, AVIF's and JPEG's codecs were not loaded for it
    # (they load on first use; the service worker's install waits for an idle moment)
    codecs = [r[1] for r in main_page["rec"].requests if any(f"/@jsquash/{k}@" in r[1] for k in ("webp", "avif", "jpeg"))]
    assert not codecs, codecs
    # the model's first request left before the pipeline's modules were asked for: they load
    # once its bytes are coming (worker.js loadPipeline), not before the inference worker starts
    urls = [r[1] for r in main_page["rec"].requests]
    first_model = next(i for i, u in enumerate(urls) if "/models/" in u)
    first_pipeline = next(i for i, u in enumerate(urls) if u.endswith("/pipeline.js"))
    assert first_model < first_pipeline, urls[:first_pipeline + 1]
    # the download's progress in MiB, counted in the bytes that travel (the packed chunks)
    model = page.evaluate("fetch('config.json').then(r => r.json())")["model"]
    total = f"{sum(c.get('packed', c['size']) for c in model['chunks']) / 1048576:.1f}"
    progress = [s for s in page.evaluate("window.__statuses") if s.startswith("Downloading the model: ")]
    assert progress and all(s.endswith(f" of {total} MiB") for s in progress), progress[:3]
    assert progress[-1] == f"Downloading the model: {total} of {total} MiB" and float(total) < 80, progress[-1]
    c = card(page, "astronaut.png")
    assert c.locator(".status").inner_text() == "done"
    out_path = download(page, c, tmp_path)
    assert out_path.name == "astronaut.png"
    assert Image.open(out_path).format == "PNG" and Image.open(out_path).mode == "RGBA"
    out = rgba_of(out_path)
    check_cutout(out, samples["astronaut"])
    main_page["results"]["astronaut"] = out
    # capability panel: threaded WASM, and why WebGPU was skipped
    assert page.locator("#cap-backend").get_attribute("data-backend") == "wasm-threads"
    assert "WASM (multi-threaded), 2 threads" in page.locator("#cap-backend").inner_text() or \
        "WASM (multi-threaded)" in page.locator("#cap-backend").inner_text()
    assert "webgpu: no WebGPU adapter" in page.locator("#cap-skipped").inner_text()
    assert page.locator("#cap-threads").inner_text().find("cross-origin isolated (threads") >= 0
    assert not main_page["errors"], main_page["errors"]


def test_batch_of_three_as_one_zip_and_a_corrupt_file_gets_its_own_card(main_page, samples, tmp_path):
    """Also: changing the format re-encodes the finished photos (no model run) and applies to
    the photos added after it."""
    page = main_page["page"]
    edited = page.evaluate("window.alphacut.events.filter(e => e.type === 'edited').length")
    page.select_option("#format", "webp")  # the finished astronaut becomes astronaut.webp
    add_and_wait(page, [samples["chelsea"], samples["broken"], samples["coffee_rgba"], samples["coffee_jpg"]])
    wait_js(page, f"window.alphacut.events.filter(e => e.type === 'edited').length >= {edited + 1}", 60)
    bad = card(page, "broken.png")
    assert bad.locator(".status").inner_text() == "error"
    assert "cannot decode this PNG file" in bad.locator(".info").inner_text()
    assert bad.get_by_role("link", name="Download").count() == 0 or not bad.get_by_role("link", name="Download").is_visible()
    with page.expect_download() as d:
        page.get_by_role("button", name="Download all").click()
    zpath = tmp_path / d.value.suggested_filename
    d.value.save_as(zpath)
    with zipfile.ZipFile(zpath) as z:
        names = sorted(z.namelist())
        assert names == ["astronaut.webp", "chelsea.webp", "coffee-rgba.webp", "coffee.webp"], names
        for info in z.infolist():
            assert info.compress_type == zipfile.ZIP_STORED  # level 0: stored as encoded
        files = {n: z.read(n) for n in names}
    check_cutout(rgba_of(io.BytesIO(files["chelsea.webp"])), samples["chelsea"])
    assert Image.open(io.BytesIO(files["chelsea.webp"])).format == "WEBP"
    coffee = rgba_of(io.BytesIO(files["coffee-rgba.webp"]))
    check_cutout(coffee, samples["coffee_rgba"])  # hidden RGB under alpha 0 kept by exact WebP
    assert (coffee[:, :40, 3] == 0).all() and (coffee[:, 40:80, 3] <= 128).all()
    # contract rule 9: the input's RGB profile is carried to the WebP output
    icc_in = Image.open(samples["coffee_rgba"]).info["icc_profile"]
    assert Image.open(io.BytesIO(files["coffee-rgba.webp"])).info.get("icc_profile") == icc_in
    assert "icc_profile" not in Image.open(io.BytesIO(files["chelsea.webp"])).info
    assert np.array_equal(rgba_of(io.BytesIO(files["astronaut.webp"])), main_page["results"]["astronaut"])
    # JPEG: decoded by the browser; Chromium and Pillow both use libjpeg-turbo's default
    # (islow IDCT, fancy upsampling), so the RGB is expected to match Pillow's exactly.
    jpg = rgba_of(io.BytesIO(files["coffee.webp"]))
    src = rgba_of(samples["coffee_jpg"])
    assert jpg.shape == src.shape
    diff = np.abs(jpg[..., :3].astype(int) - src[..., :3].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999, f"JPEG RGB differs from Pillow's: max {diff.max()}"
    # back to PNG: the four finished photos are re-encoded, the model does not run again
    done = page.evaluate("window.alphacut.events.filter(e => e.type === 'done').length")
    page.select_option("#format", "png")
    wait_js(page, f"window.alphacut.events.filter(e => e.type === 'edited').length >= {edited + 5}", 120)
    assert page.evaluate("window.alphacut.events.filter(e => e.type === 'done').length") == done
    assert card(page, "coffee-rgba.png").get_by_role("link", name="Download").get_attribute("download") == "coffee-rgba.png"


def test_privacy_every_request_is_local_and_none_carries_images(main_page, samples, server):
    page = main_page["page"]
    reqs = main_page["rec"].requests
    assert reqs, "no requests recorded"
    host = urlparse(server.url).netloc
    names = [p.name for p in samples.values()] + [p.stem for p in samples.values()]
    raw = [p.read_bytes()[8:40] for p in samples.values() if p.suffix == ".png"]
    for _, url, method, body in reqs:
        u = urlparse(url)
        if u.scheme in ("blob", "data"):
            continue
        assert u.scheme == "http" and u.netloc == host, f"request left the local server: {url}"
        assert method in ("GET", "HEAD"), (method, url)
        assert not body, f"request with a body: {url}"
        for n in names:
            assert n not in url, f"file name in a URL: {url}"
        for chunk in raw:
            assert chunk.hex() not in url
    chunks = [r[1].rsplit("/", 1)[1] for r in reqs if "/models/chunks/" in r[1] or "/models/packed/" in r[1]]
    cfg = page.evaluate("fetch('config.json').then(r => r.json())")["model"]
    twice = sorted({c for c in chunks if chunks.count(c) > 1})
    missing = sorted({c["sha256"] for c in cfg["chunks"]} - set(chunks))
    assert sorted(chunks) == sorted(c["sha256"] for c in cfg["chunks"]), (
        f"each chunk of the model is downloaded exactly once: {len(chunks)} requests for "
        f"{len(cfg['chunks'])} chunks, twice {twice}, never {missing}")
    assert not [r for r in reqs if "/models/chunks/" in r[1]], "the server packs every chunk of this model: none plain"
    # After the model is ready (and the service worker's one install, at the first idle
    # moment after it), nothing is requested: the next image makes no network request at all
    # (the previews' blob: URLs are objects in this page's memory).
    wait_js(page, "window.alphacut.events.some(e => e.type === 'sw-ready')", 60)
    n = len(reqs)
    add_and_wait(page, [samples["chelsea"]])
    later = [r[1] for r in reqs[n:] if not r[1].startswith(("blob:", "data:"))]
    assert not later, later


def test_offline_after_first_run(main_page, samples, tmp_path):
    """Offline after the first run, an image pasted onto the page is still cut out."""
    page, context = main_page["page"], main_page["context"]
    context.set_offline(True)
    try:
        add_and_wait(page, [samples["astronaut"]], via="paste")
        c = card(page, "astronaut.png")
        assert c.locator(".status").inner_text() == "done"
        out_path = download(page, c, tmp_path)
        # same photo, same backend: the same bytes as the first run
        assert np.array_equal(rgba_of(out_path), main_page["results"]["astronaut"])
        assert out_path.name == "astronaut (2).png"
    finally:
        context.set_offline(False)


@pytest.mark.model
def test_parity_with_alphacut_remove(main_page, samples):
    """Browser vs `alphacut.remove()` on the same photo: alpha within ±1 on ≥ 99.9 % of pixels.

    Resize (Pillow's fixed-point BILINEAR), normalisation, the float mask upscale and the
    alpha quantisation are exact ports (tests/js proves them byte for byte against Pillow and
    the contract vectors), so the model sees the same tensor. What remains is ONNX Runtime
    itself: ORT Web's WASM SIMD kernels and the native CPU kernels (MLAS) sum in different
    orders and pick different convolution algorithms, so the float mask differs by about
    1e-6..1e-4; where A_in × m lands near a .5 boundary, that flips alpha by one level.
    """
    import alphacut

    ref = alphacut.remove(samples["astronaut"]).rgba
    got = main_page["results"]["astronaut"]
    assert np.array_equal(ref[..., :3], got[..., :3])
    d = np.abs(ref[..., 3].astype(int) - got[..., 3].astype(int))
    within = (d <= 1).mean()
    print(f"parity: {within:.5%} within ±1, {(d == 0).mean():.5%} identical, max diff {d.max()}")
    assert within >= 0.999, f"only {within:.4%} within ±1 (max {d.max()})"


def test_uncertain_badge_and_settle_parity(main_page, samples, tmp_path):
    """Chelsea the cat: a large part of the photo stays uncertain after the settle stage
    (settle.js, the port of settle.py): the card shows a badge that opens the editor with the
    restore brush; the cut-out matches `alphacut.remove()` (settle on both sides) as the
    parity test asks; the astronaut, with nothing uncertain, gets no badge."""
    import alphacut

    page = main_page["page"]
    add_and_wait(page, [samples["chelsea"]])
    c = card(page, "chelsea.png")
    badge = c.locator(".badge.uncertain")
    assert badge.is_visible() and badge.inner_text().endswith("% uncertain")
    ref = alphacut.remove(samples["chelsea"])
    assert ref.uncertain >= 0.02 and badge.inner_text() == f"{round(100 * ref.uncertain)}% uncertain"
    got = rgba_of(download(page, c, tmp_path))
    d = np.abs(ref.rgba[..., 3].astype(int) - got[..., 3].astype(int))
    assert np.array_equal(ref.rgba[..., :3], got[..., :3]) and (d <= 1).mean() >= 0.999, d.max()
    assert not card(page, "astronaut.png").locator(".badge.uncertain").is_visible()
    badge.click()
    assert page.locator("#viewer").is_visible()
    assert page.locator('input[name="tool"][value="restore"]').is_checked()
    page.locator("#viewer-done").click()
    assert not main_page["errors"], main_page["errors"]


def test_second_visit_uses_the_cached_model_and_single_thread(main_page, samples, server, tmp_path):
    """Same origin, new page: the model comes from Cache Storage (no download), and with
    threads=1 the panel says single-thread WASM and why threads were skipped."""
    context = main_page["context"]
    rec = main_page["rec"]
    n = len(rec.requests)
    page = context.new_page()
    try:
        page.goto(server.url + "?backend=wasm&threads=1")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        add_and_wait(page, [samples["chelsea"]], via="drop")  # dropped on the drop zone
        ready = page.evaluate("window.alphacut.events.find(e => e.type === 'ready')")
        assert ready["fromCache"] is True
        assert not [r for r in rec.requests[n:] if "models/" in r[1]], "model downloaded again"
        assert page.locator("#cap-backend").get_attribute("data-backend") == "wasm"
        skipped = page.locator("#cap-skipped").inner_text()
        assert "webgpu: turned off (backend=wasm)" in skipped
        assert "wasm-threads: turned off (threads=1)" in skipped
        out = rgba_of(download(page, card(page, "chelsea.png"), tmp_path))
        check_cutout(out, samples["chelsea"])
    finally:
        page.close()


def test_static_build_without_isolation_still_works(browser, static_site, samples, tmp_path):
    """`alphacut build-site` output on a bare static host under a path prefix, with the 25 MiB
    per-file limit: no COOP/COEP, so no SharedArrayBuffer and no WASM threads; the app falls
    back to one thread, the panel says why, and the cut-out is still exact. The first visit is
    interrupted (one model chunk fails for good): the next try fetches only what is missing.
    One packed chunk on the host is damaged: the page refuses it and fetches that chunk plain."""
    import json

    cfg = json.loads((static_site.root / "sub" / "config.json").read_text())
    chunks = [c["sha256"] for c in cfg["model"]["chunks"]]
    assert cfg["model"]["packing"] and all("packed" in c for c in cfg["model"]["chunks"])
    broken = "/sub/models/packed/" + chunks[len(chunks) // 2]
    static_site.failing = {broken}
    damaged = static_site.root / "sub" / "models" / "packed" / chunks[1]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    damaged.write_bytes(bytes(data))
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(static_site.url + "?retry-delay=10")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        assert page.evaluate("crossOriginIsolated") is False
        page.set_input_files("#files", [str(samples["astronaut"])])
        wait_js(page, "window.alphacut.events.some(e => e.type === 'fatal')")
        first = [p for p, st in static_site.requests if p.startswith("/sub/models/packed/") and st == 200]
        assert broken not in first and len(first) >= 1
        static_site.failing = set()
        n = len(static_site.requests)
        page.set_input_files("#files", [str(samples["astronaut"])])  # add_and_wait would see the fatal above
        wait_js(page, "window.alphacut.events.some(e => e.type === 'done')")
        again = [p for p, _ in static_site.requests[n:] if p.startswith("/sub/models/packed/")]
        assert broken in again and not set(first) & set(again), "chunks fetched before were fetched again"
        assert sorted(first + again) == sorted("/sub/models/packed/" + c for c in chunks)
        plain = [p for p, st in static_site.requests if p.startswith("/sub/models/chunks/") and st == 200]
        assert plain == ["/sub/models/chunks/" + chunks[1]], "the damaged packed chunk was not replaced by the plain one"
        assert not [r for r in static_site.requests if r[1] == 413], "the app asked for a file over 25 MiB"
        assert page.locator("#cap-backend").get_attribute("data-backend") == "wasm"
        assert "not cross-origin isolated" in page.locator("#cap-skipped").inner_text()
        assert "Not cross-origin isolated" in page.locator("#cap-warnings").inner_text()
        out = rgba_of(download(page, card(page, "astronaut.png"), tmp_path))
        check_cutout(out, samples["astronaut"])
    finally:
        context.close()


def tiny_model(path: Path, fp16: bool) -> Path:
    """A small real network with the embedded model's I/O contract at 64x64 (two 3x3 convs and
    a sigmoid, fixed random weights), as float32 or as an fp16-compute graph like IS-Net's
    data-package build. SwiftShader runs the full IS-Net far too slowly for a test (over
    400 s), so the WebGPU path is exercised end to end on this one instead."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    dt = np.float16 if fp16 else np.float32
    w1 = (rng.standard_normal((4, 3, 3, 3)) * 4.0).astype(dt)
    w2 = (rng.standard_normal((1, 4, 3, 3)) * 4.0).astype(dt)
    b1 = np.zeros(4, dt)
    b2 = np.array([0.2], dt)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = []
    x = "input"
    if fp16:
        nodes.append(helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16))
        x = "x16"
    nodes += [
        helper.make_node("Conv", [x, "w1", "b1"], ["c1"], **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], **conv),
        helper.make_node("Sigmoid", ["c2"], ["s" if fp16 else "output"]),
    ]
    if fp16:
        nodes.append(helper.make_node("Cast", ["s"], ["output"], to=TensorProto.FLOAT))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 64, 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    path.with_suffix(".json").write_text('{"input_size": [64, 64], "title": "tiny test net"}')
    return path


def run_page(b, srv, query: str, photo: Path, tmp_path: Path) -> tuple[np.ndarray, dict]:
    """Process ``photo`` in a fresh context of browser ``b``; (downloaded RGBA, capabilities)."""
    context = b.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(srv.url + query)
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        add_and_wait(page, [photo], timeout=120)
        caps = page.evaluate("window.alphacut.caps")
        caps["panel_backend"] = page.locator("#cap-backend").inner_text()
        caps["panel_skipped"] = page.locator("#cap-skipped").inner_text()
        return rgba_of(download(page, card(page, photo.name.rsplit(".", 1)[0] + ".png"), tmp_path)), caps
    finally:
        context.close()


def test_webgpu_backend_and_fallback(playwright_instance, samples, tmp_path):
    """Chromium with --enable-unsafe-webgpu gets SwiftShader's fallback adapter.

    - Default chain: a software adapter is skipped with the reason (WASM is faster there).
    - Forced WebGPU (?backend=webgpu) on a float32 network: ONNX Runtime's WebGPU backend runs
      it and the cut-out matches the WASM one (RGB identical, alpha within ±1 on ≥ 99.5 % of
      pixels: GPU kernels round differently).
    - Forced WebGPU on an fp16-compute network: SwiftShader lacks shader-f16, session creation
      fails, and the app falls back to threaded WASM, says why, and gives exactly the WASM result.
    """
    from alphacut.serve.app import create_app

    from .conftest import Server

    photo = samples["astronaut"]
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--enable-unsafe-webgpu"])
    servers = []
    try:
        for fp16 in (False, True):
            model = tiny_model(tmp_path / f"tiny-{'fp16' if fp16 else 'fp32'}.onnx", fp16)
            srv = Server(create_app(model=str(model)))
            servers.append(srv)
            ref, ref_caps = run_page(b, srv, "?backend=wasm", photo, tmp_path)
            assert ref_caps["backend"]["backend"] == "wasm-threads"
            check_cutout(ref, photo)
            if not fp16:
                _, caps = run_page(b, srv, "", photo, tmp_path)
                if caps["backend"]["backend"] != "webgpu":  # no real GPU here: SwiftShader
                    reason = [s["reason"] for s in caps["skipped"] if s["backend"] == "webgpu"]
                    assert reason and "software (fallback)" in reason[0], reason
                    assert "webgpu: only a software (fallback) WebGPU adapter" in caps["panel_skipped"]
            out, caps = run_page(b, srv, "?backend=webgpu", photo, tmp_path)
            assert np.array_equal(out[..., :3], ref[..., :3])
            if not fp16:
                assert caps["backend"]["backend"] == "webgpu", caps["skipped"]
                assert "WebGPU" in caps["panel_backend"]
                d = np.abs(out[..., 3].astype(int) - ref[..., 3].astype(int))
                print(f"webgpu vs wasm: {(d <= 1).mean():.5%} within ±1, max {d.max()}")
                assert (d <= 1).mean() >= 0.995 and d.max() <= 8
                assert 0 < (ref[..., 3] == 255).mean() < 1  # the tiny net makes a real, partial mask
            else:
                reason = [s["reason"] for s in caps["skipped"] if s["backend"] == "webgpu"]
                assert reason and "session creation failed" in reason[0], reason
                assert caps["backend"]["backend"] == "wasm-threads"
                assert "webgpu: session creation failed" in caps["panel_skipped"]
                assert np.array_equal(out, ref), "the fallback must give exactly the WASM result"
    finally:
        b.close()
        for srv in servers:
            srv.stop()
