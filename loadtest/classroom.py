"""The scenario: a server, the teacher alone, the students joining one after another and then taking the
main path at once, and everything measured on the way (run() returns it; __main__ prints and writes it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

from safetensors import safe_open

from core.config import Config
from loadtest.browser import BOARD_READ_JS, BrowserStudent, open_teacher_board
from loadtest.cgroups import BrowserCpuGroup, MemoryCap
from loadtest.protocol import ProtocolTab, check_streamlit_version
from loadtest.session import Session, failed
from loadtest.stats import analyse, board_summary, switching, training_summary
from loadtest.usage import CpuShares, Recorder
from tests.browser_support import NO_THROTTLING_ARGS, RssSampler, error_texts_async, launch_chromium, streamlit_server

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
    from playwright.async_api import async_playwright  # a dev dependency, only where a class runs

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


def stored_models(log_dir: Path) -> list[tuple[Config, list[float], int]]:
    """The checkpoints the server wrote to its model store (a directory beside the log): each one's config, its
    epochs' seconds and its weights' bytes. Read with safetensors' own reader into numpy, so that this driver
    never imports torch (its CPU is the server's too): the metadata as core.checkpoint.save_checkpoint writes it."""
    stored = []
    for path in sorted(log_dir.glob("model-store-*/*.safetensors")):
        with contextlib.suppress(Exception), safe_open(path, framework="numpy") as checkpoint:
            metadata = checkpoint.metadata()
            config = Config.from_dict(json.loads(metadata["config"]))
            seconds = [record["seconds"] for record in json.loads(metadata["history"])]
            names = checkpoint.keys()  # a safe_open is not a dict: no iterating over it
            stored.append((config, seconds, sum(checkpoint.get_tensor(name).nbytes for name in names)))
    return stored


def fill_own_seconds(stored: list[tuple[Config, list[float], int]], sessions: list[Session]) -> None:
    """Each training's own seconds: the last epoch's wall time since its training started, from the checkpoint
    the server stored (`stored_models`), by seed."""
    by_seed = {config.seed: seconds for config, seconds, _ in stored if seconds}
    for session in sessions:
        for training in session.trainings:
            epochs = by_seed.get(training["seed"])
            if epochs is not None:
                training["own_seconds"], training["epoch_seconds"] = epochs[-1], epochs


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
    """Start a server, run the classroom, return everything measured (what `python -m loadtest --json` writes).

    `memory_cap` (MiB): run the server in a memory cgroup of that size (MemoryCap). `teacher_board`: keep a
    Class board tab open while the students work, and report what it saw (board_summary). `browser_shares`:
    run chromium (and Playwright's driver) in a cgroup v1 cpu group of that many cpu.shares, the server and this
    process in the root group (1024): as if the students' browsers ran on their own devices (root; see
    BrowserCpuGroup).
    `protocol_sessions`: the first that many of the `n_sessions` students are protocol students (ProtocolTab),
    the others chromium tabs."""
    if not 0 <= protocol_sessions <= n_sessions:
        raise ValueError(f"protocol_sessions must be between 0 and the {n_sessions} sessions, got {protocol_sessions}")
    if protocol_sessions:
        check_streamlit_version()  # before a server starts: StreamlitVersionError says what to do
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
    stored = stored_models(log_dir)
    fill_own_seconds(stored, [*sessions, *([teacher_session] if teacher_session else [])])
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
        "model_bytes": max((weights for _, _, weights in stored), default=None),  # a student's weights
        "seconds": time.perf_counter() - start,
        "load_average": [load_before, os.getloadavg()[0]],
        "log": str(log_dir / "streamlit.log"),
        **measured,
    }
