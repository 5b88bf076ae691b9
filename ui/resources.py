"""What every session on the server shares, built once with st.cache_resource.

st.cache_resource hands every caller the *same* object, so whatever these functions return is
read-only: never train, modify or move a model obtained here (train a fresh one instead).

Every model has an id (core.urlstate), so a link or a reload can find it again:
- the registry holds canonical models, one per Config (the shipped seed, the 15 precomputed grid
  checkpoints, loaded lazily, and every model trained to completion), id = hash of the Config;
- the slots hold models no Config determines (stopped runs, uploaded files, which are untrusted
  and so never become the canonical model for their Config), id = p-/u- + hash of the content.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import streamlit as st
import torch

from core.checkpoint import CheckpointError, load_checkpoint
from core.config import Config
from core.data import MNIST, MNISTError, load_mnist
from core.explain import misclassified_indices
from core.grid import grid_checkpoint, grid_config, grid_points, is_on_grid, load_index
from core.labels import Similarities, Splits, cosine_similarities, labels_from_similarities
from core.model import BilinearMLP
from core.train import EpochMetrics
from core.truncation import TruncationCurves, truncation_curves
from core.urlstate import PREFIXES, config_id, content_id
from ui import analysis
from ui.analysis import TopEigenvector
from ui.state import Unavailable

SEED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "seed-default.safetensors"

# One intra-op thread per computation. On a shared 2-core server, concurrent trainings (or any other
# busy process) make torch's default 2 threads wait for each other: a 3-epoch quick-preset training
# took 8-23 s with 2 threads under load and 0.22 s with 1 (bench/memory.py, classroom_load.py).
torch.set_num_threads(int(os.environ.get("BILINEAR_LAB_TORCH_THREADS", "1")))
Origin = Literal["pretrained", "grid", "trained", "stopped", "uploaded"]
log = logging.getLogger("bilinear_eigen_lab")


def model_key(model: BilinearMLP, config: Config, history: tuple[EpochMetrics, ...], origin: str) -> str:
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
    key: str = ""  # filled in from the content: see model_key

    def __post_init__(self) -> None:
        self.model.eval().requires_grad_(False)  # from here on the model is only read, maybe by many sessions
        if not self.key:
            object.__setattr__(self, "key", model_key(self.model, self.config, self.history, self.origin))

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
            self._models[pinned.config], self._ids[pinned.key] = pinned, pinned.config
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

    def by_id(self, key: str) -> TrainedModel | None:
        """The model with this id, if the server has it (or can load it without training)."""
        with self._lock:
            config = self._ids.get(key)
        if config is None:
            config = self._lazy_ids.get(key)
        return self.get(config) if config is not None else None

    def add(self, trained: TrainedModel) -> TrainedModel:
        """Register a finished model; if another session got there first, return theirs."""
        with self._lock:
            existing = self._models.setdefault(trained.config, trained)
            self._ids[existing.key] = existing.config
            while len(self._models) > self._max:
                oldest = next(c for c in self._models if c != self._pinned)
                self._ids.pop(self._models.pop(oldest).key, None)
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
            existing = self._models.setdefault(trained.key, trained)
            self._models.move_to_end(trained.key)
            while len(self._models) > 1 and (
                len(self._models) > self._max_models or sum(m.n_bytes for m in self._models.values()) > self._max_bytes
            ):
                self._models.popitem(last=False)
            return existing

    def get(self, key: str) -> TrainedModel | None:
        with self._lock:
            found = self._models.get(key)
            if found is not None:
                self._models.move_to_end(key)
            return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


@st.cache_resource(show_spinner="Loading the pretrained model…")
def seed_model() -> TrainedModel:
    """The shipped checkpoint: the seed notebook's settings trained for 100 epochs on full MNIST."""
    model, config, history = load_checkpoint(SEED_CHECKPOINT.read_bytes())
    return TrainedModel(model, config, tuple(history), "pretrained")


def seed_model_or_none() -> TrainedModel | None:
    """The shipped checkpoint, or None if it is missing or unusable on this server (logged)."""
    try:
        return seed_model()
    except (OSError, CheckpointError):
        log.exception("the shipped checkpoint %s is unusable", SEED_CHECKPOINT)
        return None


class GridCheckpointMissing(LookupError):
    """No usable precomputed checkpoint for a grid point (not cached: a later call tries again)."""


@st.cache_resource(max_entries=len(grid_points()), show_spinner=False)
def _grid_model(threshold: float, weight_decay: float) -> TrainedModel:
    config = grid_config(threshold, weight_decay)
    path = grid_checkpoint(config)
    if path is None:
        raise GridCheckpointMissing(f"no checkpoint for {config}")
    try:
        model, saved_config, history = load_checkpoint(path.read_bytes())
    except (OSError, CheckpointError) as error:
        raise GridCheckpointMissing(f"{path} is unreadable: {error}") from error
    if saved_config != config:
        raise GridCheckpointMissing(f"{path} holds {saved_config}, expected {config}")
    return TrainedModel(model, config, tuple(history), "grid")


def grid_model(threshold: float, weight_decay: float) -> TrainedModel | None:
    """The precomputed checkpoint for a grid point (core.grid), read once per server; None if missing."""
    snapped = grid_config(threshold, weight_decay)  # one cache entry per grid point, whatever the float
    try:
        return _grid_model(snapped.threshold, snapped.weight_decay)
    except GridCheckpointMissing:
        log.exception("precomputed checkpoint missing")
        return None


def load_grid_model(config: Config) -> TrainedModel | None:
    """The registry's loader: a precomputed model for an on-grid Config, else None (train it)."""
    return grid_model(config.threshold, config.weight_decay) if is_on_grid(config) else None


@st.cache_resource
def registry() -> ModelRegistry:
    """The server-wide registry of trained models: the shipped checkpoint, and the precomputed grid
    (loaded on first request, so a grid slider or an on-grid Train click is instant)."""
    lazy_ids = {config_id(grid_config(t, wd)): grid_config(t, wd) for t, wd in grid_points()}
    return ModelRegistry(seed_model_or_none(), loader=load_grid_model, lazy_ids=lazy_ids)


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


@st.cache_resource
def trainings_in_flight() -> TrainingsInFlight:
    """The server-wide table of trainings under way."""
    return TrainingsInFlight()


@st.cache_resource
def slots() -> ModelSlots:
    """The server-wide store of stopped runs and uploaded models, by id."""
    return ModelSlots()


def find_model(key: str) -> TrainedModel | None:
    """The model a link's `model=<id>` names, if the server still has it."""
    return registry().by_id(key) or slots().get(key)


@st.cache_resource(show_spinner=False)
def grid_index() -> dict[str, dict[str, Any]]:
    """checkpoints/grid/index.json: one summary row per precomputed checkpoint."""
    return load_index()


@st.cache_resource(show_spinner="Loading MNIST (once for the whole class)…")
def _mnist() -> MNIST:
    return load_mnist()


def mnist() -> MNIST:
    """MNIST as uint8 tensors (~55 MB), loaded once per server.

    Raises Unavailable with core.data's message (what was looked for, how to fix it) if it cannot
    be loaded; a failure is not cached, so the next run tries again.
    """
    try:
        return _mnist()
    except MNISTError as error:
        raise Unavailable(
            f"The MNIST images are not available on this server, so this step cannot run. {error}"
        ) from error


class TargetSimilarities(NamedTuple):
    train: Similarities  # (60000,) cosines with the target and with its inverse
    test: Similarities  # (10000,)


@st.cache_resource(max_entries=128, show_spinner="Comparing every image with the target…")
def similarities(target_index: int) -> TargetSimilarities:
    """Cosine similarities of all train and test images with training image `target_index`."""
    data = mnist()
    target = data.train_x[target_index]
    return TargetSimilarities(cosine_similarities(data.train_x, target), cosine_similarities(data.test_x, target))


def labels(config: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) 0/1 labels for the whole of MNIST under the config's labelling rule."""
    sims = similarities(config.target_index)
    return (
        labels_from_similarities(sims.train, config.threshold, config.include_inverse),
        labels_from_similarities(sims.test, config.threshold, config.include_inverse),
    )


def splits(config: Config) -> Splits:
    """What core.train consumes for `config` (the same as core.labels.make_splits, from the cache)."""
    data, (train_y, test_y) = mnist(), labels(config)
    n_train, n_test = config.n_train, config.n_test
    return Splits(data.train_x[:n_train], train_y[:n_train], data.test_x[:n_test], test_y[:n_test])


def random_index_of_digit(digit: int) -> int:
    """A random training image showing `digit`."""
    return random.choice((mnist().train_y == digit).nonzero().flatten().tolist())  # not torch's global RNG


def first_with_label(labels: torch.Tensor, value: int, n: int) -> list[int]:
    """Indices of the first n images carrying label `value`."""
    return (labels == value).nonzero().flatten()[:n].tolist()


@st.cache_resource(max_entries=32, show_spinner="Finding the test images this model gets wrong…")
def misclassified(key: str, _trained: TrainedModel) -> tuple[int, ...]:
    """Indices of the test images the model (id `key`) misclassifies, under its own labels."""
    return tuple(misclassified_indices(_trained.model, mnist().test_x, labels(_trained.config)[1]).tolist())


@st.cache_resource(max_entries=32, show_spinner="Truncating every interaction matrix, for every k…")
def truncation(key: str, _trained: TrainedModel) -> TruncationCurves:
    """Accuracy on all 10 000 test images with only the top-k eigenvectors kept (per model id `key`)."""
    return truncation_curves(_trained.model, mnist().test_x, labels(_trained.config)[1])


@st.cache_resource(max_entries=64, show_spinner=False)
def top_eigenvector(key: str, _trained: TrainedModel, direction: str) -> TopEigenvector:
    """The direction's top eigenvector of model `key` as an image, with its |cos| to the model's target."""
    return analysis.top_eigenvector(_trained.model, mnist().train_x[_trained.config.target_index], direction)
