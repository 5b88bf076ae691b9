"""Drive the real app: start `streamlit run` on a free port and a headless Debian chromium.

Shared by the browser tests, loadtest/ and the bench/ scripts; `run_loadtest` runs `python -m loadtest` as a
program for tests/load. Chromium is
Debian's (/usr/bin/chromium, installed by `make test`); Playwright only drives it, it downloads
nothing. The sync helpers serve one page; the `*_async` ones let one asyncio loop drive many
browser contexts of a single chromium (a classroom). `server_rss` and `RssSampler` read the
server's memory with psutil.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.processes import stop

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1: any, or the first free one of BILINEAR_LAB_PORTS ("8610-8629") when set
    (a shared machine gives each engineer a range)."""
    first, _, last = os.environ.get("BILINEAR_LAB_PORTS", "").partition("-")
    candidates = range(int(first), int(last or first) + 1) if first else [0]
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in BILINEAR_LAB_PORTS={os.environ['BILINEAR_LAB_PORTS']}")


@contextlib.contextmanager
def streamlit_server(
    log_path: Path,
    timeout: float = 60.0,
    script: str | Path = "streamlit_app.py",
    model_store: str | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
    port: int | None = None,
    env: dict[str, str | None] | None = None,
    options: tuple[str, ...] | list[str] = (),
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `streamlit run streamlit_app.py` (or another `script`) headless on a free port; yields (url, process).

    The server stores trained models at `model_store` (an fsspec URL; default: a fresh directory beside
    its log): a server here is a new server, and another test's models must not turn its trainings
    into loads; a restart benchmark passes the same store to the second server. `on_start(process)`
    is called right after the process starts, before it is healthy (e.g. to put it into a cgroup). `port`: a
    fixed one (default: a free one); `env`: variables to set on top of this process's (None unsets one);
    `options`: more command-line options for `streamlit run` (e.g. `--global.maxCachedMessageAge`, `50`)."""
    port = port or int(os.environ.get("BILINEAR_LAB_TEST_PORT", "0")) or free_port()  # developers' own ports
    base = {**os.environ, "BILINEAR_LAB_MODEL_STORE": model_store or str(log_path.parent / f"model-store-{port}")}
    changes = env or {}
    env = {k: v for k, v in {**base, **changes}.items() if v is not None}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(script),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                *options,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if on_start is not None:
                on_start(process)
            wait_until_healthy(url, process, timeout)
            yield url, process
        finally:
            stop(process)


def require_chromium() -> None:
    """Skip a browser test where Debian's chromium is missing; in CI (which installs it) fail instead."""
    import pytest

    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (run `make test` as root to install it)")


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float) -> float:
    """Poll /_stcore/health until it answers ok; returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"streamlit did not become healthy within {timeout:.0f} s")


def launch_chromium(playwright, extra_args: tuple[str, ...] = ()):
    """Debian's chromium, headless, with this machine's closed network in mind.

    Works with the sync and the async Playwright API (with the async one, await the result).
    """
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])


IDLE_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app && app.getAttribute('data-test-script-state') !== 'running'
        && !document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')
        && document.querySelector('[data-testid="stMain"]') !== null
        && !document.querySelector('[data-testid="stSkeleton"]');
}"""
ERROR_SELECTORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def wait_idle(page, timeout: float = 60.0) -> None:
    """Wait until the app has rendered and no script run is in progress.

    This cannot tell whether a run that an action *just* asked for has started yet: after an
    action use `after_run`, or wait for the action's own visible effect with Playwright's `expect`.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    page.wait_for_function(IDLE_JS, timeout=timeout * 1000)


def after_run(page, action, timeout: float = 60.0, start_timeout: float = 10.0) -> None:
    """Do `action()` (a click, a key press) and wait until the script run it triggers has finished
    (or, if no run shows up within `start_timeout`, until the app is idle: a run shorter than a frame
    never shows). Callers still check the action's visible effect."""
    timed_run(page, action, timeout=timeout, start_timeout=start_timeout)
    wait_idle(page, timeout)


def error_texts(page) -> list[str]:
    """Texts of exception boxes and st.error alerts now on the page."""
    return [element.inner_text() for element in page.query_selector_all(ERROR_SELECTORS)]


def go_to(page, title: str, heading: str | None = None, timeout: float = 60.0) -> None:
    """Click a page in the sidebar navigation by (part of) its title, wait for the script run that
    click starts, and then for the new page's heading (`heading`, default: the title) to show."""
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
    after_run(page, link.click, timeout=timeout)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_role("heading", name=heading or title, level=1).wait_for(timeout=timeout * 1000)


# An st.expander opens with a 500 ms animation of its <details> element's height (overflow hidden meanwhile):
# a click inside it before the end may miss (test_browser.py's quick preset, 2 runs of 31 at load 7-12: the click
# reached no server). EXPANDED_JS: the details whose summary says `label` is open and no longer animating.
EXPANDER_SUMMARY = '[data-testid="stExpander"] summary'
EXPANDED_JS = """label => {
    const details = [...document.querySelectorAll('[data-testid="stExpander"] details')]
        .find(d => d.querySelector('summary')?.textContent.includes(label));
    return !!details && details.open && details.getAnimations().length === 0 && !details.getAttribute('style');
}"""


def expand(page, label: str, timeout: float = 60.0) -> None:
    """Open the expander whose header says `label` and wait until it has finished opening."""
    page.locator(EXPANDER_SUMMARY, has_text=label).first.click()
    page.wait_for_function(EXPANDED_JS, arg=label, timeout=timeout * 1000)


# --------------------------------------------------------------------------- many sessions (asyncio)
# Chromium throttles timers of pages it thinks are in the background; a classroom has every tab "in front".
NO_THROTTLING_ARGS = (
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


async def wait_idle_async(page, timeout: float = 60.0) -> None:
    """wait_idle for a page of the async Playwright API."""
    await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    await page.wait_for_timeout(300)
    await page.wait_for_function(IDLE_JS, timeout=timeout * 1000)


async def error_texts_async(page) -> list[str]:
    return [await element.inner_text() for element in await page.query_selector_all(ERROR_SELECTORS)]


async def expand_async(page, label: str, timeout: float = 60.0) -> None:
    """`expand` for a page of the async Playwright API."""
    await page.locator(EXPANDER_SUMMARY, has_text=label).first.click()
    await page.wait_for_function(EXPANDED_JS, arg=label, timeout=timeout * 1000)


async def go_to_async(page, title: str, timeout: float = 60.0) -> None:
    """Click a page in the sidebar navigation and wait for its script run to finish."""
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
    await after_run_async(page, link.click, timeout)


# --------------------------------------------------------------------------- timing one script run
# Records every change of stApp's data-test-script-state (initial/running/notRunning/rerunRequested)
# with performance.now(), so a rerun is timed inside the page, free of Python-side polling.
RUN_OBSERVER_JS = """() => {
    if (window.__runs) return;
    const app = document.querySelector('[data-testid="stApp"]');
    window.__runs = {t0: 0, events: []};
    new MutationObserver(records => records.forEach((record, i) => window.__runs.events.push([performance.now(),
            i + 1 < records.length ? records[i + 1].oldValue : app.getAttribute('data-test-script-state')])))
        .observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
}"""
RUN_MARK_JS = "() => { window.__runs.events = []; window.__runs.t0 = performance.now(); }"
# Resolves once a run started after the mark and the app is idle again (and `extra`, a JS
# expression, holds), to page times in ms after the mark: the run's start, its end, and the second
# animation frame after the end (the redraw is on screen). Resolves to null if no run started
# within startTimeoutMs (when given), rejects after timeoutMs.
RUN_DONE_JS = """([extra, timeoutMs, startTimeoutMs]) => new Promise((resolve, reject) => {
    const check = () => {
        const r = window.__runs, ev = r.events;
        const start = ev.findIndex(e => e[1] === 'running');
        if (start < 0 && startTimeoutMs && performance.now() - r.t0 > startTimeoutMs) {
            resolve(null);  // no run showed up: the caller decides
            return;
        }
        const app = document.querySelector('[data-testid="stApp"]');
        if (start >= 0 && app.getAttribute('data-test-script-state') !== 'running'
                && !document.querySelector('[data-testid="stSkeleton"]') && (!extra || eval(extra))) {
            const end = ev.slice(start).find(e => e[1] !== 'running') || [performance.now()];
            requestAnimationFrame(() => requestAnimationFrame(() =>
                resolve({start: ev[start][0] - r.t0, end: end[0] - r.t0, painted: performance.now() - r.t0})));
        } else if (performance.now() - r.t0 > timeoutMs) {
            reject(new Error('no script run finished within ' + timeoutMs + ' ms: ' + JSON.stringify(ev)));
        } else {
            setTimeout(check, 5);
        }
    };
    check();
})"""
IMAGES_LOADED_JS = "[...document.querySelectorAll('[data-testid=\"stImage\"] img')].every(i => i.complete)"


def timed_run(
    page, action, extra_condition: str = "", timeout: float = 60.0, start_timeout: float = 0.0
) -> dict[str, float] | None:
    """Seconds from just before `action()` (a key press, a click) to the start and the end of the
    script run it triggers, and to the second frame painted after that end (once `extra_condition`,
    a JS expression, also holds). None if `start_timeout` (> 0) passed with no run. Sync API."""
    page.evaluate(RUN_OBSERVER_JS)
    page.evaluate(RUN_MARK_JS)
    action()
    times = page.evaluate(RUN_DONE_JS, [extra_condition, timeout * 1000, start_timeout * 1000])
    return None if times is None else {name: ms / 1000 for name, ms in times.items()}


async def after_run_async(page, action, timeout: float = 60.0, start_timeout: float = 10.0) -> None:
    """Await `action()` (a click, a key press) and wait until the script run it triggers has
    finished. Unlike wait_idle's fixed 300 ms pause this cannot mistake the page *before* the run
    for the result when a busy server is slow to start it. Falls back on wait_idle_async if no
    run shows up within `start_timeout` (a run shorter than a frame never shows)."""
    await page.evaluate(RUN_OBSERVER_JS)
    await page.evaluate(RUN_MARK_JS)
    await action()
    await page.evaluate(RUN_DONE_JS, ["", timeout * 1000, start_timeout * 1000])
    await wait_idle_async(page, timeout)


# --------------------------------------------------------------------------- server memory


def server_rss(pid: int) -> int:
    """Resident bytes of process `pid` and all its descendants (psutil)."""
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


class RssSampler:
    """Samples server_rss(pid) every `interval` s in a thread; `.peak` is the largest seen (bytes)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import threading

        self.pid, self.interval, self.peak, self.samples = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, server_rss(self.pid))
                self.samples += 1
            except Exception:  # the process is gone: nothing more to sample
                return
            self._stop.wait(self.interval)

    def reset(self) -> None:
        self.peak = 0

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_loadtest(directory: Path, *options: str, timeout: float = 850.0) -> dict:
    """Run `python -m loadtest *options` as a program, its server's log and model store in `directory`; returns
    the JSON it writes. Its printed report and progress lines are echoed here (pytest shows them with a
    failure, or with -s). Past `timeout` it is interrupted (Ctrl-C: it stops its server and chromium), then
    killed."""
    result = directory / "loadtest.json"
    command = [sys.executable, "-m", "loadtest", *options, "--log-dir", str(directory), "--json", str(result)]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
    print(out)
    print(err, file=sys.stderr)
    if process.returncode != 0 or not result.exists():
        raise AssertionError(f"python -m loadtest {' '.join(options)} exited with {process.returncode}: {err[-3000:]}")
    return json.loads(result.read_text())
