"""A cache bounded by bytes, not entries, shared by every session (no Streamlit).

The per-model eigendecompositions differ in size by 250 times (0.4 MB at d_hidden 64, ~100 MB at 1024 for
the four a page asks for): a cache of N entries held 2.9 GB after one student's flood of width-1024 models
(issue 25). This one keeps the least recently used values within `max_bytes`, computes each key once
however many sessions ask at the same moment, and never keeps a value larger than the whole budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BytesLRU(Generic[V]):
    """key -> value, least recently used dropped past `max_bytes` (as `size(value)` counts them)."""

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_bytes, self._size = max_bytes, size
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._computing: dict[Hashable, threading.Lock] = {}
        self.total = 0

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for `key`, computing it (once, for all waiting callers) if absent."""
        with self._lock:
            found = self._hit(key)
            if found is not None:
                return found[0]
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:  # a second caller for the same key waits here, then finds the first one's value
            with self._lock:
                found = self._hit(key)
                if found is not None:
                    return found[0]
            try:
                value = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            n = self._size(value)
            with self._lock:
                if n <= self.max_bytes and key not in self._values:
                    self._values[key] = (value, n)
                    self.total += n
                    while self.total > self.max_bytes:
                        _, (_, dropped) = self._values.popitem(last=False)
                        self.total -= dropped
            return value

    def _hit(self, key: Hashable) -> tuple[V, int] | None:
        found = self._values.get(key)
        if found is not None:
            self._values.move_to_end(key)
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self.total = 0
