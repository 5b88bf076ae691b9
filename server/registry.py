"""The server's models, shared by every session: what a class trains, once (no Streamlit here).

Every model has an id (core.identity), so a link or a reload can find it again:
- the registry holds canonical models, one per Config (the shipped seed, the 15 precomputed grid
  checkpoints, loaded lazily, and every model trained to completion), id = hash of the Config;
- the slots hold models no Config determines (stopped runs, uploaded files, which are untrusted
  and so never become the canonical model for their Config), id = p-/u- + hash of the content.

Both write what was trained here (finished and stopped runs, not the shipped or uploaded files) to a
`core.store.ModelStore` when they have one, and look there for an id they lack: a model survives a
restart of the server, and replicas sharing one bucket find each other's models.

Both bound what one student can fill and never drop what the class needs (server.eviction): each trainer
keeps at most `per_owner` models (their oldest go, from the store too), and making room never drops a
model pinned or in use (`protect`) or trained within the last lesson-length.

Whatever these hold is read-only: never train, modify or move a model obtained here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from core.checkpoint import CheckpointError, load_checkpoint, load_snapshots, save_checkpoint
from core.config import Config
from core.identity import PREFIXES, Origin, TrainedModel, config_id
from core.store import ModelStore, StoreUnavailable
from server.eviction import LESSON_SECONDS, PER_OWNER, Evictions, Held, evictions

log = logging.getLogger("bilinear_eigen_lab")
RETRY_SAVE_SECONDS = 15.0  # how often a model the store did not take is written again


def save(store: ModelStore | None, trained: TrainedModel, keep: Collection[str] = ()) -> bool:
    """Write a model trained on this server to the store; making room there never drops the models in `keep`.
    False if the write failed (the model still lives in memory; the shelf tries again: `Shelf._save`)."""
    if store is None or trained.origin not in ("trained", "stopped"):
        return True
    try:
        data = save_checkpoint(trained.model, trained.config, list(trained.history), trained.snapshots)
        store.put(trained.model_id, data, keep=keep)
    except StoreUnavailable as error:  # down, or no bucket: said once by the store, and on every page
        log.warning("model %s is not in the store yet: %s", trained.model_id, error)
        return False
    except Exception:  # disk full, a backend's own error
        log.exception("could not write model %s to the store %s", trained.model_id, store.url)
        return False
    return True


def forget(store: ModelStore | None, dropped: Evictions) -> None:
    """Delete from the store the models dropped for being over their trainer's share."""
    for model_id in dropped.over_owner if store is not None else ():
        store.delete(model_id)


class Bounds:
    """How the registry and the slots decide what to drop (server.eviction), and what they must keep:
    `protect` callables each name ids in use (the sessions' active models, the teacher's pin)."""

    def __init__(
        self,
        *protect: Callable[[], Collection[str]],
        per_owner: int = PER_OWNER,
        recent: float = LESSON_SECONDS,
        owner: Callable[[str], str] = str,
    ) -> None:
        self._protect, self.per_owner, self.recent = list(protect), per_owner, recent
        self.owner = owner  # a model's trainer (session token) -> whose share it counts against (their browser)

    def protect(self, ids: Callable[[], Collection[str]]) -> None:
        """Also keep the ids this names (e.g. the class room's pin, once the room exists)."""
        self._protect.append(ids)

    def protected(self) -> set[str]:
        """The ids no eviction drops now (pinned, in use)."""
        return {i for ids in list(self._protect) for i in ids() if i}

    def keep(self, held: Iterable[Held], protected: set[str]) -> set[str]:
        """What the file store must not drop to make room: the protected and the recent models."""
        now = time.time()
        return protected | {h.model_id for h in held if now - h.added < self.recent}


def load(store: ModelStore | None, model_id: str, origin: Origin, fresh: bool = False) -> TrainedModel | None:
    """The stored model with this id, checked: its content (or config) must give back the same id."""
    data = store.get(model_id, fresh=fresh) if store is not None else None
    if data is None:
        return None
    try:
        model, config, history = load_checkpoint(data)
        snapshots = load_snapshots(data, config)
    except CheckpointError:
        log.exception("the store's model %s is unusable", model_id)
        return None
    trained = TrainedModel(model, config, tuple(history), origin, snapshots=snapshots)
    if trained.model_id != model_id or (origin == "trained" and len(history) != config.epochs):
        log.warning("the store's model %s holds another model (%s): ignored", model_id, trained.model_id)
        return None
    return trained


@dataclass(frozen=True)
class Listed:
    """A model as a listing returns it: the model and when this server got it."""

    trained: TrainedModel
    added: float  # time.time() when it was added (a clock time for the class board)


def newest_first(entries: Iterable[Listed], origins: Collection[str] | None) -> list[Listed]:
    """The entries of the given origins (all when None), the most recently added first."""
    kept = [e for e in entries if origins is None or e.trained.origin in origins]
    return sorted(kept, key=lambda e: e.added, reverse=True)


class Shelf:
    """What the registry and the slots share: their models (`_models`, each with the time it arrived in
    `_added` under the same key) listed newest first, a revision number, and their count; under `_lock`.

    A model the store did not take (unreachable, or its bucket missing) waits in `_unsaved` and is written
    again every RETRY_SAVE_SECONDS while this shelf still holds it, so a model trained during a store outage
    reaches the store (and with it a restart and the other replicas) once it answers."""

    _lock: threading.Lock
    _models: OrderedDict
    _added: dict
    _revision: int
    _max_bytes: int
    _bounds: Bounds
    _store: ModelStore | None
    _unsaved: dict[str, TrainedModel]  # model id -> a model the store has not taken yet
    _retry: threading.Timer | None  # the next try, while any wait

    def models(self, origins: Collection[Origin] | None = None) -> list[Listed]:
        """The models held now (of the given origins), newest first, each with the time it arrived."""
        with self._lock:
            entries = [Listed(trained, self._added[key]) for key, trained in self._models.items()]
        return newest_first(entries, origins)

    @property
    def revision(self) -> int:
        """A number that changes whenever a model arrives or is dropped (and only then)."""
        with self._lock:
            return self._revision

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)

    def _save(self, trained: TrainedModel, keep: Collection[str]) -> None:
        """Write a new model to the store, or keep it for the next try."""
        saved = save(self._store, trained, keep)
        with self._lock:
            if saved:
                self._unsaved.pop(trained.model_id, None)
                return
            self._unsaved[trained.model_id] = trained
            if self._retry is None:
                self._retry = threading.Timer(RETRY_SAVE_SECONDS, self.save_unsaved)
                self._retry.daemon = True
                self._retry.start()

    def save_unsaved(self) -> int:
        """Write the models the store did not take, those this shelf still holds; how many are still waiting
        (then it tries again in RETRY_SAVE_SECONDS)."""
        protected = self._bounds.protected()  # outside the lock: it asks the sessions
        with self._lock:
            self._retry = None
            held = {m.model_id for m in self._models.values()}
            waiting = [m for i, m in self._unsaved.items() if i in held]
            self._unsaved = {m.model_id: m for m in waiting}
        keep = protected | held  # nothing this server holds is dropped to make room for them
        for trained in waiting:
            self._save(trained, keep)
        with self._lock:
            return len(self._unsaved)

    def _evictions(self, held: list[Held], protected: set[str], max_models: int) -> Evictions:
        """What to drop to stay within `max_models`, the byte budget and each student's share (server.eviction)."""
        return evictions(
            held,
            max_models=max_models,
            max_bytes=self._max_bytes,
            per_owner=self._bounds.per_owner,
            protected=protected,
            now=time.time(),
            recent=self._bounds.recent,
        )


class ModelRegistry(Shelf):
    """Models trained to completion, keyed by their frozen (hashable) Config, shared by all sessions.

    Training is deterministic per config, so a config trained once never needs training again.
    The oldest entries are dropped past `max_models` (sessions using them keep their reference).
    `loader` supplies models that need no training (the precomputed grid) on first request, and
    `lazy_ids` (id -> Config) lets a link find them by id before anyone has loaded them.
    """

    def __init__(
        self,
        pinned: TrainedModel | None,
        max_models: int = 64,
        loader: Callable[[Config], TrainedModel | None] | None = None,
        lazy_ids: Mapping[str, Config] | None = None,
        store: ModelStore | None = None,
        on_new: Callable[[TrainedModel], None] | None = None,
        bounds: Bounds | None = None,
        max_bytes: float = 512 * 2**20,
    ) -> None:
        self._lock = threading.Lock()
        self._on_new = on_new  # told of each model trained on this server (the room lists it for every replica)
        self._bounds, self._max_bytes = bounds or Bounds(), max_bytes
        self._models: OrderedDict[Config, TrainedModel] = OrderedDict()
        self._ids: dict[str, Config] = {}
        self._added: dict[Config, float] = {}  # when each model arrived (the class board's clock time)
        self._revision = 0  # +1 whenever a model arrives or leaves: a board redraws only then
        if pinned is not None:  # None: the shipped checkpoint is missing, the registry still works
            self._models[pinned.config], self._ids[pinned.model_id] = pinned, pinned.config
            self._added[pinned.config] = time.time()
        self._pinned, self._max = (pinned.config if pinned is not None else None), max_models
        self._loader, self._lazy_ids, self._store = loader, dict(lazy_ids or {}), store
        self._unsaved, self._retry = {}, None

    def get(self, config: Config, fresh: bool = False) -> TrainedModel | None:
        """The model for `config`, from memory, the precomputed grid or the store (`fresh`: ask the store even
        if it said no a moment ago, e.g. because another replica has just finished it)."""
        with self._lock:
            found = self._models.get(config)
        if found is None and self._loader is not None:
            loaded = self._loader(config)  # outside the lock: it may read a file
            if loaded is not None:
                found = self.add(loaded, new=False)
        if found is None:  # trained here before a restart, or by a replica sharing the store
            stored = load(self._store, config_id(config), "trained", fresh)
            if stored is not None and stored.config == config:
                found = self.add(stored, new=False)
        return found

    def by_id(self, model_id: str) -> TrainedModel | None:
        """The model with this id, if the server has it (or can load it without training)."""
        with self._lock:
            config = self._ids.get(model_id)
        if config is None:
            config = self._lazy_ids.get(model_id)
        if config is not None:
            return self.get(config)
        stored = load(self._store, model_id, "trained")  # trained here before a restart, or by a replica
        return self.add(stored, new=False) if stored is not None else None

    def add(self, trained: TrainedModel, new: bool = True) -> TrainedModel:
        """Register a finished model (`new`: trained here, not read back); if another session got there first,
        return theirs. Past the bounds (server.eviction) older models go; never the shipped one, a protected
        one or a recent one."""
        protected = self._bounds.protected()  # outside the lock: it asks the sessions
        with self._lock:
            existing = self._models.setdefault(trained.config, trained)
            self._ids[existing.model_id] = existing.config
            if existing is trained:
                self._added[trained.config], self._revision = time.time(), self._revision + 1
            if self._pinned is not None:
                protected.add(self._models[self._pinned].model_id)
            protected.add(existing.model_id)
            held = [
                Held(m.model_id, self._bounds.owner(m.trained_by), self._added[c], m.n_bytes)
                for c, m in self._models.items()
            ]
            dropped = self._evictions(held, protected, self._max)
            for model_id in dropped.all:
                config = self._ids.pop(model_id)
                del self._models[config]
                self._added.pop(config, None)
            self._revision += bool(dropped.all) and existing is not trained  # an arrival already counted a change
            keep = self._bounds.keep(held, protected)
        if existing is trained:
            self._save(trained, keep)
            if new and self._on_new is not None and trained.origin == "trained":
                self._on_new(trained)  # after the save: a replica reading the room finds it in the store
        forget(self._store, dropped)
        return existing


class ModelSlots(Shelf):
    """Models without a canonical Config (stopped runs, uploads), by id, shared by all sessions.

    Each gets its own slot, so an uploaded file never stands in for the model its Config would
    train. Least recently used slots are dropped past `max_models` or `max_bytes` of weights
    (a d_hidden=1024 model is ~11 MB); a session holding one keeps its own reference.
    """

    def __init__(
        self,
        max_models: int = 48,
        max_bytes: int = 200 * 2**20,
        store: ModelStore | None = None,
        on_new: Callable[[TrainedModel], None] | None = None,
        bounds: Bounds | None = None,
    ) -> None:
        self._bounds = bounds or Bounds()
        self._lock = threading.Lock()
        self._on_new = on_new  # told of each run stopped on this server (the room lists it for every replica)
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._added: dict[str, float] = {}  # by id: when each model arrived (not when it was last used)
        self._used: dict[str, float] = {}  # by id: when it was last added or used (the order of eviction)
        self._revision = 0  # +1 whenever a model arrives or leaves (not when one is merely used)
        self._max_models, self._max_bytes, self._store = max_models, max_bytes, store
        self._unsaved, self._retry = {}, None

    def add(self, trained: TrainedModel, new: bool = True) -> TrainedModel:
        protected = self._bounds.protected() | {trained.model_id}  # outside the lock: it asks the sessions
        with self._lock:
            known = trained.model_id in self._models
            existing = self._models.setdefault(trained.model_id, trained)
            self._models.move_to_end(trained.model_id)
            self._used[trained.model_id] = time.time()
            if existing is trained:
                self._added[trained.model_id], self._revision = time.time(), self._revision + 1
            held = [
                Held(i, self._bounds.owner(m.trained_by), self._added[i], m.n_bytes, self._used[i])
                for i, m in self._models.items()
            ]
            dropped = self._evictions(held, protected, self._max_models)
            for model_id in dropped.all:
                del self._models[model_id]
                self._added.pop(model_id, None)
                self._used.pop(model_id, None)
            self._revision += len(dropped.all)
            keep = self._bounds.keep(held, protected)
        if existing is trained:
            self._save(trained, keep)  # a stopped run; an upload is not written (its owner has the file)
        forget(self._store, dropped)
        if new and not known and self._on_new is not None and trained.origin == "stopped":
            self._on_new(trained)  # after the save: a replica reading the room finds it in the store
        return existing

    def get(self, model_id: str) -> TrainedModel | None:
        with self._lock:
            found = self._models.get(model_id)
            if found is not None:
                self._models.move_to_end(model_id)
                self._used[model_id] = time.time()
                return found
        if model_id.startswith(PREFIXES["stopped"]):
            stored = load(self._store, model_id, "stopped")
            return self.add(stored, new=False) if stored is not None else None
        return None
