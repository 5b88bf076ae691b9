"""A classroom on one server: N students take the main path at once; the server's memory, step by step.

Starts `streamlit run streamlit_app.py` headless on a free port and drives N (default 8) sessions
from one headless chromium (one browser context each, all driven by one asyncio loop):

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

Every session must end with no exception or st.error element on any page it visited. The
server's RSS (psutil: the streamlit process and its children, if any) is read before any session,
after each join (Home rendered), after each session's Label page, after each training, and at the
end; a thread also samples it every 50 ms for the peak. Printed: per-session wall times, the RSS
timeline, and the increments: the teacher's one-time costs, per joined session, per Label visit,
and per student over the concurrent part (the ~230 KB of weights, plus whatever the transient
buffers of training leave behind in glibc's heap and per-thread arenas). `--env KEY=VALUE` sets a
variable for the server only, e.g. MALLOC_MMAP_THRESHOLD_=4194304 or OMP_NUM_THREADS=1.

The machine has 2 cores shared by the server, chromium and this driver: wall times under load are
only indicative; the memory numbers are what this script is for.

    .venv/bin/python bench/classroom_load.py                       # 8 sessions, 3 epochs each
    .venv/bin/python bench/classroom_load.py --sessions 4 --same-config --json artifacts/classroom.json
    .venv/bin/python bench/classroom_load.py --no-teacher         # a cold server meets the class at once
    .venv/bin/python bench/classroom_load.py --env OMP_NUM_THREADS=1 --env MALLOC_MMAP_THRESHOLD_=4194304
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from tests.browser_support import (
    NO_THROTTLING_ARGS,
    RssSampler,
    after_run_async,
    error_texts_async,
    go_to_async,
    launch_chromium,
    server_rss,
    streamlit_server,
    wait_idle_async,
)

MB = 2**20
TITLE = "Bilinear Eigen Lab"
FINISHED = re.compile("Training finished|Loaded the model trained earlier|Loaded the precomputed checkpoint")


@dataclass
class Session:
    index: int
    seed: int
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds
    outcome: str = ""  # "trained" or "reused" (the registry already had the model), or what failed
    errors: list[str] = field(default_factory=list)  # error elements seen, "page: text"
    completed: bool = False


class Recorder:
    """The server's RSS at named moments, with the time since the start."""

    def __init__(self, pid: int) -> None:
        self.pid, self.start, self.events = pid, time.perf_counter(), []

    def mark(self, session: int | None, event: str) -> int:
        rss = server_rss(self.pid)
        self.events.append({"t": time.perf_counter() - self.start, "session": session, "event": event, "rss": rss})
        return rss


async def check_errors(page, session: Session, where: str) -> None:
    session.errors += [f"{where}: {text}" for text in await error_texts_async(page)]


def failed(session: Session, error: Exception) -> None:
    first_line = str(error).splitlines()[0] if str(error) else ""
    session.outcome = session.outcome or f"failed: {type(error).__name__}"
    session.errors.append(f"driver: {type(error).__name__}: {first_line}")


async def join(browser, url: str, session: Session, recorder: Recorder, timeout: float, prefix: str = ""):
    """Open the app in a new browser context (Home), then the Label page; returns the page (None if it failed)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        start = time.perf_counter()
        await page.goto(url)
        await page.get_by_role("heading", name=TITLE).first.wait_for(timeout=timeout * 1000)
        await wait_idle_async(page, timeout)
        session.seconds["join"] = time.perf_counter() - start
        await check_errors(page, session, "Home")
        recorder.mark(session.index, prefix + "joined")
        start = time.perf_counter()
        await go_to_async(page, "Label", timeout)
        session.seconds["label"] = time.perf_counter() - start
        await check_errors(page, session, "Label")
        recorder.mark(session.index, prefix + "labelled")
    except Exception as error:  # a timeout or a missing element: this session failed, the others go on
        failed(session, error)
        return None
    return page


async def main_path(page, session: Session, recorder: Recorder, epochs: int, timeout: float, prefix: str = "") -> None:
    """Train (quick preset, epochs, seed, Train) -> Eigenvectors, timing each step."""

    async def step(name: str, coroutine) -> None:
        start = time.perf_counter()
        await coroutine
        session.seconds[name] = time.perf_counter() - start

    async def set_number(key: str, value: int) -> None:
        box = page.locator(f".st-key-{key} input")
        await box.fill(str(value))
        await after_run_async(page, lambda: box.press("Enter"), timeout)

    async def set_up_training() -> None:
        await go_to_async(page, "Train", timeout)
        await page.get_by_text("Advanced and classroom options").click()
        await after_run_async(page, page.get_by_role("button", name="Quick classroom preset").click, timeout)
        await set_number("epochs", epochs)
        await set_number("seed", session.seed)

    async def train() -> None:
        await page.get_by_role("button", name="Train", exact=True).click()
        message = page.get_by_text(FINISHED).first
        await message.wait_for(timeout=timeout * 1000)
        session.outcome = "trained" if "Training finished" in await message.inner_text() else "reused"
        await wait_idle_async(page, timeout)

    start = time.perf_counter()
    if page is not None:
        try:
            await step("train_setup", set_up_training())
            await step("training", train())
            await check_errors(page, session, "Train")
            recorder.mark(session.index, prefix + "trained")
            await step("eigenvectors", go_to_async(page, "Eigenvectors", timeout))
            images = await page.locator('[data-testid="stImage"]').count()
            if images < 3:
                session.errors.append(f"Eigenvectors: only {images} images")
            await check_errors(page, session, "Eigenvectors")
            session.completed = not session.errors
        except Exception as error:
            failed(session, error)
    session.seconds["path"] = time.perf_counter() - start
    session.seconds["total"] = sum(session.seconds.get(k, 0.0) for k in ("join", "label", "path"))


def model_bytes() -> int:
    """Bytes of the quick preset's weights (d_hidden 64): parameters only, as float32."""
    from core.config import Config
    from core.train import new_model

    return sum(p.numel() * p.element_size() for p in new_model(Config()).parameters())


async def classroom(
    url: str, pid: int, sessions: list[Session], epochs: int, timeout: float, teacher: Session | None
) -> dict:
    from playwright.async_api import async_playwright

    recorder = Recorder(pid)
    with RssSampler(pid) as sampler:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright, NO_THROTTLING_ARGS)
            recorder.mark(None, "server idle")
            if teacher is not None:
                page = await join(browser, url, teacher, recorder, timeout, prefix="teacher ")
                await main_path(page, teacher, recorder, epochs, timeout, prefix="teacher ")
                if page is not None:
                    await page.context.close()
                await asyncio.sleep(1)
                recorder.mark(None, "teacher done")
            sampler.reset()
            pages = []
            for session in sessions:  # one after another, so each join's cost can be read off
                pages.append(await join(browser, url, session, recorder, timeout))
            joined_peak = sampler.peak
            await asyncio.gather(
                *(
                    main_path(page, session, recorder, epochs, timeout)
                    for page, session in zip(pages, sessions, strict=True)
                )
            )
            recorder.mark(None, "all done")
            await asyncio.sleep(3)  # let Streamlit finish its bookkeeping of the last runs
            recorder.mark(None, "3 s later")
            await browser.close()
        peak = sampler.peak
    return {"events": recorder.events, "peak_rss": peak, "peak_rss_while_joining": joined_peak}


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
    joined = [at("joined", s.index) for s in sessions]
    labelled = [at("labelled", s.index) for s in sessions]
    if None in joined or None in labelled:  # a session failed to join: no per-session figures
        return {"idle": idle, "final": final}
    before_join = [teacher_done or idle, *labelled[:-1]]
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


def run(
    n_sessions: int = 8,
    epochs: int = 3,
    same_config: bool = False,
    seed_base: int = 1000,
    teacher: bool = True,
    log_dir: Path | None = None,
    timeout: float = 300.0,
    env: dict[str, str] | None = None,
) -> dict:
    """Start a server, run the classroom, return everything measured (used by tests/test_classroom.py)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="classroom_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    sessions = [Session(i, seed_base if same_config else seed_base + i) for i in range(n_sessions)]
    teacher_session = Session(-1, seed_base - 1) if teacher else None
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})  # the server inherits this process's environment
    try:
        with streamlit_server(log_dir / "streamlit.log", timeout=120) as (url, process):
            measured = asyncio.run(classroom(url, process.pid, sessions, epochs, timeout, teacher_session))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {
        "sessions": [asdict(s) for s in sessions],
        "teacher": asdict(teacher_session) if teacher_session else None,
        "config": {
            "sessions": n_sessions,
            "epochs": epochs,
            "same_config": same_config,
            "seed_base": seed_base,
            "teacher": teacher,
            "env": env or {},
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
    print(
        f"{c['sessions']} sessions, {c['epochs']} epochs each on the quick preset, {seeds}, "
        f"{'after a teacher session' if c['teacher'] else 'no teacher session (cold server)'}"
        f"{', server env ' + str(c['env']) if c['env'] else ''}; {os.cpu_count()} cores, load average "
        f"{result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after; "
        f"{result['seconds']:.0f} s in all; server log {result['log']}"
    )
    print()
    print(
        f"{'session':>7} {'seed':>6} {'join':>6} {'label':>6} {'setup':>6} {'train':>6} {'eigen':>6} "
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
            f"{name:>7} {s['seed']:>6} {cells}  {s['outcome']:<9} {len(s['errors'])}"
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
            "per student, concurrent training + Eigenvectors",
            "per_student_concurrent",
            f"(its weights alone: {result['model_bytes'] / 1024:.0f} KB){one_time}",
        )
        line("per student, everything", "per_student_total", one_time.strip())
    line("final", "final", signed=False)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent browser sessions (default 8)")
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
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    result = run(
        args.sessions,
        args.epochs,
        args.same_config,
        args.seed_base,
        teacher=not args.no_teacher,
        timeout=args.timeout,
        env=env,
    )
    report(result)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
