"""A queue people can steer, and the page's basics, as a user would: an error card at once
(its message once), cancel / remove / retry per card, "n of N" with an estimate, a format
change re-encoding finished photos without running the model, Clear all; the whole drop
zone opens the picker, touch targets of at least 24 px, a focus ring on the picker's button,
MiB labels, dark mode from the system setting, the Capabilities panel closed on small
screens."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from .test_app import card, download, rgba_of, wait_js

pytestmark = pytest.mark.browser


def events(page, kind):
    return page.evaluate(f"window.alphacut.events.filter(e => e.type === '{kind}')")


def test_queue_steering(browser, server, samples, tmp_path):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "?sw=off")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        page.set_input_files("#files", [str(samples["chelsea"]), str(samples["astronaut"]), str(samples["coffee_jpg"]),
                                        str(samples["broken"])])
        # the corrupt file's card says so at once, before the first photo is done, once
        wait_js(page, "window.alphacut.events.some(e => e.type === 'error')", 30)
        assert not events(page, "done")
        bad = card(page, "broken.png")
        assert bad.locator(".status").inner_text() == "error"
        msg = bad.locator(".info").inner_text()
        assert "broken.png" in msg and bad.inner_text().count(msg) == 1, bad.inner_text()
        assert len(events(page, "error")) == 1
        assert re.fullmatch(r"\d of 4", page.locator("#queue-progress").inner_text()), page.locator("#queue-progress").inner_text()
        # cancel the last queued photo, remove the one after the first
        card(page, "coffee.jpg").get_by_role("button", name="Cancel").click()
        # queued: cancelled at once; already being read ahead of the model: at its next stage
        status = card(page, "coffee.jpg").locator(".status")
        assert status.inner_text() in ("cancelled", "cancelling…")
        status.filter(has_text=re.compile(r"^cancelled$")).wait_for(timeout=60_000)
        wait_js(page, "window.alphacut.events.some(e => e.type === 'done')", 240)
        text = page.locator("#queue-progress").inner_text()
        assert re.fullmatch(r"3 of 3 · about \d+ s left", text), text  # astronaut left; coffee cancelled
        card(page, "astronaut.png").get_by_role("button", name="Remove").click()
        assert page.locator("li.card", has=page.locator(".name", has_text="astronaut.png")).count() == 0
        assert card(page, "coffee.jpg").locator(".status").inner_text() == "cancelled"
        assert page.locator("#queue-progress").inner_text() == "2 of 2 finished"
        # retry: the corrupt file fails again at once; the cancelled photo is cut out
        bad.get_by_role("button", name="Retry").click()
        wait_js(page, "window.alphacut.events.filter(e => e.type === 'error').length >= 2", 30)
        card(page, "coffee.jpg").get_by_role("button", name="Retry").click()
        wait_js(page, "window.alphacut.events.filter(e => e.type === 'done').length >= 2", 240)
        assert card(page, "coffee.jpg").locator(".status").inner_text() == "done"
        # the removed photo stopped (its run ended at the next stage) and the cancelled one was
        # skipped: only chelsea and the retried coffee were ever finished
        assert [e["name"] for e in events(page, "done")] == ["chelsea.png", "coffee.png"]
        assert "MiB" in card(page, "chelsea.png").locator(".info").inner_text()
        png = download(page, card(page, "chelsea.png"), tmp_path / "png")
        # a format change re-encodes the finished photos, without running the model again
        n_done = len(events(page, "done"))
        page.select_option("#format", "webp")
        wait_js(page, "window.alphacut.events.filter(e => e.type === 'edited').length >= 2", 120)
        assert len(events(page, "done")) == n_done
        webp = download(page, card(page, "chelsea.png"), tmp_path / "webp")
        assert webp.name == "chelsea.webp" and png.name == "chelsea.png"
        assert np.array_equal(rgba_of(webp), rgba_of(png))
        # a photo queued before a format change is written in the new format when it is done
        n_edited = len(events(page, "edited"))
        page.set_input_files("#files", [str(samples["astronaut"])])
        page.select_option("#format", "png")
        wait_js(page, f"window.alphacut.events.filter(e => e.type === 'edited').length >= {n_edited + 3}", 240)
        assert [e["name"] for e in events(page, "done")][-1] == "astronaut.webp"  # as queued
        link = card(page, "astronaut.png").get_by_role("link", name="Download")
        assert link.get_attribute("download") == "astronaut.png"
        page.screenshot(path=str(tmp_path / "queue.png"))
        print(f"screenshot: {tmp_path / 'queue.png'}")
        page.get_by_role("button", name="Clear all").click()
        assert page.locator("li.card").count() == 0
        assert page.locator("#download-all").is_disabled()
        assert not errors, errors
    finally:
        context.close()


def test_a_photo_dropped_as_the_page_opens(browser, server, samples, tmp_path):
    """Photos queued, and one taken back, before the page has its worker or before the worker
    has loaded the pipeline's modules (worker.js loadPipeline waits for the model's first
    bytes): the one kept is cut out like any other, and nothing fails on the way."""
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # the model's bytes held back until the photo is removed: the pipeline's modules load
        # on the model's first bytes, so the removal surely comes before them
        held, let_through = [], []

        def hold(route):
            if let_through:
                route.continue_()
            else:
                held.append(route)

        context.route("**/models/**", hold)
        page.goto(server.url + "?sw=off", wait_until="commit")
        wait_js(page, "!!window.alphacut", 30)  # (main.js listens to the picker)
        page.locator("#files").set_input_files([str(samples["chelsea"])])
        wait_js(page, "!!window.alphacut.state.worker", 30)
        page.locator("#files").set_input_files([str(samples["astronaut"])])
        card(page, "astronaut.png").get_by_role("button", name="Remove").click()  # ('drop' to the worker)
        end = time.time() + 30
        while not held and time.time() < end:  # the model's first request has left
            page.wait_for_timeout(50)
        assert held and not events(page, "inited")
        let_through.append(True)
        for route in held:
            route.continue_()
        wait_js(page, "window.alphacut.events.some(e => e.type === 'done' || e.type === 'error')", 240)
        queued = events(page, "queued")[0]["t"]
        removed = events(page, "removed")[0]["t"]
        inited = events(page, "inited")[0]["t"]
        assert queued < removed < inited, (queued, removed, inited)  # (else this test missed its point)
        assert not events(page, "worker-error") and not events(page, "error")
        assert page.locator("li.card").count() == 1
        assert card(page, "chelsea.png").locator(".status").inner_text() == "done"
        out = rgba_of(download(page, card(page, "chelsea.png"), tmp_path))
        src = rgba_of(samples["chelsea"])
        assert out.shape == src.shape and np.array_equal(out[..., :3], src[..., :3])
        assert (out[..., 3] == 0).any() and (out[..., 3] == 255).any()
        assert not errors, errors
    finally:
        context.close()


def test_basics(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, color_scheme="dark")
    small = browser.new_context(viewport={"width": 390, "height": 800}, color_scheme="light")
    try:
        page = context.new_page()
        page.goto(server.url + "?sw=off")
        wait_js(page, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        # dark mode from the system setting
        bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert sum(int(v) for v in re.findall(r"\d+", bg)[:3]) < 120, bg
        # touch targets
        for sel in ("#format", "#preview-mode", "#load-model", "#download-all", "#clear-all"):
            box = page.locator(sel).bounding_box()
            assert box["height"] >= 24, (sel, box)
        # the whole drop zone opens the picker
        with page.expect_file_chooser() as fc:
            page.locator("#drop .hint").click()
        assert fc.value.is_multiple()
        # the focus ring on the button Enter activates (the picker's, via its input)
        page.locator("#files").focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        style = page.evaluate("getComputedStyle(document.querySelector('label[for=files]')).outlineStyle")
        assert style == "solid", style
        assert page.locator("#caps").evaluate("d => d.open") is True
        sp = small.new_page()
        sp.goto(server.url + "?sw=off")
        wait_js(sp, "window.alphacut && window.alphacut.events.some(e => e.type === 'inited')", 60)
        assert sp.locator("#caps").evaluate("d => d.open") is False
    finally:
        context.close()
        small.close()
