"""Linux cgroups for a run (root): a low cpu.shares group for chromium (--browser-shares) and a memory cap for
the server (--memory-cap). Each says why it could not be set up and the run goes on without it."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from loadtest.session import MB


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
