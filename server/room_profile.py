"""The room's database share of each page run, measured inside a server (opt-in, for `python -m loadtest`).

With `BILINEAR_LAB_PROFILE_ROOM=path` set, a server appends one JSON line to that file per script run of the
entry file (`script_run`, inside the run's page turn): the page (`page`), the run's seconds, the seconds spent
in server.room.Room's database calls (`_read` and `_transaction`, SQLite's process lock included, as
bench/room_share.py times them) and their count, and whether the run ended (`completed`; false when a click
interrupted it). A database call made outside such a run (a fragment's timed rerun, a widget callback, a
training thread reporting its epochs) gets a line of its own with its thread's name.

Unset (the default) a database call costs one attribute test more, and nothing is written. One JSON line is
one `write` on a file opened for appending, so a line is never torn; a `pid` tells replicas sharing a file apart.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

ENV_VAR = "BILINEAR_LAB_PROFILE_ROOM"


class RoomProfile:
    """Per-run database seconds (see the module docstring); `path` None: off."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = os.fspath(path) if path else None
        self._local = threading.local()  # .run: the record of the script run on this thread, if any
        self._lock = threading.Lock()
        self._null = contextlib.nullcontext()

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def database(self) -> contextlib.AbstractContextManager:
        """Around one database call: its seconds go to this thread's script run, or to a line of their own."""
        return self._timed() if self.path is not None else self._null

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            run = getattr(self._local, "run", None)
            if run is not None:
                run["database_s"] += seconds
                run["calls"] += 1
            else:
                name = threading.current_thread().name
                self._write({"kind": "outside", "thread": name, "database_s": seconds, "at": time.time()})

    @contextlib.contextmanager
    def script_run(self) -> Iterator[None]:
        """Around one run of the entry file (after its page turn was given): one line when it ends."""
        if self.path is None:
            yield
            return
        record: dict[str, Any] = {"kind": "run", "page": None, "at": time.time(), "database_s": 0.0, "calls": 0}
        self._local.run = record
        start, completed = time.perf_counter(), False
        try:
            yield
            completed = True
        finally:  # also a run that a click interrupts (Streamlit's RerunException is a BaseException)
            self._local.run = None
            record["seconds"] = time.perf_counter() - start
            record["completed"] = completed
            self._write(record)

    def page(self, name: str) -> None:
        """Name the page of this thread's script run (st.navigation chose it)."""
        run = getattr(self._local, "run", None)
        if run is not None:
            run["page"] = name

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps({**record, "pid": os.getpid()}) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(line)


PROFILE = RoomProfile(os.environ.get(ENV_VAR, "").strip() or None)  # the server's, from its environment


def read(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The lines a server wrote (a missing file: none)."""
    try:
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        return []
