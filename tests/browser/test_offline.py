"""Installable and offline: after one visit (a photo cut out, so the model is in Cache
Storage), a reload with the network cut (the context offline) loads the app from the
service worker's cache and cuts out a photo; the manifest is served and names the app. The
service worker is registered only once the model is ready and no photo is in progress."""

from __future__ import annotations

import time

import pytest

from .test_app import add_and_wait, card, check_cutout, download, rgba_of, wait_js

pytestmark = pytest.mark.browser


def test_reload_offline_after_one_visit(browser, server, samples, tmp_path):
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        # a photo queued while the model loads: the service worker (whose install downloads
        # the app's files) waits until the model is ready and the queue has been idle 3 s
        add_and_wait(page, [samples["chelsea"]])
        assert card(page, "chelsea.png").locator(".status").inner_text() == "done"
        wait_js(page, "window.alphacut.events.some(e => e.type === 'sw-ready')", 120)
        at = page.evaluate("""Object.fromEntries(window.alphacut.events
            .filter(e => ['ready', 'done', 'sw-registered'].includes(e.type)).map(e => [e.type, e.t]))""")
        assert at["sw-registered"] > at["ready"], at
        assert at["sw-registered"] - at["done"] >= 2900, at
        manifest = page.evaluate("""(async () => {
            const link = document.querySelector('link[rel=manifest]');
            const r = await fetch(link.href);
            return { type: r.headers.get('content-type'), body: await r.json() };
        })()""")
        assert manifest["type"].startswith("application/manifest+json")
        assert manifest["body"]["short_name"] == "alphacut" and manifest["body"]["display"] == "standalone"
        # the service worker now controls the page, and its cache holds the app
        wait_js(page, "!!navigator.serviceWorker.controller", 30)

        context.set_offline(True)
        assert page.evaluate("(async () => { try { await fetch('/api/v1/models', {cache: 'no-store'}); return 'online'; } catch (e) { return 'offline'; } })()") == "offline"
        t = time.time()
        page.reload()
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        print(f"offline reload: app ready in {time.time() - t:.1f} s")
        assert page.evaluate("crossOriginIsolated") is True  # COOP/COEP kept in the cached page
        page.screenshot(path=str(tmp_path / "offline-reload.png"))
        print(f"screenshot: {tmp_path / 'offline-reload.png'}")
        add_and_wait(page, [samples["astronaut"]])
        ready = page.evaluate("window.alphacut.events.find(e => e.type === 'ready')")
        assert ready["fromCache"] is True
        out = rgba_of(download(page, card(page, "astronaut.png"), tmp_path))
        check_cutout(out, samples["astronaut"])
        assert not errors, errors
    finally:
        context.set_offline(False)
        context.close()
