"""The main path in a real browser: Home -> Label -> Train (short run) -> Tensor -> Eigenvectors
-> a grid slider and the weight-decay comparison -> Explain (a digit drawn with the mouse) -> Truncation.

Starts `streamlit run` on a free port, drives Debian's chromium with Playwright, asserts that no
error element appears, and saves a screenshot of every page (folder printed at the end).

Every step waits for its own visible effect (Playwright's `expect` retries until it holds or the
timeout passes), never for a fixed time: a busy machine makes the test slower, not flaky.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.config import PRESETS
from harness.browser import (
    ROOT,
    after_run,
    error_texts,
    expand,
    go_to,
    launch_chromium,
    require_chromium,
    streamlit_server,
    wait_idle,
)

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots"))


@pytest.fixture(scope="module")
def page():
    require_chromium()
    from playwright.sync_api import sync_playwright

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    with streamlit_server(SCREENSHOTS / "streamlit.log") as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", record_console)
        page.goto(url)
        wait_idle(page)
        yield page
        browser.close()
    print(f"\nscreenshots: {SCREENSHOTS}")


def record_console(message) -> None:
    """The page's console errors and warnings, printed (pytest shows them with a failing step) and kept in
    the screenshots folder: a frontend that gives up its connection says why there (e.g. a websocket message
    it failed to process), and nothing else records it."""
    if message.type in ("error", "warning"):
        line = f"[browser console, {message.type}] {message.text}"
        print(line)
        with open(SCREENSHOTS / "console.log", "a") as log:
            log.write(line + "\n")


WAIT = 60_000  # ms: generous for a loaded 2-core CI machine; a step that holds returns at once
expect.set_options(timeout=WAIT)  # every expect below, also those that name no timeout
MAIN = '[data-testid="stMain"]'


def snap(page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def assert_clean(page) -> None:
    assert error_texts(page) == []


def metric_value(page, label: str):
    """The value element of the main area's st.metric whose label contains `label`."""
    return page.locator(f'{MAIN} [data-testid="stMetric"]', has_text=label).locator('[data-testid="stMetricValue"]')


def slider(page, key: str):
    return page.locator(f'.st-key-{key} input[type="range"]')


def test_1_home(page):
    expect(page.locator(MAIN).get_by_role("heading", name="Bilinear Eigen Lab", level=1)).to_be_visible(timeout=WAIT)
    expect(page.locator(MAIN).get_by_text("Pretrained seed checkpoint")).to_be_visible(timeout=WAIT)
    assert_clean(page)
    app = re.match(r"https?://[^/]+", page.url).group(0)
    icons = [link.get_attribute("href") or "" for link in page.locator("link[rel~='icon']").all()]
    outside = [href for href in icons if href.startswith(("http:", "https:", "//")) and not href.startswith(app)]
    assert icons and not outside, f"the page icon comes from the app itself, not a CDN: {icons}"
    snap(page, "0_home")


def test_2_label_threshold_changes_the_fraction(page):
    go_to(page, "Label")
    fraction = metric_value(page, "training set")
    expect(fraction).to_have_text("46.2%", timeout=WAIT)  # the seed's labels: target 6, tau 0.40, inverse on
    threshold = slider(page, "threshold")
    threshold.focus()
    for _ in range(5):
        threshold.press("ArrowRight")  # 0.40 -> 0.45
    expect(threshold).to_have_attribute("aria-valuetext", "0.45")
    expect(fraction).not_to_have_text("46.2%", timeout=WAIT)  # the server relabelled
    expect(page).to_have_url(re.compile(r"threshold=0\.45"))  # the partial rerun keeps the address in step
    for _ in range(5):
        threshold.press("ArrowLeft")  # back to the seed's 0.40
    expect(threshold).to_have_attribute("aria-valuetext", "0.40")
    expect(fraction).to_have_text("46.2%", timeout=WAIT)
    expect(page).not_to_have_url(re.compile(r"threshold="))  # back at the default: left out of the link
    wait_idle(page)
    assert_clean(page)
    snap(page, "1_label")


def test_3_train_a_short_run(page):
    go_to(page, "Train")
    expand(page, "Advanced and classroom options")
    preset = page.get_by_role("button", name="Quick classroom preset")
    expect(preset).to_be_visible()
    after_run(page, preset.click)
    # the quick preset's own values (core.config.PRESETS), each different from the paper's default
    quick = PRESETS["quick"]
    wd, lr, batch = f"{quick['weight_decay']:g}", f"{quick['lr']:g}", str(quick["batch_size"])
    expect(slider(page, "lr")).to_have_attribute("aria-valuetext", lr, timeout=WAIT)
    expect(page.locator(".st-key-batch_size input")).to_have_value(batch, timeout=WAIT)
    shown = re.compile(rf"^{re.escape(wd)}(\.?0*)$")  # 3.3 may show as 3.30, 3 as 3.00
    expect(slider(page, "weight_decay")).to_have_attribute("aria-valuetext", shown, timeout=WAIT)
    epochs = page.locator(".st-key-epochs input")
    expect(epochs).to_have_value(str(quick["epochs"]), timeout=WAIT)
    epochs.fill("3")
    after_run(page, lambda: epochs.press("Enter"))
    expect(epochs).to_have_value("3")
    train = page.get_by_role("button", name=re.compile(r"^Train \("))  # "Train (about 5 s)"
    expect(train).to_be_enabled(timeout=WAIT)
    train.click()
    expect(page.get_by_text("Training finished")).to_be_visible(timeout=180_000)
    badge = page.locator(MAIN).get_by_text("Training: weight decay").first
    for setting in (f"weight decay {wd}", "3 epochs", f"lr {lr}", f"batch {batch}", "full MNIST"):  # the preset's model
        expect(badge).to_contain_text(setting, timeout=WAIT)
    expect(page.locator(MAIN).get_by_text("Your trained model")).to_be_visible(timeout=WAIT)
    expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible(timeout=WAIT)
    wait_idle(page)
    assert_clean(page)
    snap(page, "2_train")


def test_4_tensor(page):
    go_to(page, "Tensor")
    error = metric_value(page, "logit")
    expect(error).to_have_text(re.compile(r"^\d\.\de-\d\d$"), timeout=WAIT)  # e.g. 4.4e-14
    assert float(error.inner_text()) < 1e-6  # the live proof: x~^T B x~ = logit + 1
    expect(page.locator(MAIN).get_by_text("Your trained model")).to_be_visible()  # the model trained in step 3
    assert_clean(page)
    snap(page, "3_tensor")


def test_5_eigenvectors(page):
    go_to(page, "Eigenvectors")
    expect(page.locator(MAIN).get_by_text("Your trained model")).to_be_visible(timeout=WAIT)
    expect(page.locator(f'{MAIN} [data-testid="stImage"] img').nth(2)).to_be_visible(timeout=WAIT)
    # a 28×28 figure arrives at one pixel per MNIST pixel and is drawn at its width with nearest neighbours
    drawn = (
        page.locator(f'{MAIN} [data-testid="stImage"] img')
        .nth(1)
        .evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width, getComputedStyle(i).imageRendering]")
    )
    assert drawn == [28, 150, "pixelated"]  # the punchline's top eigenvector (ui.punchline.WIDTH)
    assert_clean(page)
    snap(page, "4_eigenvectors")


def test_6_grid_slider_and_comparison(page):
    # the trained model is not a precomputed one: the sliders wait, folded, and never name a model not shown
    page.locator(MAIN).get_by_text("Instant models: show a precomputed one").click()
    weight_decay = slider(page, "grid_weight_decay")
    expect(weight_decay).to_be_visible(timeout=WAIT)
    weight_decay.focus()
    before = weight_decay.get_attribute("aria-valuetext")
    weight_decay.press("ArrowRight")  # the trained model's grid values -> a precomputed checkpoint
    expect(weight_decay).not_to_have_attribute("aria-valuetext", before or "")
    expect(page.locator(MAIN).get_by_text("Precomputed checkpoint").first).to_be_visible(timeout=WAIT)
    snap(page, "4b_eigenvectors_grid")
    page.get_by_role("tab", name="Compare").click()
    # the target and five weight decays side by side (checkpoints load on first use)
    expect(page.locator(MAIN).get_by_text("weight decay 2 · |cos|").first).to_be_visible(timeout=WAIT)
    expect(page.locator(f'{MAIN} [data-testid="stImage"] img').nth(5)).to_be_visible(timeout=WAIT)
    wait_idle(page)
    assert_clean(page)
    snap(page, "4c_compare_weight_decay")


def test_7_explain_a_drawn_digit(page):
    go_to(page, "Explain", heading="Explain one input")
    page.locator(".st-key-explain_source").get_by_role("radio", name="Draw").click()
    canvas = page.locator(".st-key-explain_canvas canvas.upper-canvas")  # inside the component's shadow DOM
    expect(canvas).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Draw a digit on the black square")).to_be_visible(timeout=WAIT)
    box = canvas.bounding_box()
    assert box is not None
    x, top, bottom = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2, box["y"] + box["height"] * 0.8
    page.mouse.move(x, top)
    page.mouse.down()
    for i in range(1, 21):  # a vertical stroke: a "1", like the target
        page.mouse.move(x + i * 0.5, top + (bottom - top) * i / 20)
    page.mouse.up()
    expect(page.get_by_text("Your drawing").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Difference: Σ − model")).to_be_visible(timeout=WAIT)
    wait_idle(page)
    assert_clean(page)
    snap(page, "5_explain_drawing")


def test_8_truncation(page):
    go_to(page, "Truncation")
    expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible(timeout=WAIT)
    expect(metric_value(page, "Full model (k = all)")).to_have_text(re.compile(r"%$"), timeout=WAIT)
    assert_clean(page)
    snap(page, "6_truncation")
