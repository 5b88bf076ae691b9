"""A classroom on one server: N students take the main path at once; the server's memory, step by step.

Starts `streamlit run streamlit_app.py` headless on a free port and drives N (default 8) sessions
from one headless chromium (one browser context each, all driven by one asyncio loop), or, with
`--protocol-sessions K`, K of them as protocol students and the other N - K in chromium:

  teacher  (unless --no-teacher) one session takes the whole path first, alone, with its own
           seed: it pays the server's one-time costs (importing torch, the shipped checkpoint,
           MNIST, the similarities, torch._dynamo which torch.optim imports on first use, chart
           code), so what follows measures what each *student* adds
  join     one after another, so that each session's cost can be read off: open the app and wait
           until the Home page is rendered, then open the Label page (MNIST and the similarities
           are cached per server: a later session only reads them)
  path     all at once: Train ("Advanced and classroom options" -> "Quick classroom preset",
           Epochs = --epochs, Seed = --seed-base + session, so every session trains its own model
           concurrently; with --same-config all use one seed, and the shared registry then decides
           who trains) -> click Train -> "Training finished" -> Eigenvectors.

           Then Tensor (a page switch while other sessions still train or queue), and once every
           session is through, Explain, all at once (a page switch after the trainings).

Every page switch is timed in the page: from the click on the sidebar link (a capture listener
takes the click's own time) to the new page's h1 heading and its first content element being
visible, then painted (two animation frames later); the script run is still waited for, as
before. Each switch is put in a phase of the class's timeline: before the first student pressed
Train, while trainings run or queue, after the last one finished. Each training is timed from the
Train click (in the page) to "Training finished", with its wait in the queue (until the progress
shows its first epoch; the first "Waiting for a free trainer" text gives its position and the
server's estimate) and its own training seconds: the last epoch's `seconds` in the checkpoint the
server wrote to its model store (the value the Train page's caption rounds). The teacher trains
twice alone, the second time warm: that run is the "alone" baseline of the ratios.
`--memory-cap MIB` runs the server in a memory cgroup (v2 memory.max or v1
memory.limit_in_bytes) and reports its failcnt / OOM counters.

`--protocol-sessions K`: the first K students are protocol students (bench/protocol_student.py): no browser,
Streamlit's own websocket protocol spoken by this process, as a browser speaks it to the server (the page's
HTML, the first rerun with its query string, every widget's state with each rerun, a button's trigger, a number
input's value, page switches by page_script_hash, the fragments' timed reruns, the message cache, the images).
In a class every browser runs on its student's device; 30 chromium tabs here took 72 % of the server's 2 cores
(README). Protocol students load the server as browsers do while one or two chromium sessions still measure
painted page switches. They take the same path with the same settings and phases, and their results go
into the same summaries, told apart by `kind`. What they do not measure is painting: a protocol student's page
switch runs from sending the rerun to the new page's h1 delta and the first content delta after it (its switch
time, against the same 3 s target), and to script_finished; its training, from the Train click's rerun to the
deltas carrying the queue message, the first epoch and "Training finished". Its errors are every exception
element and st.error alert that arrives. The teacher and the board tab stay in chromium.
bench/protocol_vs_browser.py checks a protocol student against a chromium tab on a quiet server.

`--teacher-board` opens one more tab, the teacher's, on the Class board once the warm-up session
is done and before the first student joins, and leaves it alone (no click, no reload) until the
end: a projector showing the board through the whole lesson, whose fragment wakes every 2 s and
reruns the page when a model arrives. An observer in that tab records the script runs it shows and
when each model's tile first showed (the machine's clock), so the report adds: how many runs the
tab saw and how many were redraws that brought new models (with their script seconds), and for each
student the seconds from their page showing "Training finished" to their model on the teacher's
board (median and max; negative when the board was first), against the issue's goal of 5 s; the
tab's error elements count with the students'. Its RSS is marked "board open", so the first join's
increment stays the student's own.

Every session must end with no exception or st.error element on any page it visited. The
server's RSS (psutil: the streamlit process and its children, if any) is read before any session,
after each join (Home rendered), after each session's Label page, after each training, and at the
end; a thread also samples it every 50 ms for the peak. Printed: per-session wall times, the RSS
timeline, and the increments: the teacher's one-time costs, per joined session, per Label visit,
and per student over the concurrent part (the ~230 KB of weights, plus whatever the transient
buffers of training leave behind in glibc's heap and per-thread arenas). `--env KEY=VALUE` sets a
variable for the server only, e.g. MALLOC_MMAP_THRESHOLD_=4194304 or OMP_NUM_THREADS=1.

The machine has 2 cores shared by the server, chromium and this driver (the protocol students too): wall times
under load are only indicative; the memory numbers are what this script is for.

    .venv/bin/python bench/classroom_load.py                       # 8 sessions, 3 epochs each
    .venv/bin/python bench/classroom_load.py --sessions 4 --same-config --json artifacts/classroom.json
    .venv/bin/python bench/classroom_load.py --no-teacher         # a cold server meets the class at once
    .venv/bin/python bench/classroom_load.py --env OMP_NUM_THREADS=1 --env MALLOC_MMAP_THRESHOLD_=4194304
    .venv/bin/python bench/classroom_load.py --sessions 30 --memory-cap 2700 --json artifacts/classroom30.json
    .venv/bin/python bench/classroom_load.py --sessions 3 --epochs 1 --teacher-board   # the board tab, small
    .venv/bin/python bench/classroom_load.py --sessions 30 --teacher-board --memory-cap 2700 --json artifacts/cb30.json
    .venv/bin/python bench/classroom_load.py --sessions 30 --teacher-board --memory-cap 2700 --browser-shares 100
    .venv/bin/python bench/classroom_load.py --sessions 3 --protocol-sessions 2 --epochs 1   # 2 protocol, 1 chromium
    .venv/bin/python bench/classroom_load.py --sessions 30 --protocol-sessions 29 --teacher-board --memory-cap 2700 \
        --browser-shares 100 --json artifacts/cb30_protocol.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from bench.protocol_student import MAIN, Node, ProtocolError, ProtocolStudent
from tests.browser_support import (
    NO_THROTTLING_ARGS,
    RUN_DONE_JS,
    RUN_MARK_JS,
    RUN_OBSERVER_JS,
    RssSampler,
    after_run_async,
    error_texts_async,
    launch_chromium,
    server_rss,
    streamlit_server,
    wait_idle_async,
)

MB = 2**20
TITLE = "Bilinear Eigen Lab"
FINISHED = re.compile("Training finished|Loaded the model trained earlier|Loaded the precomputed checkpoint")
CURVES_CAPTION = re.compile(r"Training curves of the active model \((\d+) epochs?, (\d+) s\)")
PHASES = ("before", "during", "after")  # page switches: before the first Train click, while trainings run/queue, after
# page-switch measures per kind of session (switching): the first is the switch time the target applies to
MEASURES = {"browser": ("shown", "heading", "run_done"), "protocol": ("content", "heading", "run_done")}
TARGET = {"switch_p95": 3.0, "ratio_max": 5.0, "peak_rss": 1.5 * 2**30, "board_max": 5.0}

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
MODEL_IN_URL = re.compile(r"[?&]model=([0-9a-z_-]+)")
WAITING_TEXT = re.compile(r"Waiting for a free trainer:.*? in the queue and starts in about \d+ s\.")  # as TRAIN_ARM_JS
EPOCH_TEXT = re.compile(r"Epoch \d+ / \d+")
QUEUE_TEXT = re.compile(
    r"(\d+) run\(s\) are training .* number (\d+) of (\d+) in the queue and starts in about (\d+) s"
)


@dataclass
class Session:
    index: int
    seed: int
    kind: str = "browser"  # a chromium tab (BrowserStudent) or "protocol" (ProtocolTab: no browser)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds
    outcome: str = ""  # "trained" or "reused" (the registry already had the model), or what failed
    errors: list[str] = field(default_factory=list)  # error elements seen, "page: text"
    completed: bool = False
    switches: list[dict] = field(default_factory=list)  # one per sidebar page switch, see switch_to
    trainings: list[dict] = field(default_factory=list)  # one per Train press, see train_and_wait


PROGRESS = {"on": False, "start": time.perf_counter()}  # main() turns on progress lines on stderr


def progress(session: Session | None, what: str) -> None:
    if PROGRESS["on"]:
        kind = " (protocol)" if session is not None and session.kind == "protocol" else ""
        name = "" if session is None else "teacher " if session.index < 0 else f"session {session.index}{kind} "
        print(f"[{time.perf_counter() - PROGRESS['start']:7.1f} s] {name}{what}", file=sys.stderr, flush=True)


class Recorder:
    """The server's RSS at named moments, with the time since the start."""

    def __init__(self, pid: int) -> None:
        self.pid, self.start, self.events = pid, time.perf_counter(), []

    def now(self) -> float:
        """Seconds since the start (the driver's clock, shared by all sessions)."""
        return time.perf_counter() - self.start

    def mark(self, session: int | None, event: str) -> int:
        rss = server_rss(self.pid)
        self.events.append({"t": self.now(), "session": session, "event": event, "rss": rss})
        progress(None, f"{event}{'' if session is None else f' (session {session})'}: server RSS {rss / MB:.0f} MB")
        return rss


class BrowserCpuGroup:
    """A cgroup v1 cpu group of low cpu.shares for chromium and Playwright's driver: this process goes in
    first, so that they inherit it (a renderer forked later too), and back to the root group once they are
    started (`release`), with the server: the protocol students, in this process, read the server's messages
    when they arrive, not when a low share lets them. `nice` does not do it: chromium, run as root, sets its
    own renderers back to 0 and its GPU process to -8."""

    ROOT = Path("/sys/fs/cgroup/cpu")

    def __init__(self, shares: int) -> None:
        self.problem = None
        try:
            group = self.ROOT / f"classroom_browsers_{os.getpid()}"
            group.mkdir(exist_ok=True)
            (group / "cpu.shares").write_text(str(shares))
            (group / "cgroup.procs").write_text(str(os.getpid()))  # chromium, started later, inherits it
        except OSError as error:
            self.problem = f"could not set up {self.ROOT}: {error}"
            print(f"browser cpu group: {self.problem}; running without it", file=sys.stderr)

    def release(self, pid: int) -> None:
        """Move `pid` (the server, this process) back to the root cpu group; its threads, started later, follow."""
        if self.problem is None:
            (self.ROOT / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Back to the root group, and remove the group (its chromium has exited by now)."""
        if self.problem is None:
            self.release(os.getpid())
            with contextlib.suppress(OSError):  # a straggling process keeps it: harmless, and named after our pid
                (self.ROOT / f"classroom_browsers_{os.getpid()}").rmdir()


class MemoryCap:
    """A memory cgroup of `mib` MiB for the server: cgroup v2 (memory.max) where its memory controller is
    available, else v1 (memory.limit_in_bytes); `problem` says why neither worked (the run goes on uncapped).
    Charges do not move with a process (recent kernels dropped v1's move_charge_at_immigrate), so the
    server goes in right after it starts; its children follow. `counters()` reads the limit hits and OOM kills."""

    def __init__(self, mib: int) -> None:
        self.mib, self.limit = mib, mib * MB
        self.path: Path | None = None
        self.version = 0
        self.problem = ""
        self.pid: int | None = None
        self.before: dict = {}

    def __enter__(self) -> MemoryCap:
        name, tried = f"classroom-load-{os.getpid()}", []
        for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            controllers = root / "cgroup.controllers"
            if not controllers.exists() or "memory" not in controllers.read_text().split():
                continue
            try:
                with contextlib.suppress(OSError):  # may already be enabled, or not ours to change
                    (root / "cgroup.subtree_control").write_text("+memory")
                (root / name).mkdir()
                self.path, self.version = root / name, 2
                (self.path / "memory.max").write_text(str(self.limit))
                with contextlib.suppress(OSError):
                    (self.path / "memory.swap.max").write_text("0")
                break
            except OSError as error:
                tried.append(f"v2 {root}: {error}")
                self._remove()
        v1 = Path("/sys/fs/cgroup/memory")
        if self.path is None and (v1 / "memory.limit_in_bytes").exists():
            try:
                (v1 / name).mkdir()
                self.path, self.version = v1 / name, 1
                (self.path / "memory.limit_in_bytes").write_text(str(self.limit))
            except OSError as error:
                tried.append(f"v1 {v1}: {error}")
                self._remove()
        if self.path is None:
            self.problem = "; ".join(tried) or "no cgroup memory controller (v2 or v1) found"
        else:
            self.before = self.counters()
        return self

    def add(self, process) -> None:
        """Put `process` (a Popen) into the cgroup; on failure say why and go on without the cap."""
        if self.path is None:
            return
        try:
            (self.path / "cgroup.procs").write_text(str(process.pid))
            if str(process.pid) not in (self.path / "cgroup.procs").read_text().split():
                raise OSError(f"pid {process.pid} is not in {self.path}/cgroup.procs")
            self.pid = process.pid
        except OSError as error:
            self.problem = f"could not put the server into {self.path}: {error}"
            print(f"memory cap: {self.problem}; running without it", file=sys.stderr)

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text()
        except (OSError, TypeError):
            return ""

    def _pairs(self, name: str) -> dict[str, int]:
        pairs = (line.split() for line in self._read(name).splitlines())
        return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}

    def _int(self, name: str) -> int | None:
        text = self._read(name).strip()
        return int(text) if text.isdigit() else None

    def counters(self) -> dict:
        if self.version == 1:
            oom, stat = self._pairs("memory.oom_control"), self._pairs("memory.stat")
            return {
                "failcnt": self._int("memory.failcnt"),
                "max_usage": self._int("memory.max_usage_in_bytes"),
                "usage": self._int("memory.usage_in_bytes"),
                "oom_kill": oom.get("oom_kill"),
                "under_oom": oom.get("under_oom"),
                "rss": stat.get("total_rss"),
                "cache": stat.get("total_cache"),
            }
        if self.version == 2:
            events = self._pairs("memory.events")
            return {
                "max": events.get("max"),
                "oom": events.get("oom"),
                "oom_kill": events.get("oom_kill"),
                "max_usage": self._int("memory.peak"),
                "usage": self._int("memory.current"),
            }
        return {}

    def report(self) -> dict:
        """What the cgroup saw: its counters before and after, and which of them rose."""
        after = self.counters()
        counted = ("failcnt", "oom_kill", "under_oom") if self.version == 1 else ("max", "oom", "oom_kill")
        rose = {
            k: after[k] - (self.before.get(k) or 0) for k in counted if (after.get(k) or 0) > (self.before.get(k) or 0)
        }
        return {
            "mib": self.mib,
            "version": self.version,
            "path": str(self.path) if self.path else None,
            "applied": self.pid is not None,
            "problem": self.problem,
            "before": self.before,
            "after": after,
            "rose": rose,
        }

    def _remove(self) -> None:
        if self.path is None:
            return
        for _ in range(50):  # the server's exit may take a moment to leave the cgroup
            try:
                self.path.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        self.path, self.version = None, 0

    def __exit__(self, *exc) -> None:
        self._remove()


class CpuShares:
    """CPU seconds (user + system) used during the run by the server, by chromium and Playwright's driver
    (this process's other descendants), by this process, and by every other process on the machine; and
    the other test runs (`pytest -m`) seen meanwhile. psutil, sampled every 2 s (a process that ends
    between samples keeps what it had used at its last sample)."""

    def __init__(self, server_pid: int, interval: float = 2.0) -> None:
        import threading

        self.server, self.interval = server_pid, interval
        self.first: dict[int, tuple[str, float]] = {}  # pid -> (group, cpu seconds) at its first sample
        self.last: dict[int, tuple[str, float]] = {}
        self.others_running: list[tuple[float, str]] = []  # (seconds since the start, command line)
        self.load: list[float] = []
        self.start = time.perf_counter()
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        server = {self.server}
        with contextlib.suppress(psutil.Error):
            server |= {c.pid for c in psutil.Process(self.server).children(recursive=True)}
        mine = {c.pid for c in me.children(recursive=True)} - server
        for process in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
            info = process.info
            if info["cpu_times"] is None:
                continue
            pid = info["pid"]
            group = "server" if pid in server else "bench" if pid == me.pid else "chromium" if pid in mine else "other"
            used = info["cpu_times"].user + info["cpu_times"].system
            self.first.setdefault(pid, (group, used))
            self.last[pid] = (group, used)
            command = " ".join(info["cmdline"] or [])
            if group == "other" and "pytest -m" in command:
                self.others_running.append((time.perf_counter() - self.start, command[:120]))
        self.load.append(os.getloadavg()[0])

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            with contextlib.suppress(Exception):
                self._sample()
            self.seconds = time.perf_counter() - self.start

    def result(self) -> dict:
        used = dict.fromkeys(("server", "chromium", "bench", "other"), 0.0)
        for pid, (group, last) in self.last.items():
            used[group] += last - self.first[pid][1]
        return {
            "wall": self.seconds,
            "cpu_seconds": used,
            "cores": os.cpu_count(),
            "load_average_max": max(self.load, default=float("nan")),
            "other_test_runs": sorted({command for _, command in self.others_running}),
            "other_test_runs_seen_at": [t for t, _ in self.others_running][:1]
            + [t for t, _ in self.others_running][-1:],
        }

    def __enter__(self) -> CpuShares:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def check_errors(page, session: Session, where: str) -> None:
    session.errors += [f"{where}: {text}" for text in await error_texts_async(page)]


def failed(session: Session, error: Exception) -> None:
    first_line = str(error).splitlines()[0] if str(error) else ""
    progress(session, f"FAILED: {type(error).__name__}: {first_line}")
    session.outcome = session.outcome or f"failed: {type(error).__name__}"
    session.errors.append(f"driver: {type(error).__name__}: {first_line}")


def record_switch(
    session: Session,
    step: str,
    start: float,
    end: float,
    heading: float | None,
    content: float | None,
    shown: float | None,
    run_done: float | None,
) -> float:
    """Add a page switch to `session.switches`: `start`/`end` on the driver's clock, the rest in seconds after
    the click (a browser's page clock) or after the rerun was sent (a protocol student); returns `end - start`."""
    session.switches.append(
        {
            "step": step,
            "start": start,  # driver clock, seconds since the bench started (for the phases)
            "end": end,
            "heading": heading,  # the h1 visible (browser) or its delta arrived (protocol)
            "content": content,  # and the first content element after it
            "shown": shown,  # heading and first content painted: the switch time (browser; None for protocol)
            "run_done": run_done,  # the script run finished (as the page showed it, or script_finished)
            "wall": end - start,  # driver: click sent -> run finished and idle
        }
    )
    return end - start


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


def record_training(
    session: Session,
    what: str,
    outcome: str,
    clicked: float,
    finished: float,
    seen: dict[str, float | None],
    finished_clock: float | None,
    waiting_text: str | None,
    model_id: str | None,
    caption: int | None,
) -> dict:
    """Add a Train press to `session.trainings`. `clicked`/`finished`: driver clock; `seen`: seconds after the
    click at which the page showed "Training finished" (finished), the first epoch's progress (epoch_first)
    and, last, the queue message (waiting_last), whose first text is `waiting_text`."""
    queue = QUEUE_TEXT.search(waiting_text or "")
    training = {
        "what": what,
        "seed": session.seed,
        "outcome": outcome,
        "clicked_at": clicked,  # driver clock
        "finished_at": finished,
        # the machine's clock (s) when the page showed "Training finished": compared with the teacher's board
        "finished_clock": finished_clock,
        "model_id": model_id,
        "wall": seen["finished"] or finished - clicked,  # click -> "Training finished" seen
        "queued": waiting_text is not None,
        "queue_wait": seen["epoch_first"],  # click -> the first epoch's progress shown
        "waiting_last_seen": seen["waiting_last"],
        "queue_text": waiting_text,
        "queue_running": int(queue.group(1)) if queue else None,
        "queue_position": int(queue.group(2)) if queue else None,
        "queue_length": int(queue.group(3)) if queue else None,
        "queue_estimate": int(queue.group(4)) if queue else None,
        "caption_seconds": caption,
        "own_seconds": None,  # filled in from the model store once the server is gone
        "epoch_seconds": None,
    }
    session.trainings.append(training)
    progress(
        session, f"training {outcome}: {training['wall']:.1f} s after the click (queue wait {training['queue_wait']})"
    )
    return training


async def train_and_wait(page, session: Session, recorder: Recorder, timeout: float, what: str = "") -> dict:
    """Press Train and wait for "Training finished" (or a load); record what the page showed on the way."""
    await page.evaluate(TRAIN_ARM_JS)
    clicked = recorder.now()
    await page.get_by_role("button", name="Train", exact=True).click()
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
    await page.get_by_text("Advanced and classroom options").click()
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


class ProtocolTab:
    """A protocol student (bench/protocol_student.py) taking the same steps with the same records: the
    server's side of a student whose browser runs on a device of its own. Nothing is painted: a page switch's
    `shown` is None; its `heading`, `content` and `run_done` are the h1 delta's arrival, the first content
    delta's after it and script_finished's, in seconds after the rerun was sent; a training's times run from
    the Train click's rerun to the deltas carrying the queue message, the first epoch and "Training finished"."""

    kind = "protocol"

    def __init__(self, client: ProtocolStudent) -> None:
        self.client = client
        self.errors_read = 0  # client.errors already counted

    @classmethod
    async def open(cls, url: str, timeout: float) -> ProtocolTab:
        """Load the app (the HTML, the websocket, the first run) and check that the Home page is rendered."""
        client = ProtocolStudent(url, timeout)
        try:
            await client.open()
            if not any(node.kind == "heading" and TITLE in node.text for node in client.nodes()):
                raise ProtocolError(f"the Home page showed no heading {TITLE!r}")
        except BaseException:
            await client.close()
            raise
        return cls(client)

    async def switch_to(
        self, session: Session, recorder: Recorder, step: str, link: str, heading: str, timeout: float
    ) -> float:
        start = recorder.now()
        switch = await self.client.switch_page(link, heading)
        end = recorder.now()

        def after(t: float | None) -> float | None:
            return None if t is None else t - switch.sent

        progress(session, f"{step}: h1 delta {after(switch.heading):.2f} s, finished {after(switch.finished):.2f} s")
        return record_switch(
            session, step, start, end, after(switch.heading), after(switch.content), None, after(switch.finished)
        )

    async def check_errors(self, session: Session, where: str) -> None:
        """The error elements that arrived since the last check, each text once (a fragment may resend one)."""
        new = self.client.errors[self.errors_read :]
        self.errors_read += len(new)
        session.errors += [f"{where}: {text}" for text in dict.fromkeys(text for _, text in new)]

    async def set_up_training(
        self, session: Session, recorder: Recorder, epochs: int, timeout: float, step: str, seed: int | None = None
    ) -> None:
        """As a browser does, but opening "Advanced and classroom options", a plain expander, sends nothing."""
        await self.switch_to(session, recorder, step, "Train", "Train", timeout)
        await self.client.click("quick_preset")
        await self.client.set_number("epochs", epochs)
        await self.client.set_number("seed", session.seed if seed is None else seed)

    async def train_and_wait(self, session: Session, recorder: Recorder, timeout: float, what: str = "") -> dict:
        """Press Train and wait for the "Training finished" (or load) message's delta, watching every delta of
        the main area for the queue message and the first epoch's progress on the way."""
        seen: dict[str, float | None] = dict.fromkeys(("finished", "epoch_first", "waiting_last"))
        message: dict[str, str | float | None] = {"waiting": None, "finished": None, "clock": None}

        def watch(node: Node, now: float) -> None:
            if node.path[0] != MAIN or message["finished"] is not None:
                return
            text = node.text
            waiting = WAITING_TEXT.search(text)
            if waiting:
                message["waiting"] = message["waiting"] or waiting.group(0)
                seen["waiting_last"] = now
            if seen["epoch_first"] is None and EPOCH_TEXT.search(text):
                seen["epoch_first"] = now
            if FINISHED.search(text):
                seen["finished"], message["finished"], message["clock"] = now, text, time.time()

        stop_watching = self.client.watch(watch)
        try:
            clicked = recorder.now()
            sent = await self.client.click("train_button", wait=False)
            await self.client.until(lambda: message["finished"], '"Training finished"', timeout)
        finally:
            stop_watching()
        finished = recorder.now()
        await self.client.wait_idle()
        model = MODEL_IN_URL.search(f"?{self.client.query}")
        caption = self.client.search(CURVES_CAPTION)
        return record_training(
            session,
            what,
            "trained" if "Training finished" in message["finished"] else "reused",
            clicked,
            finished,
            {key: None if value is None else value - sent for key, value in seen.items()},
            message["clock"],
            message["waiting"],
            model.group(1) if model else None,
            int(caption.group(2)) if caption else None,
        )

    async def images(self) -> int:
        return self.client.images()

    async def close(self) -> None:
        await self.client.close()


Student = BrowserStudent | ProtocolTab


async def join(
    open_student: Callable[[], Awaitable[Student]],
    session: Session,
    recorder: Recorder,
    timeout: float,
    prefix: str = "",
) -> Student | None:
    """Open the app (`open_student()`: Home rendered), then the Label page; returns the student (None if it failed)."""
    try:
        start = time.perf_counter()
        student = await open_student()
        session.seconds["join"] = time.perf_counter() - start
        await student.check_errors(session, "Home")
        recorder.mark(session.index, prefix + "joined")
        session.seconds["label"] = await student.switch_to(session, recorder, "Home→Label", "Label", "Label", timeout)
        await student.check_errors(session, "Label")
        recorder.mark(session.index, prefix + "labelled")
    except Exception as error:  # a timeout or a missing element: this session failed, the others go on
        failed(session, error)
        return None
    return student


async def main_path(
    student: Student | None, session: Session, recorder: Recorder, epochs: int, timeout: float, prefix: str = ""
) -> None:
    """Train (quick preset, epochs, seed, Train) -> Eigenvectors -> Tensor, timing each step."""

    async def step(name: str, coroutine) -> None:
        start = time.perf_counter()
        await coroutine
        session.seconds[name] = time.perf_counter() - start

    async def train() -> None:
        what = "teacher alone, first (cold server)" if prefix else "student"
        session.outcome = (await student.train_and_wait(session, recorder, timeout, what))["outcome"]

    start = time.perf_counter()
    if student is not None:
        try:
            await step("train_setup", student.set_up_training(session, recorder, epochs, timeout, "Label→Train"))
            await step("training", train())
            await student.check_errors(session, "Train")
            recorder.mark(session.index, prefix + "trained")
            await step(
                "eigenvectors",
                student.switch_to(session, recorder, "Train→Eigenvectors", "Eigenvectors", "Eigenvectors", timeout),
            )
            images = await student.images()
            if images < 3:
                session.errors.append(f"Eigenvectors: only {images} images")
            await student.check_errors(session, "Eigenvectors")
            await step(
                "tensor", student.switch_to(session, recorder, "Eigenvectors→Tensor", "Tensor", "Tensor", timeout)
            )
            await student.check_errors(session, "Tensor")
            session.completed = not session.errors
        except Exception as error:
            failed(session, error)
    session.seconds["path"] = time.perf_counter() - start
    session.seconds["total"] = sum(session.seconds.get(k, 0.0) for k in ("join", "label", "path"))


async def train_alone_again(
    student: Student | None, session: Session, recorder: Recorder, epochs: int, timeout: float
) -> None:
    """The teacher, still alone, trains once more with the next seed: the warm baseline of the ratios."""
    if student is None or not session.completed:
        return
    try:
        warm = Session(session.index, session.seed - 1)
        await student.set_up_training(session, recorder, epochs, timeout, "Tensor→Train", seed=warm.seed)
        session.trainings.append(await student.train_and_wait(warm, recorder, timeout, "teacher alone, warm"))
        await student.check_errors(session, "Train")
        session.completed = not session.errors
    except Exception as error:
        failed(session, error)


async def after_trainings(student: Student | None, session: Session, recorder: Recorder, timeout: float) -> None:
    """Every training is over: switch to Explain (all sessions at once)."""
    if student is None or not session.completed:
        return
    try:
        start = time.perf_counter()
        await student.switch_to(session, recorder, "Tensor→Explain", "Explain", "Explain one input", timeout)
        session.seconds["explain"] = time.perf_counter() - start
        await student.check_errors(session, "Explain")
        session.completed = not session.errors
    except Exception as error:
        failed(session, error)
        session.completed = False


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


def model_bytes() -> int:
    """Bytes of the quick preset's weights (d_hidden 64): parameters only, as float32."""
    from core.config import Config
    from core.train import new_model

    return sum(p.numel() * p.element_size() for p in new_model(Config()).parameters())


async def classroom(
    url: str,
    pid: int,
    sessions: list[Session],
    epochs: int,
    timeout: float,
    teacher: Session | None,
    teacher_board: bool = False,
    browsers: BrowserCpuGroup | None = None,
) -> dict:
    """Drive the class on the server at `url` (process `pid`); `browsers`: the cpu group chromium starts in."""
    from playwright.async_api import async_playwright

    recorder = Recorder(pid)
    with RssSampler(pid) as sampler, CpuShares(pid) as cpu:
        async with contextlib.AsyncExitStack() as stack:
            browser = None  # no Playwright or chromium when every session is a protocol student (no teacher, no board)
            if teacher is not None or teacher_board or any(s.kind == "browser" for s in sessions):
                playwright = await stack.enter_async_context(async_playwright())
                browser = await launch_chromium(playwright, NO_THROTTLING_ARGS)
            if browsers is not None:
                browsers.release(os.getpid())  # chromium stays in the group
            recorder.mark(None, "server idle")
            if teacher is not None:
                student = await join(
                    partial(BrowserStudent.open, browser, url, timeout), teacher, recorder, timeout, prefix="teacher "
                )
                await main_path(student, teacher, recorder, epochs, timeout, prefix="teacher ")
                await train_alone_again(student, teacher, recorder, epochs, timeout)
                if student is not None:
                    await student.close()
                await asyncio.sleep(1)
                recorder.mark(None, "teacher done")
            teacher_peak = sampler.peak
            sampler.reset()
            board = await open_teacher_board(browser, url, timeout) if teacher_board else None
            if board is not None:
                recorder.mark(None, "board open")
            students = []
            for session in sessions:  # one after another, so each join's cost can be read off
                open_student = (
                    partial(ProtocolTab.open, url, timeout)
                    if session.kind == "protocol"
                    else partial(BrowserStudent.open, browser, url, timeout)
                )
                students.append(await join(open_student, session, recorder, timeout))
            joined_peak = sampler.peak
            await asyncio.gather(
                *(
                    main_path(student, session, recorder, epochs, timeout)
                    for student, session in zip(students, sessions, strict=True)
                )
            )
            recorder.mark(None, "all done")
            await asyncio.sleep(3)  # let Streamlit finish its bookkeeping of the last runs
            recorder.mark(None, "3 s later")
            await asyncio.gather(
                *(
                    after_trainings(student, session, recorder, timeout)
                    for student, session in zip(students, sessions, strict=True)
                )
            )
            recorder.mark(None, "all on Explain")
            board_seen = None
            if board is not None:
                board_seen = {
                    **await board.evaluate(BOARD_READ_JS),
                    "closed": time.time() * 1000,
                    "errors": await error_texts_async(board),
                }
            cpu.stop()  # before chromium's processes exit
            for student in students:
                if isinstance(student, ProtocolTab):
                    await student.close()
            if browser is not None:
                await browser.close()
        peak = sampler.peak
    return {
        "events": recorder.events,
        "peak_rss": peak,
        "peak_rss_while_joining": joined_peak,
        "peak_rss_teacher": teacher_peak,
        "cpu": cpu.result(),
        "board_tab": board_seen,
    }


def analyse(events: list[dict], sessions: list[Session]) -> dict[str, float]:
    """Increments (bytes) read off the RSS timeline.

    Joins and Label visits alternate (join 0, Label 0, join 1, ...), so each one's increment is
    the RSS after it minus the RSS just before it. Without a teacher the first student pays the
    one-time costs, so the per-session increments are averaged over the sessions after the first,
    and the concurrent part still includes one-time costs of training (e.g. torch._dynamo).
    """

    def at(event: str, session: int | None = None) -> int | None:
        return next((e["rss"] for e in events if e["event"] == event and e["session"] == session), None)

    def mean(values: list[int]) -> float:
        return sum(values) / len(values) if values else float("nan")

    idle, teacher_done, final = at("server idle"), at("teacher done"), at("3 s later")
    board_open = at("board open")  # --teacher-board: the board tab's cost is not the first join's
    joined = [at("joined", s.index) for s in sessions]
    labelled = [at("labelled", s.index) for s in sessions]
    if None in joined or None in labelled:  # a session failed to join: no per-session figures
        return {"idle": idle, "final": final}
    before_join = [board_open or teacher_done or idle, *labelled[:-1]]
    join_costs = [j - b for j, b in zip(joined, before_join, strict=True)]
    label_costs = [lab - j for lab, j in zip(labelled, joined, strict=True)]
    result = {"idle": idle, "final": final, "students": final - (teacher_done or idle)}
    if teacher_done is not None:  # the teacher paid the one-time costs
        result["teacher_join"] = at("teacher joined", -1) - idle
        result["teacher_label"] = at("teacher labelled", -1) - at("teacher joined", -1)
        result["teacher_rest"] = teacher_done - at("teacher labelled", -1)
        per = slice(0, None)
    else:
        result["first_join"], result["first_label"] = join_costs[0], label_costs[0]
        per = slice(1, None)
    result["per_join"] = mean(join_costs[per])
    result["max_join"] = max(join_costs[per], default=float("nan"))
    result["per_label"] = mean(label_costs[per])
    result["max_label"] = max(label_costs[per], default=float("nan"))
    result["per_student_concurrent"] = (final - labelled[-1]) / len(sessions)
    result["per_student_total"] = result["students"] / len(sessions)
    return result


def fill_own_seconds(log_dir: Path, sessions: list[Session]) -> None:
    """Each training's own seconds: the last epoch's wall time since its training started, from the
    checkpoint the server wrote to its model store (a directory beside the log), by seed and epochs."""
    from core.checkpoint import load_checkpoint

    stored = {}
    for path in log_dir.glob("model-store-*/*.safetensors"):
        with contextlib.suppress(Exception):
            _, config, history = load_checkpoint(path.read_bytes())
            if history:
                stored[config.seed, config.epochs] = [m.seconds for m in history]
    for session in sessions:
        for training in session.trainings:
            epochs = next((v for (seed, _), v in stored.items() if seed == training["seed"]), None)
            if epochs is not None:
                training["own_seconds"], training["epoch_seconds"] = epochs[-1], epochs


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "max": max(values),
        "min": min(values),
    }


def switch_stats(switches: list[dict], key: str, steps: list[str]) -> dict:
    """One measure (`key`) of page switches: overall, per phase and per step."""
    return {
        "all": spread([sw[key] for sw in switches]),
        "phases": {phase: spread([sw[key] for sw in switches if sw["phase"] == phase]) for phase in PHASES},
        "steps": {step: spread([sw[key] for sw in switches if sw["step"] == step]) for step in steps},
    }


def switching(sessions: list[Session], teacher: Session | None) -> dict:
    """Page-switch times, overall, per phase and per step, for each kind of session (MEASURES): a browser's
    click -> heading and first content painted (its switch time), the heading visible, the run finished; a
    protocol student's rerun sent -> the h1 and the first content delta after it arrived (its switch time),
    the h1 delta alone, script_finished.

    Phases by the driver's clock: "before" ended before the first student pressed Train, "after" started
    once the last student's training had finished, "during" is everything else."""
    trainings = [t for s in sessions for t in s.trainings]
    first_click = min((t["clicked_at"] for t in trainings), default=float("inf"))
    last_finish = max((t["finished_at"] for t in trainings), default=float("-inf"))
    switches = [sw for s in sessions for sw in s.switches]
    for sw in switches:
        sw["phase"] = "before" if sw["end"] <= first_click else "after" if sw["start"] >= last_finish else "during"
    steps = list(dict.fromkeys(sw["step"] for sw in switches))
    kinds = {}
    for kind, keys in MEASURES.items():
        mine = [sw for s in sessions if s.kind == kind for sw in s.switches]
        kinds[kind] = {
            "sessions": sum(s.kind == kind for s in sessions),
            **{key: switch_stats(mine, key, steps) for key in keys},
        }
    return {
        **kinds,
        "step_phases": {
            step: {phase: sum(sw["step"] == step and sw["phase"] == phase for sw in switches) for phase in PHASES}
            for step in steps
        },
        "teacher": spread([sw["shown"] for sw in teacher.switches]) if teacher else {"n": 0},
        "first_train_click": first_click if trainings else None,
        "last_training_finished": last_finish if trainings else None,
    }


def board_summary(board: dict | None, sessions: list[Session]) -> dict | None:
    """The teacher's board tab (--teacher-board): its script runs, its redraws, and for each student's model
    the seconds from that student's "Training finished" to the model's tile on the board (negative: the board
    showed it first). A redraw is a run after which the board held more models than before it; the other
    runs are the fragment's quiet wakes (or a redraw with nothing new on it). The browser asks for a wake
    every 2 s, but a run whose start and end reach the page in one frame leaves no trace in the DOM, so
    `runs` and `wake_interval` count the wakes the tab showed, not all of them."""
    if board is None:
        return None
    runs, redraws, before = board["runs"], [], None
    for start, end, shown in runs:
        if before is not None and shown > before:
            redraws.append((end - start) / 1000)
        before = shown
    latencies, missing = [], []
    for session in sessions:
        for t in session.trainings:
            seen = board["first_seen"].get(t["model_id"]) if t["model_id"] else None
            if seen is None or t["finished_clock"] is None:
                missing.append(session.index)
                continue
            t["on_teacher_board"] = seen / 1000 - t["finished_clock"]
            latencies.append(t["on_teacher_board"])
    return {
        "open_seconds": (board["closed"] - board["opened"]) / 1000,
        "runs": len(runs),
        "redraws": len(redraws),
        "redraw_seconds": spread(redraws),
        "run_seconds": spread([(end - start) / 1000 for start, end, _ in runs]),
        "wake_interval": spread([(b[0] - a[0]) / 1000 for a, b in itertools.pairwise(runs)]),
        "models_seen": len(board["first_seen"]),
        "latency": spread(latencies),
        "missing": missing,
        "errors": board["errors"],
    }


def training_summary(sessions: list[Session], teacher: Session | None) -> dict:
    """Trainings: wall (click -> finished), queue wait, own seconds, and own seconds / the teacher's warm run alone;
    wall and ratio also per kind of session (a browser sees "Training finished" painted, a protocol student
    its delta arrive; the own seconds are the server's either way)."""
    alone = teacher.trainings[-1]["own_seconds"] if teacher and teacher.trainings else None
    trainings = [t for s in sessions for t in s.trainings if t["outcome"] == "trained"]
    kind_of = {id(t): s.kind for s in sessions for t in s.trainings}
    for t in trainings:
        own = t["own_seconds"]
        t["ratio"] = own / alone if own and alone else None
        t["after_training"] = (  # the training's end -> "Training finished" seen: the page's lag
            t["wall"] - t["queue_wait"] - own if own and t["queue_wait"] is not None else None
        )
    return {
        "alone_seconds": alone,
        "alone_runs": [
            {k: t[k] for k in ("what", "seed", "own_seconds", "wall", "queue_wait", "caption_seconds")}
            for t in (teacher.trainings if teacher else [])
        ],
        "trained": len(trainings),
        "queued": sum(t["queued"] for t in trainings),
        "wall": spread([t["wall"] for t in trainings]),
        "queue_wait": spread([t["queue_wait"] for t in trainings]),
        "own_seconds": spread([t["own_seconds"] for t in trainings]),
        "ratio": spread([t["ratio"] for t in trainings]),
        "by_kind": {
            kind: {
                "trained": sum(kind_of[id(t)] == kind for t in trainings),
                "wall": spread([t["wall"] for t in trainings if kind_of[id(t)] == kind]),
                "ratio": spread([t["ratio"] for t in trainings if kind_of[id(t)] == kind]),
            }
            for kind in MEASURES
        },
        "after_training": spread([t["after_training"] for t in trainings]),
        "queue_estimate_first": spread([t["queue_estimate"] for t in trainings if t["queued"]]),
        "missing_own_seconds": sum(t["own_seconds"] is None for t in trainings),
        "missing_queue_wait": sum(t["queue_wait"] is None for t in trainings),
    }


def run(
    n_sessions: int = 8,
    epochs: int = 3,
    same_config: bool = False,
    seed_base: int = 1000,
    teacher: bool = True,
    log_dir: Path | None = None,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
    memory_cap: int | None = None,
    teacher_board: bool = False,
    browser_shares: int = 0,
    protocol_sessions: int = 0,
) -> dict:
    """Start a server, run the classroom, return everything measured (used by tests/load/test_classroom.py and
    tests/load/test_protocol_student.py).

    `memory_cap` (MiB): run the server in a memory cgroup of that size (MemoryCap). `teacher_board`: keep a
    Class board tab open while the students work, and report what it saw (board_summary). `browser_shares`:
    run chromium (and Playwright's driver) in a cgroup v1 cpu group of that many cpu.shares, the server and this
    process in the root group (1024): as if the students' browsers ran on their own devices (root; see
    BrowserCpuGroup).
    `protocol_sessions`: the first that many of the `n_sessions` students are protocol students (ProtocolTab),
    the others chromium tabs."""
    if not 0 <= protocol_sessions <= n_sessions:
        raise ValueError(f"protocol_sessions must be between 0 and the {n_sessions} sessions, got {protocol_sessions}")
    browsers = BrowserCpuGroup(browser_shares) if browser_shares else None
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="classroom_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    sessions = [
        Session(i, seed_base if same_config else seed_base + i, "protocol" if i < protocol_sessions else "browser")
        for i in range(n_sessions)
    ]
    teacher_session = Session(-1, seed_base - 1) if teacher else None
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})  # the server inherits this process's environment
    cap = MemoryCap(memory_cap) if memory_cap else None
    try:
        with contextlib.ExitStack() as stack:
            if cap is not None:
                stack.enter_context(cap)
                if cap.problem:
                    print(f"memory cap: {cap.problem}; running without it", file=sys.stderr)

            def on_start(server) -> None:
                if cap is not None:
                    cap.add(server)
                if browsers is not None:
                    browsers.release(server.pid)

            with streamlit_server(log_dir / "streamlit.log", timeout=120, on_start=on_start) as (url, process):
                measured = asyncio.run(
                    classroom(url, process.pid, sessions, epochs, timeout, teacher_session, teacher_board, browsers)
                )
                server_exit = process.poll()  # None: the server was still running at the end
            if cap is not None:
                time.sleep(0.5)  # the cgroup's counters after the server's exit
                memory_cgroup = cap.report()
    finally:
        if browsers is not None:
            browsers.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    fill_own_seconds(log_dir, [*sessions, *([teacher_session] if teacher_session else [])])
    switches, trainings = switching(sessions, teacher_session), training_summary(sessions, teacher_session)
    board = board_summary(measured.pop("board_tab"), sessions)
    return {
        "sessions": [asdict(s) for s in sessions],  # after the three above, which add to them
        "teacher": asdict(teacher_session) if teacher_session else None,
        "switching": switches,
        "training": trainings,
        "teacher_board": board,
        "memory_cgroup": memory_cgroup if cap is not None else None,
        "server_exit_code": server_exit,
        "config": {
            "sessions": n_sessions,
            "protocol_sessions": protocol_sessions,
            "epochs": epochs,
            "same_config": same_config,
            "seed_base": seed_base,
            "teacher": teacher,
            "env": env or {},
            "memory_cap_mib": memory_cap,
            "browser_shares": browser_shares,
            "browser_group_problem": browsers.problem if browsers is not None else None,
            "teacher_board": teacher_board,
        },
        "increments": analyse(measured["events"], sessions),
        "model_bytes": model_bytes(),
        "seconds": time.perf_counter() - start,
        "load_average": [load_before, os.getloadavg()[0]],
        "log": str(log_dir / "streamlit.log"),
        **measured,
    }


def report(result: dict) -> None:
    c, inc = result["config"], result["increments"]
    seeds = f"one shared config (seed {c['seed_base']})" if c["same_config"] else "one seed per session"
    protocol = c.get("protocol_sessions", 0)
    kinds = f" ({protocol} protocol students, {c['sessions'] - protocol} in chromium)" if protocol else ""
    print(
        f"{c['sessions']} sessions{kinds}, {c['epochs']} epochs each on the quick preset, {seeds}, "
        f"{'after a teacher session' if c['teacher'] else 'no teacher session (cold server)'}"
        f"{', server env ' + str(c['env']) if c['env'] else ''}; {os.cpu_count()} cores, load average "
        f"{result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after; "
        f"{result['seconds']:.0f} s in all; server log {result['log']}"
    )
    print()
    print(
        f"{'session':>7} {'kind':>8} {'seed':>6} {'join':>6} {'label':>6} {'setup':>6} {'train':>6} {'eigen':>6} "
        f"{'total':>6}  outcome   errors   (wall seconds)"
    )
    rows = ([result["teacher"]] if result["teacher"] else []) + result["sessions"]
    for s in rows:
        t = s["seconds"]
        cells = " ".join(
            f"{t[k]:6.1f}" if k in t else f"{'-':>6}"
            for k in ("join", "label", "train_setup", "training", "eigenvectors", "total")
        )
        name = "teacher" if s["index"] < 0 else s["index"]
        print(
            f"{name:>7} {s['kind']:>8} {s['seed']:>6} {cells}  {s['outcome']:<9} {len(s['errors'])}"
            + "".join(f"\n{'':>9}{e}" for e in s["errors"])
        )
    print()
    print(f"{'t (s)':>7} {'session':>7}  {'event':<18} {'RSS (MB)':>9} {'delta':>8}")
    previous = None
    for e in result["events"]:
        delta = "" if previous is None else f"{(e['rss'] - previous) / MB:+8.1f}"
        session = "" if e["session"] is None else e["session"]
        print(f"{e['t']:7.1f} {session:>7}  {e['event']:<18} {e['rss'] / MB:9.1f} {delta:>8}")
        previous = e["rss"]
    print(f"peak RSS while the students worked: {result['peak_rss'] / MB:.1f} MB (sampled every 50 ms)")
    print()
    completed = sum(s["completed"] for s in result["sessions"])
    outcomes = [s["outcome"] for s in result["sessions"]]
    print(
        f"students completed without an error element: {completed} / {c['sessions']} "
        f"({outcomes.count('trained')} trained a model, {outcomes.count('reused')} reused one)"
    )

    def line(label: str, key: str, note: str = "", signed: bool = True) -> None:
        if key in inc:
            value = f"{inc[key] / MB:+9.1f}" if signed else f"{inc[key] / MB:9.1f}"
            print(f"  {label:<52} {value} MB  {note}")

    one_time = "" if c["teacher"] else "  (includes one-time costs: no teacher)"
    line("server idle, no session", "idle", signed=False)
    line("teacher: join (torch, checkpoint)", "teacher_join", "one-time")
    line("teacher: Label (MNIST, similarities, chart code)", "teacher_label", "one-time")
    line("teacher: training, Eigenvectors (torch._dynamo, ...)", "teacher_rest", "one-time")
    line("first student's join (torch, checkpoint)", "first_join", "one-time")
    line("first student's Label (MNIST, similarities)", "first_label", "one-time")
    if "per_join" in inc:
        goal = "met" if inc["per_join"] < 20 * MB else "NOT met"
        line(
            "per joined student (Home rendered), mean",
            "per_join",
            f"max {inc['max_join'] / MB:+.1f}; goal < 20 MB: {goal}",
        )
        line("per student's Label visit, mean", "per_label", f"max {inc['max_label'] / MB:+.1f}")
        line(
            "per student, concurrent training + Eigenvectors + Tensor",
            "per_student_concurrent",
            f"(its weights alone: {result['model_bytes'] / 1024:.0f} KB){one_time}",
        )
        line("per student, everything", "per_student_total", one_time.strip())
    line("final", "final", signed=False)
    report_responsiveness(result)


def seconds(stats: dict, keys: tuple[str, ...] = ("median", "p95", "max")) -> str:
    if not stats.get("n"):
        return "none"
    return ", ".join(f"{key} {stats[key]:.2f}" for key in keys) + f" s (n = {stats['n']})"


def report_responsiveness(result: dict) -> None:
    """Page switches, trainings and the queue, the memory cap, and the class target."""
    c, sw, tr = result["config"], result.get("switching"), result.get("training")
    if sw is None or tr is None:
        return
    print()
    print(
        "page switches, seconds: median / p95 / max (n). A browser session: click on the sidebar link -> the page's h1"
    )
    print("and first content element painted (in the page), and -> its script run finished. A protocol student: rerun")
    print(
        "sent -> the h1 delta and the first content delta after it arrived, and -> script_finished (the server's part"
    )
    print("of a switch: nothing is painted)")
    if sw["first_train_click"] is not None:
        print(
            f"  phases (driver clock): before = ended before the first Train press ({sw['first_train_click']:.0f} s), "
            f"after = started once the last training finished ({sw['last_training_finished']:.0f} s)"
        )
    columns = [
        (kind, key, label)
        for kind, key, label in (
            ("browser", "shown", "browser: painted"),
            ("browser", "run_done", "browser: run finished"),
            ("protocol", "content", "protocol: h1 + content"),
            ("protocol", "run_done", "protocol: script_finished"),
        )
        if sw[kind]["sessions"]
    ]

    def cell(stats: dict) -> str:
        return f"{stats['median']:.2f} / {stats['p95']:.2f} / {stats['max']:.2f} ({stats['n']})" if stats["n"] else "-"

    print(f"  {'':<22}" + "".join(f"{label:<28}" for _, _, label in columns))
    rows = [(f"{phase} training", lambda stats, phase=phase: stats["phases"][phase]) for phase in PHASES]
    rows.append(("all", lambda stats: stats["all"]))
    rows += [(step, lambda stats, step=step: stats["steps"][step]) for step in sw["step_phases"]]
    for name, pick in rows:
        counts = sw["step_phases"].get(name)
        phases = f"  [{', '.join(f'{n} {phase}' for phase, n in counts.items() if n)}]" if counts else ""
        print(f"  {name:<22}" + "".join(f"{cell(pick(sw[kind][key])):<28}" for kind, key, _ in columns) + phases)
    for kind, what in (("browser", "h1 visible in the page (not yet painted)"), ("protocol", "h1 delta alone")):
        if sw[kind]["sessions"]:
            print(f"  {kind + ': ' + what:<50} {seconds(sw[kind]['heading']['all'])}")
    print(f"  {'teacher (browser), alone: painted':<50} {seconds(sw['teacher'])}")
    print()
    print("trainings: Train click -> 'Training finished' (wall), queue wait (click -> first epoch shown),")
    print("own seconds (the run's last epoch, from the checkpoint the server stored), ratio = own / teacher's alone")
    for run in tr["alone_runs"]:
        own = "-" if run["own_seconds"] is None else f"{run['own_seconds']:.2f}"
        print(f"  {run['what']:<40} seed {run['seed']}: own {own} s, wall {run['wall']:.2f} s")
    print(f"  students who trained                     {tr['trained']} ({tr['queued']} saw the queue message)")
    print(f"  {'wall, click -> finished':<40} {seconds(tr['wall'])}")
    for kind, part in tr["by_kind"].items():
        if part["trained"] and sw[kind]["sessions"] < c["sessions"]:  # both kinds in the class: each on its own
            print(f"  {'  ' + kind + ' sessions':<40} {seconds(part['wall'])}; own / alone {seconds(part['ratio'])}")
    print(f"  {'queue wait':<40} {seconds(tr['queue_wait'])}")
    print(f"  {'own training seconds':<40} {seconds(tr['own_seconds'])}")
    print(f"  {'finished training -> message shown':<40} {seconds(tr['after_training'])}")
    if tr["ratio"].get("n"):
        r = tr["ratio"]
        print(f"  {'own / alone':<40} median {r['median']:.2f}, p95 {r['p95']:.2f}, max {r['max']:.2f} (n = {r['n']})")
    if tr["missing_own_seconds"] or tr["missing_queue_wait"]:
        print(
            f"  missing: own seconds of {tr['missing_own_seconds']}, queue wait of {tr['missing_queue_wait']} trainings"
        )
    print(f"  {'first queue estimate shown':<40} {seconds(tr['queue_estimate_first'])}")
    print()
    board = result.get("teacher_board")
    if board is not None:
        print(
            f"the teacher's Class board tab, open {board['open_seconds']:.0f} s with no click or reload: "
            f"{board['runs']} script runs seen (its fragment's wakes and the redraws they asked for; a wake shorter "
            "than a frame may not show), "
            f"{board['redraws']} redraws with new models, {board['models_seen']} models seen"
        )
        print(f"  {'a redraw, script run':<40} {seconds(board['redraw_seconds'])}")
        print(f"  {'any run of the tab':<40} {seconds(board['run_seconds'])}")
        print(f"  {'between the starts of two runs':<40} {seconds(board['wake_interval'], ('min', 'median', 'max'))}")
        print(f"  {'Training finished -> on the board':<40} {seconds(board['latency'], ('median', 'max'))}")
        if board["missing"]:
            print(f"  never seen on the board (or no finish time): sessions {board['missing']}")
        for text in board["errors"]:
            print(f"  error element on the board: {text}")
        print()
    cpu = result.get("cpu")
    if cpu:
        used = cpu["cpu_seconds"]
        total = cpu["wall"] * cpu["cores"]
        print(
            f"CPU over the {cpu['wall']:.0f} s of browser work ({total:.0f} core-seconds on {cpu['cores']} cores): "
            + ", ".join(f"{group} {seconds:.0f} s ({seconds / total:.0%})" for group, seconds in used.items())
            + f"; load average up to {cpu['load_average_max']:.1f}"
        )
        if cpu["other_test_runs"]:
            first, last = cpu["other_test_runs_seen_at"]
            print(f"  other test runs were running from {first:.0f} s to {last:.0f} s: {cpu['other_test_runs']}")
        else:
            print("  no other test run (pytest -m) was seen meanwhile")
    cap = result.get("memory_cgroup")
    if cap is not None:
        if cap["applied"]:
            after = cap["after"]
            usage = f"{after['max_usage'] / MB:.0f} MiB" if after.get("max_usage") else "?"
            rose = ", ".join(f"{k} +{v}" for k, v in cap["rose"].items()) or "none rose"
            print(
                f"memory cap {cap['mib']} MiB (cgroup v{cap['version']}, {cap['path']}): the cgroup's peak usage "
                f"(RSS + page cache) {usage}; limit hits / OOM counters: {rose} ({after})"
            )
        else:
            print(f"memory cap {cap['mib']} MiB NOT applied: {cap['problem']}")
    if result.get("server_exit_code") is not None:
        print(f"the server had exited before the end, code {result['server_exit_code']}")
    peak = max(result["peak_rss"], result.get("peak_rss_teacher", 0))
    students = result["sessions"]
    completed = sum(s["completed"] for s in students)
    errors = sum(len(s["errors"]) for s in students)
    ratio = tr["ratio"].get("max")
    board = result.get("teacher_board")
    if board is not None:
        errors += len(board["errors"])
    checks = [
        (f"{completed}/{c['sessions']} completed", completed == c["sessions"]),
        (f"{errors} error elements or driver errors", errors == 0),
        *(
            (
                f"p95 page switch, {kind} ({MEASURES[kind][0]}) {switch['p95']:.2f} s < {TARGET['switch_p95']:.0f} s",
                switch["p95"] < TARGET["switch_p95"],
            )
            for kind in MEASURES
            if (switch := sw[kind][MEASURES[kind][0]]["all"]).get("n")
        ),
        (
            f"max own / alone {ratio if ratio is not None else float('nan'):.2f} < {TARGET['ratio_max']:.0f}",
            ratio is not None and ratio < TARGET["ratio_max"],
        ),
        (f"peak RSS {peak / MB:.0f} MiB < 1.5 GiB", peak < TARGET["peak_rss"]),
    ]
    if board is not None:
        late = board["latency"].get("max", float("inf"))
        checks.append(
            (
                f"on the teacher's board at most {late:.1f} s after Training finished, all {c['sessions']} "
                f"seen, < {TARGET['board_max']:.0f} s",
                late < TARGET["board_max"] and not board["missing"],
            )
        )
    print("target: " + "; ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent student sessions (default 8)")
    parser.add_argument(
        "--protocol-sessions",
        type=int,
        default=0,
        metavar="K",
        help="K of the sessions are protocol students (bench/protocol_student.py: Streamlit's websocket protocol, "
        "no browser), the others chromium tabs (default 0)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs each session trains (default 3)")
    parser.add_argument(
        "--same-config", action="store_true", help="every session uses the same seed (the shared-registry case)"
    )
    parser.add_argument("--seed-base", type=int, default=1000, help="session i uses seed seed-base + i")
    parser.add_argument(
        "--no-teacher",
        action="store_true",
        help="no warm-up session: the students meet a cold server (one-time costs mixed in)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds any one step may take")
    parser.add_argument(
        "--memory-cap",
        type=int,
        default=None,
        metavar="MIB",
        help="run the server in a memory cgroup with this limit (cgroup v2 or v1; root)",
    )
    parser.add_argument(
        "--teacher-board",
        action="store_true",
        help="keep one more tab open on the Class board for the whole run and report what it saw",
    )
    parser.add_argument(
        "--browser-shares",
        type=int,
        default=0,
        metavar="N",
        help="run chromium and Playwright's driver in a cpu cgroup of N cpu.shares (the server and this process, "
        "with its protocol students, keep 1024): the server's "
        "own responsiveness when the browsers do not take its cores (in a class they run on the students' devices)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    PROGRESS.update(on=True, start=time.perf_counter())
    env = dict(item.split("=", 1) for item in args.env)
    result = run(
        args.sessions,
        args.epochs,
        args.same_config,
        args.seed_base,
        teacher=not args.no_teacher,
        timeout=args.timeout,
        env=env,
        memory_cap=args.memory_cap,
        teacher_board=args.teacher_board,
        browser_shares=args.browser_shares,
        protocol_sessions=args.protocol_sessions,
    )
    report(result)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
