"""What the class costs the machine: the server's RSS at named moments (Recorder, also the drivers' shared
clock) and the CPU seconds of the server, chromium, this driver and everything else (CpuShares)."""

from __future__ import annotations

import contextlib
import os
import threading
import time

from loadtest.session import MB, progress
from tests.browser_support import server_rss


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


class CpuShares:
    """CPU seconds (user + system) used during the run by the server, by chromium and Playwright's driver
    (this process's other descendants), by this process, and by every other process on the machine; and
    the other test runs (`pytest -m`) seen meanwhile. psutil, sampled every 2 s (a process that ends
    between samples keeps what it had used at its last sample)."""

    def __init__(self, server_pid: int, interval: float = 2.0) -> None:
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
