"""A page whose connection died comes back by itself, with the student's settings (issue 28, ui/recovery.py).

The page's websocket goes through Playwright (`route_web_socket`, every frame passed on as it is), so the test
can hand the client what killed the Label page in the issue: a reference to an element it does not hold
("Cached ForwardMsg MISS"). Streamlit's client then gives up its connection for good; the connection guard must
reload the page at its address, and the reloaded page must show the threshold the student had set.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from harness.browser import ROOT, go_to, launch_chromium, require_chromium, streamlit_server, wait_idle

pytestmark = pytest.mark.browser
WAIT = 60_000
MISS = "Cached ForwardMsg MISS"


def test_a_dead_page_reloads_itself_with_its_settings():
    require_chromium()
    from playwright.sync_api import sync_playwright
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    log = ROOT / "artifacts" / "recovery"
    log.mkdir(parents=True, exist_ok=True)
    with streamlit_server(log / "streamlit.log") as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sockets, console, loads = [], [], []
        # every frame passes through as it is; the test keeps the route to speak to the page itself
        stream = re.compile(r".*/_stcore/stream$")
        page.route_web_socket(stream, lambda ws: sockets.append((ws, ws.connect_to_server())))
        page.on("console", lambda m: console.append(m.text))
        page.on("load", lambda _: loads.append(page.url))
        page.goto(url)
        wait_idle(page)
        go_to(page, "Label")
        threshold = page.locator('.st-key-threshold input[type="range"]')
        threshold.focus()
        for _ in range(5):
            threshold.press("ArrowRight")
        expect(page).to_have_url(re.compile(r"threshold=0\.45"), timeout=WAIT)
        wait_idle(page)
        assert len(loads) == 1 and len(sockets) == 1

        sockets[-1][0].send(ForwardMsg(ref_hash="feedface" * 4).SerializeToString())  # an element it never had

        for _ in range(WAIT // 250):  # the guard waits 1.5 s and for the server's health check, then reloads
            if len(loads) > 1:
                break
            page.wait_for_timeout(250)
        assert any(MISS in line for line in console), console
        assert len(loads) > 1, "the dead page was not reloaded"
        assert len(loads) == 2, f"one reload: {loads}"
        assert re.search(r"threshold=0\.45", loads[-1]), f"reloaded at the student's address: {loads[-1]}"
        app = page.locator('[data-testid="stApp"]')
        expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=WAIT)
        wait_idle(page)
        assert len(sockets) == 2, "the reloaded page has a connection of its own"
        threshold = page.locator('.st-key-threshold input[type="range"]')
        expect(threshold).to_have_attribute("aria-valuetext", "0.45", timeout=WAIT)  # the setting came back
        expect(threshold).to_be_enabled()
        threshold.focus()
        threshold.press("ArrowLeft")  # and the page answers again
        expect(threshold).to_have_attribute("aria-valuetext", "0.44", timeout=WAIT)
        expect(page).to_have_url(re.compile(r"threshold=0\.44"), timeout=WAIT)
        browser.close()
