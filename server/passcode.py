"""Guessing the teacher's passcode is slow for everyone (no Streamlit).

A wrong passcode already waits a second (ui.board), but the waits of many tabs overlap: one tab made 60
guesses in 16 s and six tabs 726 in 40 s (issue 25). `GuessLimiter` counts wrong guesses per session and for
the whole server: past `per_session` in `window` seconds that session, and past `server_wide` every
session, is locked out for `lockout` seconds, during which no passcode is even compared (so a lucky guess
in a lockout finds nothing). `wait` says how long is left, for the page to show.
`weakness` says why a passcode is too short to stand up to the guesses the limiter still lets through.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

PER_SESSION = 5  # wrong guesses a session may make per window
SERVER_WIDE = 30  # wrong guesses the whole server may see per window (a few dozen)
WINDOW = 60.0
LOCKOUT = 120.0
MIN_LENGTH = 10  # shorter passcodes draw a warning at start-up


class GuessLimiter:
    """Thread-safe counts of wrong passcodes, per session and for the server."""

    def __init__(
        self,
        per_session: int = PER_SESSION,
        server_wide: int = SERVER_WIDE,
        window: float = WINDOW,
        lockout: float = LOCKOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_session, self.server_wide, self.window, self.lockout = per_session, server_wide, window, lockout
        self._clock = clock
        self._lock = threading.Lock()
        self._wrong: dict[str, collections.deque[float]] = {}  # session -> times of its wrong guesses
        self._all: collections.deque[float] = collections.deque()
        self._until: dict[str, float] = {}  # session -> end of its lockout
        self._all_until = 0.0  # end of the server-wide lockout

    def wait(self, session: str) -> float:
        """Seconds before `session` may try a passcode (0: now)."""
        now = self._clock()
        with self._lock:
            return max(0.0, self._until.get(session, 0.0) - now, self._all_until - now)

    def wrong(self, session: str) -> None:
        """`session` typed a wrong passcode: count it, and lock out past the limits."""
        now = self._clock()
        with self._lock:
            self._forget(now)
            mine = self._wrong.setdefault(session, collections.deque())
            mine.append(now)
            self._all.append(now)
            if len(mine) >= self.per_session:
                self._until[session] = now + self.lockout
                mine.clear()
            if len(self._all) >= self.server_wide:
                self._all_until = now + self.lockout
                self._all.clear()

    def _forget(self, now: float) -> None:
        """Under the lock: drop the guesses older than the window (and sessions with none left)."""
        for times in (*self._wrong.values(), self._all):
            while times and now - times[0] >= self.window:
                times.popleft()
        self._wrong = {s: t for s, t in self._wrong.items() if t}
        self._until = {s: t for s, t in self._until.items() if t > now}


def weakness(passcode: str) -> str | None:
    """Why the passcode is weak (a sentence for the server's log), or None."""
    if len(passcode) >= MIN_LENGTH:
        return None
    return (
        f"the teacher passcode has only {len(passcode)} characters: use at least {MIN_LENGTH} (say, three random "
        "words) so that the guesses the limiter lets through (a few dozen a minute) never find it"
    )


def remaining(seconds: float) -> str:
    """'1 min 40 s', '45 s': a lockout's time left, for the page."""
    seconds = max(1, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
