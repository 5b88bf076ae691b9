"""The main path in a real browser: Home -> Label -> Train (short run) -> Tensor -> Eigenvectors
-> a grid slider and the weight-decay comparison -> Explain (a digit drawn with the mouse) -> Truncation.

Starts `streamlit run` on a free port, drives Debian's chromium with Playwright, asserts that no
error element appears, and saves a screenshot of every page (folder printed at the end).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser_support import CHROMIUM, ROOT, error_texts, go_to, launch_chromium, streamlit_server, wait_idle

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots"))


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (run `make test` as root to install it)")
    from playwright.sync_api import sync_playwright

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    with streamlit_server(SCREENSHOTS / "streamlit.log") as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_idle(page)
        yield page
        browser.close()
    print(f"\nscreenshots: {SCREENSHOTS}")


def snap(page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def assert_clean(page) -> None:
    assert error_texts(page) == []


def test_1_home(page):
    assert page.get_by_text("Bilinear Eigen Lab").first.is_visible()
    assert_clean(page)
    snap(page, "0_home")


def test_2_label_threshold_changes_the_fraction(page):
    go_to(page, "Label")
    fraction = page.locator('[data-testid="stMain"] [data-testid="stMetric"]', has_text="training set")
    fraction = fraction.locator('[data-testid="stMetricValue"]')
    fraction_before = fraction.inner_text()
    slider = page.locator('.st-key-threshold input[type="range"]')
    slider.focus()
    for _ in range(5):
        slider.press("ArrowRight")  # 0.40 -> 0.45
    wait_idle(page)
    assert slider.input_value() == "0.45"
    expect(fraction).not_to_have_text(fraction_before, timeout=30_000)
    for _ in range(5):
        slider.press("ArrowLeft")  # back to the seed's 0.40
    wait_idle(page)
    assert_clean(page)
    snap(page, "1_label")


def test_3_train_a_short_run(page):
    go_to(page, "Train")
    page.get_by_text("Advanced and classroom options").click()
    page.get_by_role("button", name="Quick classroom preset").click()
    wait_idle(page)
    assert page.locator(".st-key-n_train input").input_value() == "12000"
    epochs = page.locator(".st-key-epochs input")
    epochs.fill("3")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Training finished").wait_for(timeout=120_000)
    wait_idle(page)
    badge = page.locator('[data-testid="stMain"]').get_by_text("Training: weight decay").first
    expect(badge).to_contain_text("3 epochs", timeout=30_000)
    expect(badge).to_contain_text("12,000 train", timeout=30_000)
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
    assert_clean(page)
    snap(page, "2_train")


def test_4_tensor(page):
    go_to(page, "Tensor")
    error = page.locator('[data-testid="stMetric"]', has_text="logit").locator('[data-testid="stMetricValue"]')
    assert float(error.inner_text()) < 1e-6  # the live proof: x~^T B x~ = logit + 1
    assert_clean(page)
    snap(page, "3_tensor")


def test_5_eigenvectors(page):
    go_to(page, "Eigenvectors")
    assert page.locator('[data-testid="stImage"]').count() >= 3
    assert_clean(page)
    snap(page, "4_eigenvectors")


def test_6_grid_slider_and_comparison(page):
    slider = page.locator('.st-key-grid_weight_decay input[type="range"]')
    slider.focus()
    slider.press("ArrowRight")  # the pretrained 1.0 (or the trained model's) -> a precomputed checkpoint
    wait_idle(page)
    assert page.get_by_text("Precomputed", exact=False).first.is_visible()
    snap(page, "4b_eigenvectors_grid")
    page.get_by_role("tab", name="Compare").click()
    wait_idle(page)
    page.wait_for_function(  # the target and five weight decays side by side (checkpoints load on first use)
        """() => document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img').length >= 6""",
        timeout=60_000,
    )
    assert_clean(page)
    snap(page, "4c_compare_weight_decay")


def test_7_explain_a_drawn_digit(page):
    go_to(page, "Explain")
    page.locator(".st-key-explain_source").get_by_role("radio", name="Draw").click()
    wait_idle(page)
    canvas = page.locator(".st-key-explain_canvas canvas.upper-canvas")  # inside the component's shadow DOM
    box = canvas.bounding_box()
    assert box is not None
    x, top, bottom = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2, box["y"] + box["height"] * 0.8
    page.mouse.move(x, top)
    page.mouse.down()
    for i in range(1, 21):  # a vertical stroke: a "1", like the target
        page.mouse.move(x + i * 0.5, top + (bottom - top) * i / 20)
    page.mouse.up()
    page.get_by_text("Difference: Σ − model").wait_for(timeout=30_000)
    wait_idle(page)
    assert page.get_by_text("Your drawing").first.is_visible()
    assert_clean(page)
    snap(page, "5_explain_drawing")


def test_8_truncation(page):
    go_to(page, "Truncation")
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
    assert_clean(page)
    snap(page, "6_truncation")
