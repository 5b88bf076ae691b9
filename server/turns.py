"""Page scripts take turns: at most a few run at once, the others wait in arrival order.

Every session's page script runs on a thread of the one server process, and Python runs one thread's
bytecode at a time. When a whole class opens a page in the same instant, 30 scripts share that one
interpreter fairly, so every student waits for all 30 and the pages appear together at the end
(measured: 30 students opening Explain at once each saw it after 1.9-2.0 s on an idle day, 3.8-4.3 s on a
slower one). Taking turns costs the class nothing in total and lets the first students see their page
after one script's time, the next after two, and so on, so the median wait halves. Anything else the
server does (the websocket, the trainings in their pool, widget callbacks, the fragments' reruns) is not
held back.

A place in line is a ticket (`PageTurns.ticket()`), and waiters are served by ticket, oldest first. A
session keeps its ticket until one of its runs ends, so a run that a new click interrupts (Streamlit
stops it at its first element and starts the next) gets its place back instead of the end of the line.

`PageTurns.turn(patience, ticket)` waits at most `patience` seconds, then runs the page anyway: a script
that is stuck cannot hold the rest of the class forever.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PageTurns:
    """A counting semaphore with `slots` holders at once whose waiters are served by ticket, oldest
    first; a released slot goes straight to that waiter, so no newcomer overtakes it."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"at least one page script must be able to run, got {slots} slots")
        self.slots = slots
        self._lock = threading.Lock()
        self._free = slots
        self._tickets = itertools.count()
        self._waiting: list[tuple[int, threading.Event]] = []  # sorted by ticket

    def ticket(self) -> int:
        """A place in line: later calls get later places."""
        with self._lock:
            return next(self._tickets)

    def acquire(self, timeout: float, ticket: int | None = None) -> bool:
        """Take a slot, waiting at most `timeout` seconds for it, in the order of `ticket` (a new one if
        None); False if the wait ran out."""
        if ticket is None:
            ticket = self.ticket()
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            place = (ticket, threading.Event())
            bisect.insort(self._waiting, place, key=lambda waiter: waiter[0])
        if place[1].wait(timeout):
            return True
        with self._lock:
            if place[1].is_set():  # a slot was handed over between the timeout and this lock
                return True
            self._waiting.remove(place)
            return False

    def release(self) -> None:
        """Give the slot to the waiter with the oldest ticket, or back to the pool."""
        with self._lock:
            if self._waiting:
                self._waiting.pop(0)[1].set()
            elif self._free < self.slots:
                self._free += 1
            else:
                raise RuntimeError("released a page slot that was not taken")

    @property
    def free(self) -> int:
        with self._lock:
            return self._free

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def turn(self, patience: float, ticket: int | None = None) -> Iterator[bool]:
        """Run the block holding a slot (yields True), or without one after `patience` seconds (False)."""
        holds = self.acquire(patience, ticket)
        try:
            yield holds
        finally:
            if holds:
                self.release()
