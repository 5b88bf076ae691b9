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
from harness.browser import (
    NO_THROTTLING_ARGS,
    RssSampler,
    error_texts_async,
    free_port,
    launch_chromium,
    streamlit_server,
)
from harness.services import BUCKET, postgres, s3, s3_client
from loadtest.browser import BOARD_READ_JS, BrowserStudent, open_teacher_board
from loadtest.cgroups import BrowserCpuGroup, MemoryCap
from loadtest.protocol import ProtocolTab, check_streamlit_version
from loadtest.session import Session, failed, progress
from loadtest.stats import (
    analyse,
    arrival,
    board_key,
    board_summary,
    by_replica,
    database_share,
    switching,
    training_summary,
)
from loadtest.usage import CpuShares, Recorder
from server.room_profile import ENV_VAR as PROFILE_VAR
from server.room_profile import read as read_profile

BOARD_SETTLE_SECONDS = 60.0  # at most this long after the class, every model must be on every board
ROOMS = ("default", "postgres")  # --room: the room's database (shared_services)
STORES = ("local", "s3")  # --store: the model store

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


async def settle_boards(boards: list, model_ids: list[str], limit: float) -> None:
    """Wait, at most `limit` s, until every board tab shows every one of these models. The students reach Explain
    seconds after the last training, and a model trained on another replica reaches a board later than one
    trained on its own server (the room's poll, the board's wake, the bucket's read): reading the tabs at once
    would count a late model as never seen. A model still missing after `limit` is reported missing."""
    deadline = time.perf_counter() + limit
    while boards and time.perf_counter() < deadline:
        seen = [set(await board.evaluate("() => Object.keys(window.__board.first_seen)")) for board in boards]
        if all(set(model_ids) <= shown for shown in seen):
            return
        await asyncio.sleep(0.5)


async def classroom(
    servers: list[tuple[str, int]],
    sessions: list[Session],
    epochs: int,
    timeout: float,
    teachers: list[Session],
    teacher_board: bool = False,
    browsers: BrowserCpuGroup | None = None,
    service_ports: tuple[int, ...] = (),
) -> dict:
    """Drive the class on the servers (`servers`: each replica's url and process id; each session uses the one
    its `replica` names, each teacher warms up its own); `browsers`: the cpu group chromium starts in;
    `service_ports`: where PostgreSQL and moto listen (their CPU is counted apart)."""
    from playwright.async_api import async_playwright  # a dev dependency, only where a class runs

    urls, pids = [url for url, _ in servers], [pid for _, pid in servers]
    recorder = Recorder(pids)
    with contextlib.ExitStack() as samplers, CpuShares(pids, service_ports=service_ports) as cpu:
        peaks = [samplers.enter_context(RssSampler(pid)) for pid in pids]  # each server's peak RSS
        async with contextlib.AsyncExitStack() as stack:
            browser = None  # no Playwright or chromium when every session is a protocol student (no teacher, no board)
            if teachers or teacher_board or any(s.kind == "browser" for s in sessions):
                playwright = await stack.enter_async_context(async_playwright())
                browser = await launch_chromium(playwright, NO_THROTTLING_ARGS)
            if browsers is not None:
                browsers.release(os.getpid())  # chromium stays in the group
            recorder.mark(None, "server idle")
            for teacher in teachers:  # one replica after another: each one's warm-up alone
                url = urls[teacher.replica]
                student = await join(
                    partial(BrowserStudent.open, browser, url, timeout), teacher, recorder, timeout, prefix="teacher "
                )
                await main_path(student, teacher, recorder, epochs, timeout, prefix="teacher ")
                await train_alone_again(student, teacher, recorder, epochs, timeout)
                if student is not None:
                    await student.close()
                await asyncio.sleep(1)
            if teachers:
                recorder.mark(None, "teacher done")
            teacher_peaks = [sampler.peak for sampler in peaks]
            for sampler in peaks:
                sampler.reset()
            boards = [await open_teacher_board(browser, url, timeout) for url in urls] if teacher_board else []
            if boards:
                recorder.mark(None, "board open")
            students = []
            for session in sessions:  # one after another, so each join's cost can be read off
                url = urls[session.replica]
                open_student = (
                    partial(ProtocolTab.open, url, timeout)
                    if session.kind == "protocol"
                    else partial(BrowserStudent.open, browser, url, timeout)
                )
                students.append(await join(open_student, session, recorder, timeout))
            joined_peaks = [sampler.peak for sampler in peaks]
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
            trained = [t["model_id"] for s in sessions for t in s.trainings if t["model_id"]]
            await settle_boards(boards, trained, min(timeout, BOARD_SETTLE_SECONDS))
            boards_seen = [
                {
                    **await board.evaluate(BOARD_READ_JS),
                    "closed": time.time() * 1000,
                    "errors": await error_texts_async(board),
                }
                for board in boards
            ]
            cpu.stop()  # before chromium's processes exit
            for student in students:
                if isinstance(student, ProtocolTab):
                    await student.close()
            if browser is not None:
                await browser.close()
        peak = [sampler.peak for sampler in peaks]
    return {
        "events": recorder.events,
        "peak_rss": max(peak),  # the largest server's (the only one's without replicas)
        "peak_rss_while_joining": max(joined_peaks),
        "peak_rss_teacher": max(teacher_peaks),
        "peak_rss_by_server": peak,
        "cpu": cpu.result(),
        "board_tabs": boards_seen,
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


def service_port(variable: str) -> int:
    """A port for PostgreSQL or moto: the one `variable` names, else a free one (BILINEAR_LAB_PORTS' first free
    one when set: a shared machine gives each engineer a range)."""
    return int(os.environ[variable]) if os.environ.get(variable) else free_port()


def copy_bucket(aws: dict[str, str], bucket: str, directory: Path) -> None:
    """The models the replicas wrote to the bucket, copied to `directory` (stored_models reads them there)."""
    client = s3_client(aws)
    directory.mkdir(parents=True, exist_ok=True)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.download_file(bucket, item["Key"], str(directory / Path(item["Key"]).name))


def shared_services(
    stack: contextlib.ExitStack, replicas: int, room: str, store: str, log_dir: Path
) -> tuple[dict[str, str], str | None, tuple[int, ...], dict[str, str] | None]:
    """Start what the replicas share: (the servers' environment, their model store URL, the services' ports,
    moto's environment). `room`: "postgres" (a throwaway PostgreSQL 15 cluster, harness/services.py) or
    "default" (a SQLite file beside a local store, shared by replicas on this machine; in `log_dir` with s3).
    `store`: "s3" (moto's S3 server and a bucket) or "local" (a directory: one for all replicas)."""
    env, ports, aws = {}, [], None
    model_store = str(log_dir / "model-store-shared") if replicas > 1 else None
    if room == "postgres":
        port = service_port("BILINEAR_LAB_TEST_PG_PORT")
        started = time.perf_counter()
        env["BILINEAR_LAB_ROOM_URL"] = stack.enter_context(postgres(port))
        ports.append(port)
        progress(None, f"PostgreSQL 15 on port {port} in {time.perf_counter() - started:.1f} s")
    if store == "s3":
        port = service_port("BILINEAR_LAB_TEST_S3_PORT")
        started = time.perf_counter()
        aws = stack.enter_context(s3(port))
        env.update(aws)
        model_store = f"s3://{BUCKET}/models"
        ports.append(port)
        progress(None, f"moto's S3 server on port {port} in {time.perf_counter() - started:.1f} s")
        if room == "default":
            env["BILINEAR_LAB_ROOM_URL"] = f"sqlite:///{log_dir / 'room.sqlite3'}"
    return env, model_store, tuple(ports), aws


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
    replicas: int = 1,
    room: str = "default",
    store: str = "local",
) -> dict:
    """Start a server (or `replicas` of them), run the classroom, return everything measured (what
    `python -m loadtest --json` writes).

    `memory_cap` (MiB): run the server in a memory cgroup of that size (MemoryCap). `teacher_board`: keep a
    Class board tab open while the students work, and report what it saw (board_summary). `browser_shares`:
    run chromium (and Playwright's driver) in a cgroup v1 cpu group of that many cpu.shares, the server and this
    process in the root group (1024): as if the students' browsers ran on their own devices (root; see
    BrowserCpuGroup).
    `protocol_sessions`: the first that many of the `n_sessions` students are protocol students (ProtocolTab),
    the others chromium tabs.
    `replicas`: that many servers sharing one room and one model store (`room`, `store`: shared_services),
    as behind sticky sessions: student i uses replica i mod `replicas` for all its visits; each replica gets
    its own teacher (warm-up) and, with `teacher_board`, its own board tab; every server writes its room profile
    (server.room_profile) beside its log."""
    if not 0 <= protocol_sessions <= n_sessions:
        raise ValueError(f"protocol_sessions must be between 0 and the {n_sessions} sessions, got {protocol_sessions}")
    if replicas < 1 or room not in ROOMS or store not in STORES:
        raise ValueError(f"replicas >= 1, room in {ROOMS}, store in {STORES}; got {replicas}, {room!r}, {store!r}")
    if protocol_sessions:
        check_streamlit_version()  # before a server starts: StreamlitVersionError says what to do
    browsers = BrowserCpuGroup(browser_shares) if browser_shares else None
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="classroom_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    sessions = [
        Session(
            i,
            seed_base if same_config else seed_base + i,
            "protocol" if i < protocol_sessions else "browser",
            replica=i % replicas,
        )
        for i in range(n_sessions)
    ]
    # each replica's teacher trains two seeds of its own below the students' (replica 0's: seed-base - 1 and - 2)
    teachers = [Session(-1 - r, seed_base - 1 - 2 * r, replica=r) for r in range(replicas)] if teacher else []
    logs = [log_dir / ("streamlit.log" if replicas == 1 else f"streamlit-{r}.log") for r in range(replicas)]
    profiles = [
        log_dir / ("room-profile.jsonl" if replicas == 1 else f"room-profile-{r}.jsonl") for r in range(replicas)
    ]
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

            with contextlib.ExitStack() as running:  # the services and the servers, stopped before the cap's report
                shared, model_store, service_ports, aws = shared_services(running, replicas, room, store, log_dir)
                servers = []
                for replica in range(replicas):  # one after another: each binds its port before the next picks one
                    servers.append(
                        running.enter_context(
                            streamlit_server(
                                logs[replica],
                                timeout=120,
                                on_start=on_start,
                                port=free_port() if replicas > 1 else None,
                                model_store=model_store,
                                env={**shared, PROFILE_VAR: str(profiles[replica])},
                            )
                        )
                    )
                progress(None, f"{replicas} server(s) up: {', '.join(url for url, _ in servers)}")
                measured = asyncio.run(
                    classroom(
                        [(url, process.pid) for url, process in servers],
                        sessions,
                        epochs,
                        timeout,
                        teachers,
                        teacher_board,
                        browsers,
                        service_ports,
                    )
                )
                server_exits = [process.poll() for _, process in servers]  # None: the server was still running
                if aws is not None:
                    copy_bucket(aws, BUCKET, log_dir / "model-store-s3")
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
    teacher_session = teachers[0] if teachers else None
    fill_own_seconds(stored, [*sessions, *teachers])
    switches, trainings = switching(sessions, teacher_session), training_summary(sessions, teacher_session)
    tabs = measured.pop("board_tabs")
    boards = (
        [
            board_summary(tab, sessions, board_key(r) if replicas > 1 else "on_teacher_board")
            for r, tab in enumerate(tabs)
        ]
        if tabs
        else [None] * replicas
    )
    cpu = measured["cpu"]
    servers_measured = [
        {
            "replica": r,
            "log": str(logs[r]),
            "exit_code": server_exits[r],
            "peak_rss": measured["peak_rss_by_server"][r],
            "cpu_seconds": cpu["per_server"][r],
            "board": boards[r],
            "database": database_share(read_profile(profiles[r])),
            **replica,
        }
        for r, replica in enumerate(by_replica(sessions, replicas))
    ]
    return {
        "sessions": [asdict(s) for s in sessions],  # after the summaries above, which add to them
        "teacher": asdict(teacher_session) if teacher_session else None,
        "teachers": [asdict(t) for t in teachers],
        "switching": switches,
        "training": trainings,
        "teacher_board": boards[0] if replicas == 1 else None,  # with replicas: each server's "board", and arrival
        "arrival": arrival(sessions, replicas) if replicas > 1 and tabs else None,
        "servers": servers_measured,
        "memory_cgroup": memory_cgroup if cap is not None else None,
        "server_exit_code": next((code for code in server_exits if code is not None), None),
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
            "replicas": replicas,
            "room": room,
            "store": store,
        },
        "increments": analyse(measured["events"], sessions),
        "model_bytes": max((weights for _, _, weights in stored), default=None),  # a student's weights
        "seconds": time.perf_counter() - start,
        "load_average": [load_before, os.getloadavg()[0]],
        "log": str(logs[0]),
        **measured,
    }
