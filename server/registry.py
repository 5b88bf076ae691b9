"""The server's models, shared by every session: what a class trains, once (no Streamlit here).

Every model has an id (core.identity), so a link or a reload can find it again:
- the registry holds canonical models, one per Config (the shipped seed, the 15 precomputed grid
  checkpoints, loaded lazily, and every model trained to completion), id = hash of the Config;
- the slots hold models no Config determines (stopped runs, uploaded files, which are untrusted
  and so never become the canonical model for their Config), id = p-/u- + hash of the content.

Both write what was trained here (finished and stopped runs, not the shipped or uploaded files) to a
`core.store.ModelStore` when they have one, and look there for an id they lack: a model survives a
restart of the server, and replicas sharing one bucket find each other's models.

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
from core.store import ModelStore

log = logging.getLogger("bilinear_eigen_lab")


def save(store: ModelStore | None, trained: TrainedModel) -> None:
    """Write a model trained on this server to the store (a failed write costs a retraining later, no more)."""
    if store is None or trained.origin not in ("trained", "stopped"):
        return
    try:
        data = save_checkpoint(trained.model, trained.config, list(trained.history), trained.snapshots)
        store.put(trained.model_id, data)
    except Exception:  # disk full, bucket unreachable: the model still lives in memory
        log.exception("could not write model %s to the store %s", trained.model_id, store.url)


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


class ModelRegistry:
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
    ) -> None:
        self._lock = threading.Lock()
        self._on_new = on_new  # told of each model trained on this server (the room lists it for every replica)
        self._models: OrderedDict[Config, TrainedModel] = OrderedDict()
        self._ids: dict[str, Config] = {}
        self._added: dict[Config, float] = {}  # when each model arrived (the class board's clock time)
        self._revision = 0  # +1 whenever a model arrives or leaves: a board redraws only then
        if pinned is not None:  # None: the shipped checkpoint is missing, the registry still works
            self._models[pinned.config], self._ids[pinned.model_id] = pinned, pinned.config
            self._added[pinned.config] = time.time()
        self._pinned, self._max = (pinned.config if pinned is not None else None), max_models
        self._loader, self._lazy_ids, self._store = loader, dict(lazy_ids or {}), store

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
        return theirs."""
        with self._lock:
            existing = self._models.setdefault(trained.config, trained)
            self._ids[existing.model_id] = existing.config
            if existing is trained:
                self._added[trained.config], self._revision = time.time(), self._revision + 1
            while len(self._models) > self._max:
                oldest = next(c for c in self._models if c != self._pinned)
                self._ids.pop(self._models.pop(oldest).model_id, None)
                self._added.pop(oldest, None)
        if existing is trained:
            save(self._store, trained)
            if new and self._on_new is not None and trained.origin == "trained":
                self._on_new(trained)  # after the save: a replica reading the room finds it in the store
        return existing

    def models(self, origins: Collection[Origin] | None = None) -> list[Listed]:
        """The models held now (of the given origins), newest first, each with the time it arrived."""
        with self._lock:
            entries = [Listed(trained, self._added[config]) for config, trained in self._models.items()]
        return newest_first(entries, origins)

    @property
    def revision(self) -> int:
        """A number that changes whenever a model arrives or is dropped (and only then)."""
        with self._lock:
            return self._revision

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


class ModelSlots:
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
    ) -> None:
        self._lock = threading.Lock()
        self._on_new = on_new  # told of each run stopped on this server (the room lists it for every replica)
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._added: dict[str, float] = {}  # by id: when each model arrived (not when it was last used)
        self._revision = 0  # +1 whenever a model arrives or leaves (not when one is merely used)
        self._max_models, self._max_bytes, self._store = max_models, max_bytes, store

    def add(self, trained: TrainedModel, new: bool = True) -> TrainedModel:
        save(self._store, trained)  # a stopped run; an upload is not written (its owner has the file)
        with self._lock:
            known = trained.model_id in self._models
            existing = self._models.setdefault(trained.model_id, trained)
            self._models.move_to_end(trained.model_id)
            if existing is trained:
                self._added[trained.model_id], self._revision = time.time(), self._revision + 1
            while len(self._models) > 1 and (
                len(self._models) > self._max_models or sum(m.n_bytes for m in self._models.values()) > self._max_bytes
            ):
                dropped, _ = self._models.popitem(last=False)
                self._added.pop(dropped, None)
                self._revision += 1
        if new and not known and self._on_new is not None and trained.origin == "stopped":
            self._on_new(trained)
        return existing

    def models(self, origins: Collection[Origin] | None = None) -> list[Listed]:
        """The models held now (of the given origins), newest first, each with the time it arrived."""
        with self._lock:
            entries = [Listed(trained, self._added[model_id]) for model_id, trained in self._models.items()]
        return newest_first(entries, origins)

    @property
    def revision(self) -> int:
        """A number that changes whenever a model arrives or is dropped (and only then)."""
        with self._lock:
            return self._revision

    def get(self, model_id: str) -> TrainedModel | None:
        with self._lock:
            found = self._models.get(model_id)
            if found is not None:
                self._models.move_to_end(model_id)
                return found
        if model_id.startswith(PREFIXES["stopped"]):
            stored = load(self._store, model_id, "stopped")
            return self.add(stored, new=False) if stored is not None else None
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)
