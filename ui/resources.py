"""What every session on the server shares, built once with st.cache_resource.

st.cache_resource hands every caller the *same* object, so whatever these functions return is
read-only: never train, modify or move a model obtained here (train a fresh one instead).
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import streamlit as st
import torch

from core.checkpoint import load_checkpoint
from core.config import Config
from core.data import MNIST, load_mnist
from core.labels import Similarities, Splits, cosine_similarities, labels_from_similarities
from core.model import BilinearMLP
from core.train import EpochMetrics

SEED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "seed-default.safetensors"
Origin = Literal["pretrained", "trained", "stopped", "uploaded"]


@dataclass(frozen=True)
class TrainedModel:
    """A model with the config and per-epoch history it was trained with."""
    model: BilinearMLP
    config: Config
    history: tuple[EpochMetrics, ...]
    origin: Origin

    def __post_init__(self) -> None:
        self.model.eval().requires_grad_(False)  # from here on the model is only read, maybe by many sessions

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else self.config.epochs


class ModelRegistry:
    """Models trained to completion, keyed by their frozen (hashable) Config, shared by all sessions.

    Training is deterministic per config, so a config trained once never needs training again.
    The oldest entries are dropped past `max_models` (sessions using them keep their reference).
    """

    def __init__(self, pinned: TrainedModel, max_models: int = 64) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[Config, TrainedModel] = OrderedDict({pinned.config: pinned})
        self._pinned, self._max = pinned.config, max_models

    def get(self, config: Config) -> TrainedModel | None:
        with self._lock:
            return self._models.get(config)

    def add(self, trained: TrainedModel) -> TrainedModel:
        """Register a finished model; if another session got there first, return theirs."""
        with self._lock:
            existing = self._models.setdefault(trained.config, trained)
            while len(self._models) > self._max:
                oldest = next(c for c in self._models if c != self._pinned)
                del self._models[oldest]
            return existing

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


@st.cache_resource(show_spinner="Loading the pretrained model…")
def seed_model() -> TrainedModel:
    """The shipped checkpoint: the seed notebook's settings trained for 100 epochs on full MNIST."""
    model, config, history = load_checkpoint(SEED_CHECKPOINT.read_bytes())
    return TrainedModel(model, config, tuple(history), "pretrained")


@st.cache_resource
def registry() -> ModelRegistry:
    """The server-wide registry of trained models, pre-populated with the shipped checkpoint."""
    return ModelRegistry(seed_model())


@st.cache_resource(show_spinner="Loading MNIST (once for the whole class)…")
def mnist() -> MNIST:
    """MNIST as uint8 tensors (~55 MB), loaded once per server."""
    return load_mnist()


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
    return (labels_from_similarities(sims.train, config.threshold, config.include_inverse),
            labels_from_similarities(sims.test, config.threshold, config.include_inverse))


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
