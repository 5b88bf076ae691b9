"""A clock a test moves by hand: `clock.now += 5` is five seconds later, with no sleep."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
