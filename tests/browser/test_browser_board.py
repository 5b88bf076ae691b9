"""The class board is live across sessions, in a real browser: three students on one server.

Student A and student B open the Class board; student C trains a small model on the Train page (a link
carries the settings: a 4,096-image slice, 2 epochs, batch 512, a seed no other test uses). The new model
must appear on A's and B's boards by itself, with no reload and no click: the board's fragment
(ui.board.watch, run_every = REFRESH_SECONDS) notices the registry's new revision and redraws the page.
Then C, in lesson mode, reveals the Label step, and the vote must show in the "How the room predicted"
tally of A's and B's boards, again by itself.

Every wait is for a visible effect (an observer in each board tab records, with the page's own clock, when
the model's tile or the tally's sentence appears); nothing sleeps a fixed time. The issue's goal is 5 s from
C's "Training finished" to the other boards; the machine is shared, so the test asserts BOUND and prints
what it measured. The board's table is drawn on a canvas (st.dataframe), so the model's row is read from
its tile in the gallery below it, drawn from the same snapshot: caption (nickname, τ, weight decay, |cos|),
alt text (every setting) and its "Use this model" button, whose key names the model id.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.config import Config
from core.identity import config_id
from core.lesson import BY_ID
from harness.browser import (
    NO_THROTTLING_ARGS,
    ROOT,
    error_texts,
    go_to,
    launch_chromium,
    require_chromium,
    streamlit_server,
    wait_idle,
)

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(os.environ.get("BOARD_SCREENSHOT_DIR", ROOT / "artifacts" / "board"))
WAIT = 60_000  # ms for a page to draw on a loaded 2-core machine; a step that holds returns at once
TRAIN_WAIT = 180_000  # ms: C's training, queue included
BOUND = 30.0  # s from C's "Training finished" (or Reveal) to the other boards; the goal is 5 s
MAIN = '[data-testid="stMain"]'
SEED = 4242  # a seed no other test trains: C's run is a real training on a fresh server
SMALL = {"n_train": 4096, "n_test": 1000, "batch_size": 512, "epochs": 2, "seed": SEED}
TRAIN_LINK = "/train?slice=true&n_train=4096&n_test=1000&batch=512&epochs=2&seed=4242"  # ui.links' keys
SETTINGS_TEXT = "target #6 · τ 0.40 · wd 1 · noise 0.1 · 2 epochs · 4,096 / 1,000"  # core.board.BoardRow.settings
LIVE = "Live: this board looks for new models"  # the board's fragment's caption: the fragment is running

# Installed in a board tab before the event it waits for: every 50 ms, notes the page's clock (Date.now(),
# the machine's wall clock, comparable across tabs and with Python's time.time()) when `selector` matches an
# element whose text contains `text`. `window.__sameDocument` proves later that the tab was not reloaded.
WATCH_JS = """([name, selector, text]) => {
    window.__sameDocument = true;
    window.__seen = window.__seen || {};
    window.__seen[name] = null;
    const timer = setInterval(() => {
        const hit = [...document.querySelectorAll(selector)].some(e => e.textContent.includes(text)
            && !e.closest('[data-stale="true"]'));
        if (hit) { window.__seen[name] = Date.now(); clearInterval(timer); }
    }, 50);
}"""
SEEN_JS = "name => window.__seen[name]"


@pytest.fixture(scope="module")
def room():
    """One fresh server and three students, each a browser context of their own (a separate session)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    expect.set_options(timeout=WAIT)
    with streamlit_server(SCREENSHOTS / "streamlit.log") as (url, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright, NO_THROTTLING_ARGS)  # three tabs, all "in front"
        students = {name: browser.new_context(viewport={"width": 1400, "height": 1000}).new_page() for name in "ABC"}
        yield url, students
        browser.close()
    print(f"\nscreenshots: {SCREENSHOTS}")


def snap(page, name: str, showing: Locator | None = None) -> None:
    """Screenshot the tab; the main area scrolls by itself (not the document), so scroll to `showing` first."""
    if showing is not None:
        showing.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def assert_clean(page, where: str) -> None:
    assert error_texts(page) == [], where


def open_board(page, url: str) -> None:
    page.goto(f"{url}/class_board")
    expect(page.locator(MAIN).get_by_text(LIVE)).to_be_visible()
    wait_idle(page)


def watch(page, name: str, selector: str, text: str = "") -> None:
    page.evaluate(WATCH_JS, [name, selector, text])


def seen(page, name: str, timeout_ms: float, what: str) -> float:
    """Wait until the tab's watcher `name` fired; the page's wall-clock time then, in seconds."""
    try:
        page.wait_for_function(f"() => window.__seen[{name!r}] !== null", timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(f"{what} did not show within {timeout_ms / 1000:.0f} s") from None
    return page.evaluate(SEEN_JS, name) / 1000


def latencies(students: dict, name: str, since: float, what: str) -> dict[str, float]:
    """Seconds from `since` (page wall clock) until watcher `name` fired on A's and on B's board."""
    return {
        board: seen(students[board], name, BOUND * 1000 + 5_000, f"{what} on {board}'s board") - since for board in "AB"
    }


def still_the_same_document(page) -> bool:
    """True unless the tab was reloaded or navigated since its watcher was installed."""
    return page.evaluate("() => window.__sameDocument === true")


def test_a_model_one_student_trains_appears_on_the_other_boards_by_itself(room):
    url, s = room
    for name in "AB":
        open_board(s[name], url)
        assert_clean(s[name], f"{name}: board")
    snap(s["A"], "1_A_board_before")
    snap(s["B"], "1_B_board_before")

    model_id = config_id(Config(**SMALL))
    button = f".st-key-board_use_{model_id}"  # the new model's "Use this model" button, on A's and B's boards
    tile = f"{MAIN} {button}"
    for name in "AB":
        assert s[name].locator(tile).count() == 0, f"{name}: the model is not on the board yet"
        watch(s[name], "model", tile)

    c = s["C"]
    c.goto(url + TRAIN_LINK)
    expect(c.locator(MAIN).get_by_role("heading", name="Train", level=1)).to_be_visible()
    expect(c.locator(".st-key-epochs input")).to_have_value("2")
    expect(c.locator(".st-key-n_train input")).to_have_value("4096")
    train = c.get_by_role("button", name=re.compile(r"^Train \("))  # "Train (about 5 s)"
    expect(train).to_be_enabled()
    snap(c, "2_C_train_settings")
    watch(c, "finished", MAIN, "Training finished")
    train.click()
    finished = seen(c, "finished", TRAIN_WAIT, "C's 'Training finished'")
    expect(c).to_have_url(re.compile(f"model={model_id}"))  # C's model is the one A and B wait for
    snap(c, "3_C_training_finished")

    latency = latencies(s, "model", finished, "C's model")
    print(
        "\nC's model on the other boards, seconds after C's 'Training finished': "
        + ", ".join(f"{name} {seconds:+.2f}" for name, seconds in latency.items())
        + " (negative: that board redrew before C's own page did)"
    )
    for name in "AB":
        assert latency[name] < BOUND, f"{name}'s board took {latency[name]:.1f} s (goal 5 s)"
        assert still_the_same_document(s[name]), f"{name}'s board was reloaded: it must update by itself"
        wait_idle(s[name])
        snap(s[name], f"4_{name}_board_with_Cs_row")  # the table's first row: C's model

    go_to(c, "Class board")  # C's own board, same session, names C's nickname
    mine = c.locator(MAIN).get_by_text(re.compile(r"^Your models appear here as"))
    nick = re.search(r"appear here as (.+?)\. ", mine.inner_text()).group(1)
    snap(c, "5_C_board")
    for name in "AB":
        page = s[name]
        tile_column = page.locator(f'{MAIN} [data-testid="stColumn"]').filter(has=page.locator(button))
        expect(tile_column.locator('[data-testid="stImageCaption"]')).to_contain_text(f"{nick} · ")
        expect(tile_column.locator('[data-testid="stImageCaption"]')).to_contain_text("τ 0.40 · wd 1 · |cos| ")
        alt = tile_column.locator('[data-testid="stImage"] img').get_attribute("alt")
        assert f"the model {nick} trained at" in alt and SETTINGS_TEXT in alt, alt
        assert_clean(page, f"{name}: board after C's model")
        snap(page, f"5_{name}_board_with_Cs_tile", tile_column)


def test_a_revealed_prediction_appears_in_the_other_boards_tally_by_itself(room):
    url, s = room
    step = BY_ID["label"]
    choice = step.choices[2]  # τ = 0.40
    tallied = f"1 prediction(s); the most common: “{choice}” (1 of 1)."
    for name in "AB":
        s[name].locator(MAIN).get_by_text("How the room predicted (lesson mode)").first.click()  # folded: no vote yet
        expect(s[name].locator(MAIN).get_by_text("Nobody has revealed this step yet.").first).to_be_visible()
        watch(s[name], "vote", f'{MAIN} [data-testid="stCaptionContainer"]', tallied)

    c = s["C"]
    c.goto(f"{url}/label?lesson=true")  # a new session of C's, in lesson mode
    question = c.locator(".st-key-lesson_choice_label")
    expect(question).to_be_visible()
    snap(c, "6_C_label_question")
    question.get_by_text(choice, exact=True).click()
    reveal = c.get_by_role("button", name="Reveal")
    expect(reveal).to_be_enabled()
    watch(c, "revealed", MAIN, f"You predicted {choice}")
    reveal.click()
    revealed = seen(c, "revealed", WAIT, "C's verdict after Reveal")
    snap(c, "7_C_label_revealed")

    latency = latencies(s, "vote", revealed, "C's vote")
    print(
        "\nC's prediction in the other boards' tally, seconds after C's Reveal showed its verdict: "
        + ", ".join(f"{name} {seconds:+.2f}" for name, seconds in latency.items())
    )
    for name in "AB":
        assert latency[name] < BOUND, f"{name}'s tally took {latency[name]:.1f} s"
        assert still_the_same_document(s[name]), f"{name}'s board was reloaded: it must update by itself"
        wait_idle(s[name])
        assert_clean(s[name], f"{name}: board after C's vote")
        snap(s[name], f"8_{name}_board_with_Cs_vote", s[name].locator(MAIN).get_by_text(tallied))
