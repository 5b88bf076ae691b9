"""What keeps the server's memory bounded through a flood of trainings (issue 25, server.memory)."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from server import memory
from server.jobs import TrainingPool
from tests.manual_clock import Clock
from tests.unit.test_jobs import EPOCHS, Trainers, config, wait_for

ROOT = Path(__file__).resolve().parents[2]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_the_reclaimer_trims_after_every_run_and_collects_at_most_every_gc_every_seconds():
    clock, calls = Clock(100.0), []
    reclaim = memory.Reclaimer(
        gc_every=30.0,
        collect=lambda: calls.append("collect"),
        release=lambda: calls.append("trim") or True,
        clock=clock,
    )
    reclaim()
    clock.now += 10
    reclaim()
    clock.now += 25
    reclaim()
    assert calls == ["collect", "trim", "trim", "collect", "trim"]


def test_a_failing_reclaim_never_breaks_the_end_of_a_run():
    def broken() -> bool:
        raise OSError("no")

    memory.Reclaimer(release=broken)()  # logged, not raised


def test_the_pool_gives_memory_back_after_each_run_finished_or_stopped():
    trainers, ended = Trainers(), []
    pool = TrainingPool(trainers, lambda trained: trained, workers=1, after_run=lambda: ended.append(1))
    finished = pool.submit(config(31), splits=None, follower="a")
    trainers.step(31, EPOCHS)
    assert finished.done.wait(10) and wait_for(lambda: len(ended) == 1)
    stopped = pool.submit(config(32), splits=None, follower="a")
    assert trainers.has_started(32).wait(10)
    pool.leave(stopped, "a")
    assert stopped.done.wait(10) and wait_for(lambda: len(ended) == 2)


def test_a_finished_job_keeps_no_second_copy_of_its_weights():
    trainers = Trainers()
    pool = TrainingPool(trainers, lambda trained: trained, workers=1)
    job = pool.submit(config(33), splits=None, follower="a")
    trainers.step(33, EPOCHS)
    assert job.done.wait(10) and job.state == "finished"
    assert job.model_so_far() is job.result, "a Stop after the end hands out the server's model, not a copy"


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_trim_hands_freed_heap_pages_back_to_the_system():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 96 * 1024, 1200  # below the mmap threshold: in the heap, as a training's freed tensors are
    blocks = [libc.malloc(size) for _ in range(count)]
    for block in blocks:
        ctypes.memset(block, 1, size)  # resident
    for block in blocks[::2]:  # every other block: free memory between live ones, which no automatic trim returns
        libc.free(block)
    before = resident()
    assert memory.trim()
    after = resident()
    for block in blocks[1::2]:
        libc.free(block)
    freed = size * count // 2
    assert before - after > freed // 2, f"trim gave back {(before - after) >> 20} MiB of {freed >> 20} MiB freed"


# Run in a fresh interpreter: malloc maps a large block of its own only when no free chunk of the arena can hold it,
# and a long test process has such chunks (freed tensors between live ones; malloc_trim releases their pages but
# keeps them for reuse). CI's full run had one: the 16 MiB block came from it and freeing it gave back 0 MiB.
LARGE_BLOCK = """
import ctypes, sys
from server import memory
assert set(memory.tune().values()) == {True}, "glibc took every setting"
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
resident = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096
libc.free(libc.malloc(24 * 2**20))  # glibc's own rule would now keep blocks up to 24 MB in the heap
size = 16 * 2**20  # a width-1024 model's weights and then some
block = libc.malloc(size)
ctypes.memset(block, 1, size)
keeper = libc.malloc(64 * 1024)  # a live block after it: no automatic trim of the heap's top reaches it
before = resident()
libc.free(block)
print(before - resident())
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_after_tune_a_large_freed_block_goes_back_to_the_system_at_once(monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", LARGE_BLOCK], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    given_back = int(done.stdout)
    assert given_back > 16 * 2**20 * 3 // 4, f"freeing 16 MiB gave back {given_back >> 20} MiB"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.tune()["MALLOC_ARENA_MAX"] is False, "the environment's setting stands"


def resident() -> int:
    """This process's resident bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_closed_tabs_session_is_kept_for_a_reconnect_only_briefly():
    """Streamlit keeps a disconnected session (with its models) for server.disconnectedSessionTTL seconds;
    its default, 120 s, kept every session of a flood's last two minutes."""
    config_file = ROOT / ".streamlit" / "config.toml"
    ttl = tomllib.loads(config_file.read_text())["server"]["disconnectedSessionTTL"]
    assert 6 < ttl <= 60, "longer than server.jobs' grace for a reload, far shorter than Streamlit's 120 s"
