"""The server's models, shared by every session: what a class trains, once (no Streamlit here).

Every model has an id (core.urlstate), so a link or a reload can find it again:
- the registry holds canonical models, one per Config (the shipped seed, the 15 precomputed grid
  checkpoints, loaded lazily, and every model trained to completion), id = hash of the Config;
- the slots hold models no Config determines (stopped runs, uploaded files, which are untrusted
  and so never become the canonical model for their Config), id = p-/u- + hash of the content;
- the trainings in flight let a second student with the same settings follow the first one's run.

Whatever these hold is read-only: never train, modify or move a model obtained here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.config import Config
from core.model import BilinearMLP
from core.train import EpochMetrics
from core.urlstate import PREFIXES, config_id, content_id

Origin = Literal["pretrained", "grid", "trained", "stopped", "uploaded"]


def compute_model_id(model: BilinearMLP, config: Config, history: tuple[EpochMetrics, ...], origin: str) -> str:
    """The model's id: its Config's hash, or for a stopped run / an upload a hash of its content."""
    if origin not in PREFIXES:
        return config_id(config)
    parts = [repr(config.to_dict()).encode(), repr([m.to_dict() for m in history]).encode()]
    for name, tensor in sorted(model.state_dict().items()):
        parts += [name.encode(), tensor.detach().cpu().contiguous().numpy().tobytes()]
    return content_id(origin, *parts)


@dataclass(frozen=True)
class TrainedModel:
    """A model with the config and per-epoch history it was trained with, and its id."""

    model: BilinearMLP
    config: Config
    history: tuple[EpochMetrics, ...]
    origin: Origin
    model_id: str = ""  # filled in from the content: see compute_model_id

    def __post_init__(self) -> None:
        self.model.eval().requires_grad_(False)  # from here on the model is only read, maybe by many sessions
        if not self.model_id:
            object.__setattr__(self, "model_id", compute_model_id(self.model, self.config, self.history, self.origin))

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else self.config.epochs

    @property
    def n_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


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
    ) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[Config, TrainedModel] = OrderedDict()
        self._ids: dict[str, Config] = {}
        if pinned is not None:  # None: the shipped checkpoint is missing, the registry still works
            self._models[pinned.config], self._ids[pinned.model_id] = pinned, pinned.config
        self._pinned, self._max = (pinned.config if pinned is not None else None), max_models
        self._loader, self._lazy_ids = loader, dict(lazy_ids or {})

    def get(self, config: Config) -> TrainedModel | None:
        with self._lock:
            found = self._models.get(config)
        if found is None and self._loader is not None:
            loaded = self._loader(config)  # outside the lock: it may read a file
            if loaded is not None:
                found = self.add(loaded)
        return found

    def by_id(self, model_id: str) -> TrainedModel | None:
        """The model with this id, if the server has it (or can load it without training)."""
        with self._lock:
            config = self._ids.get(model_id)
        if config is None:
            config = self._lazy_ids.get(model_id)
        return self.get(config) if config is not None else None

    def add(self, trained: TrainedModel) -> TrainedModel:
        """Register a finished model; if another session got there first, return theirs."""
        with self._lock:
            existing = self._models.setdefault(trained.config, trained)
            self._ids[existing.model_id] = existing.config
            while len(self._models) > self._max:
                oldest = next(c for c in self._models if c != self._pinned)
                self._ids.pop(self._models.pop(oldest).model_id, None)
            return existing

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


class ModelSlots:
    """Models without a canonical Config (stopped runs, uploads), by id, shared by all sessions.

    Each gets its own slot, so an uploaded file never stands in for the model its Config would
    train. Least recently used slots are dropped past `max_models` or `max_bytes` of weights
    (a d_hidden=1024 model is ~11 MB); a session holding one keeps its own reference.
    """

    def __init__(self, max_models: int = 48, max_bytes: int = 200 * 2**20) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[str, TrainedModel] = OrderedDict()
        self._max_models, self._max_bytes = max_models, max_bytes

    def add(self, trained: TrainedModel) -> TrainedModel:
        with self._lock:
            existing = self._models.setdefault(trained.model_id, trained)
            self._models.move_to_end(trained.model_id)
            while len(self._models) > 1 and (
                len(self._models) > self._max_models or sum(m.n_bytes for m in self._models.values()) > self._max_bytes
            ):
                self._models.popitem(last=False)
            return existing

    def get(self, model_id: str) -> TrainedModel | None:
        with self._lock:
            found = self._models.get(model_id)
            if found is not None:
                self._models.move_to_end(model_id)
            return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


class TrainingsInFlight:
    """Trainings under way on this server, by Config: a second student who asks for exactly the
    same settings waits for the first one's run instead of training it again on the shared cores."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[Config, Any] = {}

    def claim(self, config: Config, run: Any) -> Any | None:
        """Register `run` as the one training `config`; returns the run already doing so, if any."""
        with self._lock:
            other = self._runs.setdefault(config, run)
            return None if other is run else other

    def release(self, config: Config, run: Any) -> None:
        with self._lock:
            if self._runs.get(config) is run:
                del self._runs[config]
