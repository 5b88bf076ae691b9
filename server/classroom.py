"""The room's shared state: what the teacher pinned, cleared and revealed, and the lesson's votes (no Streamlit here).

One `ClassRoom` per server (ui.board.classroom, st.cache_resource), read by every session's class board
and Home page, and by the training pool for the teacher's cap on a run (`max_run_seconds`). It does not
know about sessions or passcodes: ui.board changes it only for a session that unlocked the teacher controls
(`passcode_matches`), and re-checks that in every callback.

Every change replaces the frozen `RoomState` and bumps its revision, so a board compares one number to
know whether it must redraw. Lesson mode's predictions (core.lesson.Vote) are kept here too, one per
session and step and at most MAX_VOTES, so the board can show how the room predicted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.lesson import Vote, record

MAX_VOTES = 5_000  # the newest votes kept: a class of 30 casts about 120; a runaway script cannot grow the room


@dataclass(frozen=True)
class RoomState:
    """The room as the teacher left it; replaced, never mutated."""

    pinned: str | None = None  # the model id every student's Home page offers, if any
    hidden: frozenset[str] = frozenset()  # model ids cleared from the board (the models themselves stay)
    answers_visible: bool = False  # whether the lesson's answers are shown to the class
    votes: tuple[Vote, ...] = ()  # lesson mode's revealed predictions, oldest first
    revision: int = 0  # +1 on every change
    max_run_seconds: float | None = None  # the teacher's cap on one run's estimated seconds (None: the server's)


class ClassRoom:
    """Thread-safe holder of the room's RoomState: every session's script thread reads and changes it."""

    def __init__(self, state: RoomState | None = None) -> None:
        self._lock = threading.Lock()
        self._state = state or RoomState()  # server.room starts one from the database's last state

    def state(self) -> RoomState:
        with self._lock:
            return self._state

    def _change(self, changes: Callable[[RoomState], dict[str, object]]) -> RoomState:
        """Replace the state by `changes(state)` applied to it, atomically, and bump the revision."""
        with self._lock:
            old = self._state
            self._state = dataclasses.replace(old, **changes(old), revision=old.revision + 1)
            return self._state

    def pin(self, model_id: str) -> RoomState:
        return self._change(lambda _: {"pinned": model_id})

    def unpin(self) -> RoomState:
        return self._change(lambda _: {"pinned": None})

    def clear(self, model_ids: Iterable[str]) -> RoomState:
        """Hide these models from the board (they stay on the server and with whoever uses them)."""
        ids = frozenset(model_ids)
        return self._change(lambda old: {"hidden": old.hidden | ids})

    def show_answers(self, visible: bool) -> RoomState:
        return self._change(lambda _: {"answers_visible": bool(visible)})

    def vote(self, vote: Vote) -> RoomState:
        """Count a revealed prediction (replacing that session's earlier one for the step)."""
        return self._change(lambda old: {"votes": record(old.votes, vote, MAX_VOTES)})

    def clear_votes(self) -> RoomState:
        return self._change(lambda _: {"votes": ()})

    def set_max_run_seconds(self, seconds: float | None) -> RoomState:
        """The teacher's cap on one run's estimated seconds (None: the server's default)."""
        return self._change(lambda _: {"max_run_seconds": None if seconds is None else float(seconds)})

    @property
    def answers_visible(self) -> bool:
        return self.state().answers_visible


def passcode_matches(given: str, expected: str) -> bool:
    """Whether the typed passcode is the teacher's, in time independent of where they differ."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def passcode_digest(passcode: str) -> str:
    """What an unlocked session keeps instead of the passcode: a session stays unlocked only while the
    server's passcode is still the one it typed (changing the secret locks every session)."""
    return hashlib.sha256(b"bilinear-eigen-lab/teacher\x00" + passcode.encode("utf-8")).hexdigest()
