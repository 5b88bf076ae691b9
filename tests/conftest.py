"""Shared fixtures: the bundled MNIST (loaded once) and small trained models."""

from __future__ import annotations

import pytest

from core.config import Config
from core.data import MNIST, load_mnist
from core.labels import make_splits
from core.train import fit, train


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    return load_mnist()


@pytest.fixture(scope="session")
def small_config() -> Config:
    """A quick config on a slice: trains in a few seconds and still finds the target.

    Weight decay 2.0 makes the top True-False eigenvector reliably target-like on a slice
    (|cos| 0.78 for seeds 42, 1, 2; with 1.0 it ranged 0.56-0.68).
    """
    return Config(epochs=15, n_train=12_000, n_test=2_000, batch_size=512, lr=3e-3, weight_decay=2.0)


@pytest.fixture(scope="session")
def small_run(mnist, small_config):
    splits = make_splits(mnist, small_config)
    model, history = fit(small_config, splits)
    return model, history, splits


@pytest.fixture(scope="session")
def interrupted_run(mnist):
    """Make a Train-page run as Stop leaves it: one real epoch finished out of `config.epochs`."""

    def make(config: Config):
        from ui.models import TrainingRun  # imports streamlit: only the app tests need it

        run = TrainingRun(config)
        splits = make_splits(mnist, config)
        run.history.append(next(train(run.model, splits, config)))
        run.left_loop.set()  # the training loop has been left, as after the interrupted script run
        return run

    return make
