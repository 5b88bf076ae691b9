"""Which models a full store drops: bounded per student, and never one the class still needs (no Streamlit).

One policy for the registry, the slots (server.registry) and the files they write (core.store): each
trainer keeps at most `per_owner` models (their oldest go first, however recent: one student's flood of
runs replaces their own models, not the class's); past the store's size, the oldest models go, except a
protected one (pinned by the teacher, or the active model of an open tab) and one trained within the
last `recent` seconds (a lesson). When only such models are left, the store stays over its size.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

LESSON_SECONDS = 3600.0  # a model trained within the last lesson-length is never dropped for room
PER_OWNER = 4  # models one session keeps on the board and in the store


@dataclass(frozen=True)
class Held:
    """A model as a store holds it."""

    model_id: str
    owner: str  # the session that trained it ("" when unknown: shipped, uploaded, read back after a restart)
    added: float  # time.time() when it arrived
    n_bytes: int
    used: float = 0.0  # when it was last used, if the store orders by use (else: by arrival)

    @property
    def order(self) -> float:
        return self.used or self.added


@dataclass(frozen=True)
class Evictions:
    """What to drop: `over_owner` exceeded their trainer's share (dropped from the file store too),
    `over_size` made room (still in the file store, which has its own size)."""

    over_owner: tuple[str, ...]
    over_size: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.over_owner + self.over_size


def evictions(
    held: Sequence[Held],
    *,
    max_models: int,
    max_bytes: float = float("inf"),
    per_owner: int = PER_OWNER,
    protected: Collection[str] = (),
    now: float,
    recent: float = LESSON_SECONDS,
) -> Evictions:
    """The models to drop from `held` (least recently used or oldest first within each kind)."""
    oldest_first = sorted(held, key=lambda h: h.order)
    over_owner: list[str] = []
    if per_owner > 0:
        by_owner: dict[str, list[Held]] = {}
        for h in oldest_first:
            if h.owner:
                by_owner.setdefault(h.owner, []).append(h)
        for models in by_owner.values():
            models.sort(key=lambda h: h.added)  # a student's share: their newest models stay
            droppable = [h for h in models if h.model_id not in protected]
            over_owner += [h.model_id for h in droppable[: max(0, len(models) - per_owner)]]
    dropped = set(over_owner)
    kept = [h for h in oldest_first if h.model_id not in dropped]
    count, size = len(kept), sum(h.n_bytes for h in kept)
    over_size: list[str] = []
    for h in kept:
        if count <= max_models and size <= max_bytes:
            break
        if h.model_id in protected or now - h.added < recent:
            continue
        over_size.append(h.model_id)
        count, size = count - 1, size - h.n_bytes
    return Evictions(tuple(over_owner), tuple(over_size))
