"""`python -m loadtest`: run a classroom on one server, print the report, write the JSON (see loadtest/__init__.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import loadtest
from loadtest.classroom import ROOMS, STORES, run
from loadtest.protocol import StreamlitVersionError
from loadtest.report import report
from loadtest.session import PROGRESS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=loadtest.__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="concurrent student sessions (default 8)")
    parser.add_argument(
        "--protocol-sessions",
        type=int,
        default=0,
        metavar="K",
        help="K of the sessions are protocol students (loadtest/protocol.py: Streamlit 1.67.0's websocket protocol, "
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
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="R",
        help="R servers sharing one room and one model store, as behind sticky sessions: student i uses replica "
        "i mod R; each replica gets a teacher's warm-up and, with --teacher-board, a board tab (default 1)",
    )
    parser.add_argument(
        "--room",
        choices=ROOMS,
        default="default",
        help="the room's database: postgres = a throwaway PostgreSQL 15 cluster (harness/services.py); default = "
        "a SQLite file beside the (shared) local model store, or in --log-dir with --store s3",
    )
    parser.add_argument(
        "--store",
        choices=STORES,
        default="local",
        help="the model store: s3 = moto's S3 server and a bucket; local = a directory (one for all replicas)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the server's log and model store go here (default: a new temporary directory)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    PROGRESS.update(on=True, start=time.perf_counter())
    env = dict(item.split("=", 1) for item in args.env)
    try:
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
            log_dir=args.log_dir,
            replicas=args.replicas,
            room=args.room,
            store=args.store,
        )
    except StreamlitVersionError as error:
        sys.exit(f"python -m loadtest: {error}")
    report(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
