"""The chromium driver: a student in a headless chromium tab (BrowserStudent), its page switches timed in the
page from the click to the new page painted, and the teacher's Class board tab (--teacher-board), watched
without a click. One chromium serves every tab; one asyncio loop drives them (harness/browser.py
starts chromium and the server)."""

from __future__ import annotations

import contextlib
import re

from harness.browser import (
    RUN_DONE_JS,
    RUN_MARK_JS,
    RUN_OBSERVER_JS,
    after_run_async,
    error_texts_async,
    expand_async,
    wait_idle_async,
)
from loadtest.session import (
    CURVES_CAPTION,
    FINISHED,
    MODEL_IN_URL,
    TITLE,
    Session,
    progress,
    record_switch,
    record_training,
)
from loadtest.usage import Recorder

# Armed before a sidebar click: a capture listener keeps the click's own time, and an observer resolves
# window.__switch.done once the main area shows an h1 containing `heading` and, after it, a first
# non-empty element (neither stale), to ms after the click: heading, content, painted (2 frames later).
SWITCH_ARM_JS = """([heading, timeoutMs]) => {
    const s = window.__switch = {t0: performance.now(), click: null, times: {}};
    const onClick = () => { if (s.click === null) s.click = performance.now(); };
    document.addEventListener('click', onClick, true);
    const visible = el => el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const fresh = el => el && !el.closest('[data-stale="true"]');
    const check = () => {
        const now = performance.now(), main = document.querySelector('[data-testid="stMain"]');
        const h1 = main && [...main.querySelectorAll('h1')]
            .find(h => h.textContent.includes(heading) && visible(h) && fresh(h));
        if (!h1) return false;
        if (s.times.heading === undefined) s.times.heading = now;
        const box = h1.closest('[data-testid="stElementContainer"]');
        let next = box && box.nextElementSibling;
        while (next && !(next.textContent.trim() && visible(next))) next = next.nextElementSibling;
        if (!next || !fresh(next)) return false;
        s.times.content = now;
        return true;
    };
    s.done = new Promise((resolve, reject) => {
        let over = false, observer = null, timer = null;
        const end = () => { over = true; observer.disconnect(); clearInterval(timer);
            document.removeEventListener('click', onClick, true); };
        const tick = () => {
            if (over) return;
            if (check()) {
                end();
                requestAnimationFrame(() => requestAnimationFrame(() => {
                    const t = s.click === null ? s.t0 : s.click;
                    resolve({heading: s.times.heading - t, content: s.times.content - t, painted: performance.now() - t,
                             click: t, mark_to_click: t - s.t0});
                }));
            } else if (performance.now() - s.t0 > timeoutMs) {
                end();
                reject(new Error('no h1 "' + heading + '" with content within ' + timeoutMs + ' ms'));
            }
        };
        observer = new MutationObserver(tick);
        observer.observe(document.body, {childList: true, subtree: true, attributes: true, characterData: true});
        timer = setInterval(tick, 50);
    });
    s.done.catch(() => {});
}"""
SWITCH_DONE_JS = "() => window.__switch.done.then(r => ({...r, runs_t0: window.__runs.t0}))"
# Armed before the Train click: watches the main area's text every 100 ms (the progress fragment redraws
# every 500 ms) for the queue message, the first epoch's progress and "Training finished"; page times in ms.
TRAIN_ARM_JS = r"""() => {
    const w = window.__train = {t0: performance.now(), origin: performance.timeOrigin, click: null,
                                waiting_first: null, waiting_last: null, waiting_text: null, epoch_first: null,
                                finished: null};
    const onClick = () => { if (w.click === null) w.click = performance.now(); };
    document.addEventListener('click', onClick, true);
    const timer = setInterval(() => {
        const main = document.querySelector('[data-testid="stMain"]');
        if (!main) return;
        const text = main.textContent, now = performance.now();
        const waiting = text.match(/Waiting for a free trainer:.*? in the queue and starts in about \d+ s\./);
        if (waiting) {
            if (w.waiting_first === null) { w.waiting_first = now; w.waiting_text = waiting[0]; }
            w.waiting_last = now;
        }
        if (w.epoch_first === null && /Epoch \d+ \/ \d+/.test(text)) w.epoch_first = now;
        if (text.includes('Training finished') || text.includes('Loaded the')) {
            w.finished = now;
            clearInterval(timer);
            document.removeEventListener('click', onClick, true);
        }
    }, 100);
}"""
TRAIN_READ_JS = "() => window.__train"
# Installed in the teacher's board tab (--teacher-board): each script run the tab shows (the board's fragment
# waking every 2 s, and the page's reruns it asks for) as [start, end, models on the board], and when each
# model's tile (its "Use this model" button, keyed by the model id) first showed; times are Date.now() (ms),
# the machine's clock, comparable with the students' tabs (performance.timeOrigin + performance.now()).
BOARD_WATCH_JS = r"""() => {
    const b = window.__board = {opened: Date.now(), runs: [], first_seen: {}};
    const app = document.querySelector('[data-testid="stApp"]');
    const shown = () => [...document.querySelectorAll('[data-testid="stMain"] [class*="st-key-board_use_"]')]
        .filter(e => !e.closest('[data-stale="true"]'))
        .map(e => e.className.match(/st-key-board_use_(\S+)/)[1]);
    const look = () => {
        const now = Date.now();
        for (const id of shown()) if (!(id in b.first_seen)) b.first_seen[id] = now;
    };
    let started = null;
    new MutationObserver(records => records.forEach((record, i) => {  // a short run may be 2 records of one batch
        const value = i + 1 < records.length ? records[i + 1].oldValue : app.getAttribute('data-test-script-state');
        if (value === 'running' && started === null) started = Date.now();
        if (value !== 'running' && started !== null) {
            b.runs.push([started, Date.now(), shown().length]);
            started = null;
        }
    })).observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
    look();
    setInterval(look, 100);
}"""
BOARD_READ_JS = "() => window.__board"


async def check_errors(page, session: Session, where: str) -> None:
    session.errors += [f"{where}: {text}" for text in await error_texts_async(page)]


async def switch_to(
    page, session: Session, recorder: Recorder, step: str, link: str, heading: str, timeout: float
) -> float:
    """Click `link` in the sidebar navigation and time, in the page, the click to the new page's h1
    (containing `heading`) and its first content element visible and painted; then wait for the script run
    to finish (as go_to_async does). Records a switch in `session.switches`; returns the driver's wall seconds."""
    await page.evaluate(RUN_OBSERVER_JS)
    await page.evaluate(RUN_MARK_JS)
    await page.evaluate(SWITCH_ARM_JS, [heading, timeout * 1000])
    start = recorder.now()
    await page.locator('[data-testid="stSidebarNav"] a', has_text=link).first.click()
    shown = await page.evaluate(SWITCH_DONE_JS)
    run = await page.evaluate(RUN_DONE_JS, ["", timeout * 1000, 10_000])
    await wait_idle_async(page, timeout)
    end = recorder.now()
    progress(session, f"{step}: shown {shown['painted'] / 1000:.2f} s, idle after {end - start:.2f} s")
    return record_switch(
        session,
        step,
        start,
        end,
        shown["heading"] / 1000,
        shown["content"] / 1000,
        shown["painted"] / 1000,
        None if run is None else (run["end"] + shown["runs_t0"] - shown["click"]) / 1000,
    )


async def train_and_wait(page, session: Session, recorder: Recorder, timeout: float, what: str = "") -> dict:
    """Press Train and wait for "Training finished" (or a load); record what the page showed on the way."""
    await page.evaluate(TRAIN_ARM_JS)
    clicked = recorder.now()
    await page.get_by_role("button", name=re.compile(r"^Train \(")).click()  # "Train (about 5 s)"
    message = page.get_by_text(FINISHED).first
    await message.wait_for(timeout=timeout * 1000)
    finished = recorder.now()
    outcome = "trained" if "Training finished" in await message.inner_text() else "reused"
    with contextlib.suppress(Exception):  # its 100 ms watch may not have seen the message yet
        await page.wait_for_function("() => window.__train.finished !== null", timeout=5_000)
    watched = await page.evaluate(TRAIN_READ_JS)
    await wait_idle_async(page, timeout)
    t0 = watched["click"] if watched["click"] is not None else watched["t0"]
    model = MODEL_IN_URL.search(page.url)  # the model the page shows now: the run's
    caption = None
    with contextlib.suppress(Exception):  # the curves' caption, rounded to whole seconds
        text = await page.get_by_text(CURVES_CAPTION).first.inner_text(timeout=10_000)
        caption = int(CURVES_CAPTION.search(text).group(2))
    return record_training(
        session,
        what,
        outcome,
        clicked,
        finished,
        {
            key: None if watched[key] is None else (watched[key] - t0) / 1000
            for key in ("finished", "epoch_first", "waiting_last")
        },
        None if watched["finished"] is None else (watched["origin"] + watched["finished"]) / 1000,
        watched["waiting_text"],
        model.group(1) if model else None,
        caption,
    )


async def set_number(page, key: str, value: int, timeout: float) -> None:
    box = page.locator(f".st-key-{key} input")
    if await box.input_value() == str(value):  # unchanged: Enter would start no run to wait for
        return
    await box.fill(str(value))
    await after_run_async(page, lambda: box.press("Enter"), timeout)


async def set_up_training(
    page, session: Session, recorder: Recorder, epochs: int, timeout: float, step: str, seed: int | None = None
) -> None:
    """Switch to Train, apply the quick preset, set the epochs and the seed (default: the session's)."""
    await switch_to(page, session, recorder, step, "Train", "Train", timeout)
    await expand_async(page, "Advanced and classroom options", timeout)
    await after_run_async(page, page.get_by_role("button", name="Quick classroom preset").click, timeout)
    await set_number(page, "epochs", epochs, timeout)
    await set_number(page, "seed", session.seed if seed is None else seed, timeout)


class BrowserStudent:
    """A student in a chromium tab (a browser context of its own): the steps above, page switches painted."""

    kind = "browser"

    def __init__(self, page) -> None:
        self.page = page

    @classmethod
    async def open(cls, browser, url: str, timeout: float) -> BrowserStudent:
        """Open the app in a new browser context and wait until the Home page is rendered."""
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(timeout * 1000)  # also clicks: Playwright's own 30 s failed 10 of 30 sessions
        page = await context.new_page()
        await page.goto(url)
        await page.get_by_role("heading", name=TITLE).first.wait_for(timeout=timeout * 1000)
        await wait_idle_async(page, timeout)
        return cls(page)

    async def switch_to(
        self, session: Session, recorder: Recorder, step: str, link: str, heading: str, timeout: float
    ) -> float:
        return await switch_to(self.page, session, recorder, step, link, heading, timeout)

    async def check_errors(self, session: Session, where: str) -> None:
        await check_errors(self.page, session, where)

    async def set_up_training(
        self, session: Session, recorder: Recorder, epochs: int, timeout: float, step: str, seed: int | None = None
    ) -> None:
        await set_up_training(self.page, session, recorder, epochs, timeout, step, seed)

    async def train_and_wait(self, session: Session, recorder: Recorder, timeout: float, what: str = "") -> dict:
        return await train_and_wait(self.page, session, recorder, timeout, what)

    async def images(self) -> int:
        return await self.page.locator('[data-testid="stImage"]').count()

    async def close(self) -> None:
        await self.page.context.close()


async def open_teacher_board(browser, url: str, timeout: float):
    """The teacher's extra tab (--teacher-board): the Class board, open and watched (BOARD_WATCH_JS) for the
    whole run, never clicked or reloaded: everything it shows comes from the board's own refresh."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/class_board")
    await page.get_by_text("Live: this board looks for new models").wait_for(timeout=timeout * 1000)
    await wait_idle_async(page, timeout)
    await page.evaluate(BOARD_WATCH_JS)
    return page
