"""The target appearing while the model trains (issue 27), in a real browser: a quick-preset run on the Train page
shows the top eigenvector of the verdict's matrix beside the target and redraws it as the run goes on; when it
ends, the Train page's eigenvector is pixel for pixel the one the Eigenvectors page shows."""

from __future__ import annotations

import base64
import io
import re
import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from core.findings import verdict_view
from harness.browser import (
    ROOT,
    after_run,
    error_texts,
    expand,
    go_to,
    launch_chromium,
    require_chromium,
    streamlit_server,
)
from harness.browser import wait_idle as idle

pytestmark = pytest.mark.browser
MAIN = '[data-testid="stMain"]'
LIVE = f'{MAIN} img[alt*="while training"]'
WAIT = 60_000
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    require_chromium()
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("live")
    with streamlit_server(folder / "streamlit.log") as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(url)
        idle(page)
        yield page
        browser.close()


def pixels(page, image) -> np.ndarray:
    """The image's pixels as the server sent them (its PNG, decoded)."""
    src = image.evaluate("i => i.src")
    inline = src.startswith("data:")  # pixel figures travel inside their element (ui.widgets)
    data = base64.b64decode(src.partition(",")[2]) if inline else page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_live_eigenvector_appears_updates_and_ends_as_the_eigenvectors_page_shows_it(page):
    go_to(page, "Train")
    expand(page, "Advanced and classroom options")
    after_run(page, page.get_by_role("button", name="Quick classroom preset").click)
    train = page.locator(".st-key-train_button button").first  # its label says its time
    expect(train).to_be_enabled(timeout=WAIT)
    train.click()
    live = page.locator(LIVE).first
    try:
        expect(live).to_be_visible(timeout=WAIT)  # a picture at once: the initial weights' top eigenvector
    except AssertionError:
        page.screenshot(path=ARTIFACTS / "live_eigenvector_missing.png", full_page=True)
        raise
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while not page.get_by_text("Training finished").is_visible() and time.monotonic() < deadline:
        try:
            alt = live.get_attribute("alt", timeout=500)
        except Exception:  # between two redraws, or the run has just ended
            alt = None
        if alt and (not seen or seen[-1] != alt):
            seen.append(alt)
        time.sleep(0.1)
    expect(page.get_by_text("Training finished")).to_be_visible(timeout=WAIT)
    assert len(seen) >= 3, f"the live eigenvector was redrawn as the run went on: {seen}"
    assert any(re.search(r"\(epoch \d+\)", alt) for alt in seen), seen  # redrawn after a whole epoch, at least
    idle(page)
    assert error_texts(page) == []

    direction, view = verdict_view()
    where = {"augmented": "bias-augmented B", "bias_free": "bias-free block"}[view]
    final = page.locator(f'{MAIN} img[alt^="Top eigenvector of the {where}"][alt*="after training"]').first
    expect(final).to_be_visible(timeout=WAIT)
    on_train = pixels(page, final)

    go_to(page, "Eigenvectors")
    expect(page.locator(MAIN).get_by_text("Your trained model")).to_be_visible(timeout=WAIT)
    name = {"true_minus_false": "True − False", "true": "class 1", "false": "class 0"}[direction]
    if direction != "true_minus_false":
        pytest.skip("the Eigenvectors page opens on True − False; the verdict reads another direction")
    shown = page.locator(f'{MAIN} img[alt^="Top eigenvector of the {where} of {name}"]').first
    expect(shown).to_be_visible(timeout=WAIT)
    assert on_train.shape == (28, 28, 3)
    assert np.array_equal(on_train, pixels(page, shown)), "the Train page ends on the Eigenvectors page's image"
