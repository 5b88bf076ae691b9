"""Give a server's freed memory back to the operating system after each training (no Streamlit).

Measured in the issue 25 flood (bench/flood.py, 64 width-1024 runs from three tabs; docs/measurements.md):
the server's RSS rose from 506 MiB to a peak of 2,516 MiB, with about 1 GB of live tensors and 1.3-1.6 GB
lying free in malloc's arenas. What kept the free part:

- glibc's malloc keeps freed memory in its arenas (one per thread that allocates, up to 8 per core), and its
  own rule puts every block up to the largest freed so far (up to 32 MB) in them: a width-1024 run's 8 MB
  tensors (weights, optimiser state, a 1025 x 1025 float64 eigendecomposition) then stay there, free but
  resident. `tune` maps every block of MMAP_THRESHOLD bytes or more on its own (unmapped when freed) whenever
  no free chunk of the arena (its top included) can hold it, and caps the arenas; `trim` (glibc's
  malloc_trim(0)) returns every whole free page of every arena, which gave back 20-180 MB each time in 15-240 ms
  in the flood.
- Objects in reference cycles (a closed session's state, with the model it showed) wait for Python's full
  collection, which `runner.postScriptGC = false` (.streamlit/config.toml) no longer runs after every script
  run; a full collection took 0.15-0.45 s here, so `Reclaimer` runs one at most every `gc_every` seconds,
  after a training (never after a page run).

Both malloc calls are glibc's: elsewhere (macOS, musl) they are skipped and only the collection runs.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger("bilinear_eigen_lab")
M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD = -8, -3, -1  # glibc's mallopt parameters (malloc.h)
ARENAS = 2  # arenas at most: fewer arenas, less memory left free in them (MALLOC_ARENA_MAX overrides)
# Blocks this large or larger get a mapping of their own (unless a free chunk of the arena holds them: `trim`
# releases those chunks' pages after every run), unmapped when freed. glibc's default starts at 128 kB
# and rises to the largest block freed so far (up to 32 MB), so after a training's first freed weights every
# 8 MB tensor (width 1024: a weight matrix, an eigendecomposition's 1025 x 1025 float64) lands in an arena and
# stays there. Smaller blocks (the quick preset's 3 MB batch, reused all run) are unaffected.
MMAP_THRESHOLD = 4 * 2**20
# Setting the mmap threshold also freezes the heap's trim threshold at 128 kB, so the heap's top would go back
# to the system and fault in again at nearly every step: the quick preset's training took 22,781-33,948 page
# faults instead of 158. At 64 MB (what glibc's own rule reaches) it took 157-158; `trim` after each run
# returns the rest.
TRIM_THRESHOLD = 64 * 2**20
GC_EVERY = 30.0  # seconds between two full collections started by Reclaimer


def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has malloc_trim and mallopt), else None."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: the C library it runs on
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        return libc
    except (OSError, AttributeError):  # not glibc: no such functions
        return None


LIBC = _glibc()


def trim() -> bool:
    """glibc's malloc_trim(0): every arena hands its whole free pages back to the system. False where there is
    no glibc (nothing done)."""
    if LIBC is None:
        return False
    LIBC.malloc_trim(0)
    return True


def tune(arenas: int = ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> dict[str, bool]:
    """From now on: at most `arenas` malloc arenas, and every block of `mmap_threshold` bytes or more in a
    mapping of its own (returned to the system when freed), unless MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_
    set glibc's own at start-up. What was set (False where there is no glibc, or the environment decides)."""
    wanted = {
        "MALLOC_ARENA_MAX": (M_ARENA_MAX, arenas),
        "MALLOC_MMAP_THRESHOLD_": (M_MMAP_THRESHOLD, mmap_threshold),
        "MALLOC_TRIM_THRESHOLD_": (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    }
    return {
        variable: LIBC is not None and not os.environ.get(variable) and LIBC.mallopt(option, value) == 1
        for variable, (option, value) in wanted.items()
    }


@functools.cache
def tune_once() -> dict[str, bool]:
    """`tune` with its defaults, once per process (the app's entry file calls it on every run)."""
    return tune()


class Reclaimer:
    """What a training pool calls after each run (server.jobs.TrainingPool's `after_run`): a full garbage
    collection when the last is at least `gc_every` seconds old, then `trim`. Thread-safe."""

    def __init__(
        self,
        gc_every: float = GC_EVERY,
        collect: Callable[[], object] = gc.collect,
        release: Callable[[], bool] = trim,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gc_every, self._collect, self._release, self._clock = gc_every, collect, release, clock
        self._last_gc = -float("inf")
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            now = self._clock()
            due = now - self._last_gc >= self.gc_every
            if due:
                self._last_gc = now
        try:
            if due:
                self._collect()
            self._release()
        except Exception:  # giving memory back must never break a training's end
            log.exception("giving memory back after a training failed")
