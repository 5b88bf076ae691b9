"""Page scripts take turns: at most a few run at once, the others wait in arrival order.

Every session's page script runs on a thread of the one server process, and Python runs one thread's
bytecode at a time. When a whole class opens a page in the same instant, 30 scripts share that one
interpreter fairly, so every student waits for all 30 and the pages appear together at the end
(measured: 30 students opening Explain at once each saw it after 1.9-2.0 s on an idle day, 3.8-4.3 s on a
slower one). Taking turns costs the class nothing in total and lets the first students see their page
after one script's time, the next after two, and so on, so the median wait halves. Anything else the
server does (the websocket, the trainings in their pool, the fragments' reruns) is not held back.

`PageTurns.turn(patience)` waits at most `patience` seconds, then runs the page anyway: a script that
is stuck cannot hold the rest of the class forever.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class PageTurns:
    """A first-come, first-served counting semaphore: `slots` holders at once, waiters served in the
    order they arrived (a released slot goes straight to the oldest waiter, so no newcomer overtakes)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"at least one page script must be able to run, got {slots} slots")
        self.slots = slots
        self._lock = threading.Lock()
        self._free = slots
        self._waiting: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting at most `timeout` seconds for it; False if the wait ran out."""
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            handed = threading.Event()
            self._waiting.append(handed)
        if handed.wait(timeout):
            return True
        with self._lock:
            if handed.is_set():  # a slot was handed over between the timeout and this lock
                return True
            self._waiting.remove(handed)
            return False

    def release(self) -> None:
        """Give the slot to the oldest waiter, or back to the pool."""
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()
            elif self._free < self.slots:
                self._free += 1
            else:
                raise RuntimeError("released a page slot that was not taken")

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def turn(self, patience: float) -> Iterator[bool]:
        """Run the block holding a slot (yields True), or without one after `patience` seconds (False)."""
        holds = self.acquire(patience)
        try:
            yield holds
        finally:
            if holds:
                self.release()
