"""The teacher's list of training runs is live, in a real browser: a run a student starts after the teacher
unlocked the board shows there by itself (no reload, no click), and its Cancel answers in place.

The board's own watch (ui.board.watch) reruns the page for new models only, so the list once read "Training runs
on this server: none" for the whole of a student's 40-epoch run (a fresh pair of eyes, h31a). AppTest cannot see
it: it has no clock for a fragment's run_every.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from harness.browser import (
    NO_THROTTLING_ARGS,
    ROOT,
    error_texts,
    launch_chromium,
    require_chromium,
    streamlit_server,
    wait_idle,
)

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("TEACHER_RUNS_DIR", ROOT / "artifacts" / "teacher_runs"))
WAIT = 60_000  # ms for a page on a loaded 2-core machine
MAIN = '[data-testid="stMain"]'
PASSCODE = "teacher-runs-passcode"
# 100 epochs of full MNIST, a seed no other test trains: this whole test, server start to cancel, took 16-20 s (3 runs
# here, the other core busy), far less than such a run, so it still trains when cancelled on a faster machine; the
# server's cap is raised so a slower machine's estimate does not refuse it
RUN = "/train?epochs=100&wd=1.5&seed=4343"
RUNS = "Training runs on this server:"


def test_a_run_started_after_the_board_was_drawn_shows_in_the_teachers_list_by_itself():
    require_chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=WAIT)
    env = {"BILINEAR_LAB_TEACHER_PASSCODE": PASSCODE, "BILINEAR_LAB_MAX_RUN_SECONDS": "1800"}
    with streamlit_server(ARTIFACTS / "streamlit.log", env=env) as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright, NO_THROTTLING_ARGS)  # both tabs "in front"
        teacher = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        teacher.goto(f"{url}/class_board")
        field = teacher.locator(".st-key-teacher_passcode input")  # ui.board.PASSCODE_WIDGET
        field.fill(PASSCODE)
        field.press("Enter")
        runs = teacher.locator(f"{MAIN} p", has_text=RUNS)
        expect(runs).to_contain_text("none")
        wait_idle(teacher)
        teacher.evaluate("() => { window.__sameDocument = true; }")

        student = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        student.goto(f"{url}{RUN}")
        wait_idle(student)
        student.locator(".st-key-train_button button").first.click()
        expect(student.locator(MAIN).get_by_text("Epoch").first).to_be_visible()

        expect(runs).to_contain_text(f"{RUNS} 1", timeout=30_000)  # by itself: the fragment redraws the list
        assert teacher.evaluate("() => window.__sameDocument === true"), "no reload"
        teacher.screenshot(path=ARTIFACTS / "1_teacher_sees_the_run.png")
        cancel = teacher.locator(f'{MAIN} [class*="st-key-teacher_cancel_"] button').first
        cancel.scroll_into_view_if_needed()
        cancel.click()
        expect(teacher.locator(MAIN).get_by_text("Cancelled")).to_be_visible()
        expect(runs).to_contain_text("none")
        expect(student.locator(MAIN).get_by_text("the teacher stopped it")).to_be_visible()
        assert error_texts(teacher) == [] and error_texts(student) == []
        browser.close()
