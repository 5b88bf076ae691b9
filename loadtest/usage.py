"""What the class costs the machine: the server's RSS at named moments (Recorder, also the drivers' shared
clock) and the CPU seconds of the server, chromium, this driver and everything else (CpuShares). With replicas
(`--replicas`) "the server" is all of them (their RSS summed, their CPU added) and each one's share is kept too."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence

from harness.browser import server_rss
from loadtest.session import MB, progress


class Recorder:
    """The server's RSS at named moments, with the time since the start; with several servers (replicas) their
    sum, and each one's in `rss_by_server`."""

    def __init__(self, pid: int | Sequence[int]) -> None:
        self.pids = [pid] if isinstance(pid, int) else list(pid)
        self.start, self.events = time.perf_counter(), []

    def now(self) -> float:
        """Seconds since the start (the driver's clock, shared by all sessions)."""
        return time.perf_counter() - self.start

    def mark(self, session: int | None, event: str) -> int:
        each = [server_rss(pid) for pid in self.pids]
        rss = sum(each)
        self.events.append({"t": self.now(), "session": session, "event": event, "rss": rss})
        if len(each) > 1:
            self.events[-1]["rss_by_server"] = each
        progress(None, f"{event}{'' if session is None else f' (session {session})'}: server RSS {rss / MB:.0f} MB")
        return rss


class CpuShares:
    """CPU seconds (user + system) used during the run by the server (each replica's in `per_server`), by the
    services the replicas share (PostgreSQL and moto, found by the ports they listen on), by chromium and
    Playwright's driver (this process's other descendants), by this process, and by every other process on the
    machine; and the other test runs (`pytest -m`) seen meanwhile. psutil, sampled every 2 s (a process that ends
    between samples keeps what it had used at its last sample)."""

    def __init__(
        self, server_pid: int | Sequence[int], interval: float = 2.0, service_ports: Sequence[int] = ()
    ) -> None:
        self.servers = [server_pid] if isinstance(server_pid, int) else list(server_pid)
        self.service_ports, self.interval = list(service_ports), interval
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
        replica_of = {}
        for index, pid in enumerate(self.servers):
            replica_of[pid] = index
            with contextlib.suppress(psutil.Error):
                replica_of |= dict.fromkeys((c.pid for c in psutil.Process(pid).children(recursive=True)), index)
        processes = list(psutil.process_iter(["pid", "cmdline", "cpu_times"]))
        services = set()
        for process in processes:  # postgres -D ... -p PORT, python -m moto.server ... -p PORT, and their children
            command = " ".join(process.info["cmdline"] or [])
            if ("postgres" in command or "moto.server" in command) and any(
                f"-p {port}" in command for port in self.service_ports
            ):
                services.add(process.info["pid"])
                with contextlib.suppress(psutil.Error):
                    services |= {c.pid for c in process.children(recursive=True)}
        mine = {c.pid for c in me.children(recursive=True)} - set(replica_of) - services
        for process in processes:
            info = process.info
            if info["cpu_times"] is None:
                continue
            pid = info["pid"]
            group = (
                f"server {replica_of[pid]}"
                if pid in replica_of
                else "services"
                if pid in services
                else "bench"
                if pid == me.pid
                else "chromium"
                if pid in mine
                else "other"
            )
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
        used = dict.fromkeys(("server", "services", "chromium", "bench", "other"), 0.0)
        per_server = [0.0] * len(self.servers)
        for pid, (group, last) in self.last.items():
            seconds = last - self.first[pid][1]
            if group.startswith("server "):
                per_server[int(group.removeprefix("server "))] += seconds
                group = "server"
            used[group] += seconds
        if not self.service_ports:
            del used["services"]
        return {
            "wall": self.seconds,
            "cpu_seconds": used,
            "per_server": per_server,
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
