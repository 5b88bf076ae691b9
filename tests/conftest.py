"""Shared fixtures: the bundled MNIST (loaded once) and small trained models."""

from __future__ import annotations

import itertools
import os
import tempfile
import threading

import pytest
import torch

from core.config import Config, preset
from core.data import MNIST, load_mnist
from core.labels import make_splits
from core.train import fit, new_model, train

# Every test session (and the app servers the browser tests start) stores trained models in a fresh
# directory: a model trained by an earlier run must not turn a training into a load.
os.environ.setdefault("BILINEAR_LAB_MODEL_STORE", tempfile.mkdtemp(prefix="bilinear-lab-store-"))
# `make test` runs two pytest processes side by side on 2 cores: a training thread at a lower priority
# (server.jobs.NICE) would wait for the other process's tests, which no real server has beside it.
# tests/unit/test_jobs.py checks the priority itself.
os.environ.setdefault("BILINEAR_LAB_TRAINING_NICE", "0")
# The room's state (server.room) in an in-memory SQLite database per process, unless a test names one: a
# test server starts with an empty room, as the in-memory room did (tests/browser/test_replicas.py sets
# its own database, and unsets this for the restart with the default SQLite file).
os.environ.setdefault("BILINEAR_LAB_ROOM_URL", "sqlite://")


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    return load_mnist()


@pytest.fixture(scope="session")
def small_config() -> Config:
    """The app's quick preset: seconds of training, and the target shows clearly.

    docs/quick_preset.md measured True − False top |cos| 0.835-0.879 over seeds 0-4 (val acc >= 0.950),
    so a test asking for |cos| >= 0.7 holds on any CPU, where rounding makes the run another sample.
    """
    return preset("quick")


@pytest.fixture(scope="session")
def small_run(mnist, small_config):
    splits = make_splits(mnist, small_config)
    model, history = fit(small_config, splits)
    return model, history, splits


@pytest.fixture(scope="session")
def running_job(mnist):
    """Make a server training job as a Stop finds it: one real epoch finished out of `config.epochs`,
    followed by the session whose token is `token` (put both in an AppTest's session state)."""

    def make(config: Config, token: str = "student"):
        from server.jobs import TrainingJob  # imports the UI layer: only the app tests need it

        splits = make_splits(mnist, config)
        job = TrainingJob(config, splits, {token})
        model = new_model(config)
        job.state = "running"
        job.record(model, next(train(model, splits, config)))
        return job

    return make


class TrainingGate:
    """A trainer for the server's pool that holds at one `should_stop` poll (1 = before the first
    batch; core.train polls before every batch) until the test releases it."""

    def __init__(self) -> None:
        self.hold_at = 1
        self.held, self.release = threading.Event(), threading.Event()

    def trainer(self, model, splits, config, should_stop, **watching):
        polls = itertools.count(1)

        def poll() -> bool:
            if next(polls) == self.hold_at and not self.release.is_set():
                self.held.set()
                self.release.wait(60)
            return should_stop()

        yield from train(model, splits, config, should_stop=poll, **watching)  # the pool's live snapshots


@pytest.fixture
def training_gate(monkeypatch):
    """The app's training pool, rebuilt for this test with a TrainingGate's trainer."""
    from ui import resources

    gate = TrainingGate()
    resources.training_pool.clear()
    monkeypatch.setattr(resources, "train", gate.trainer)
    yield gate
    gate.release.set()
    resources.training_pool.clear()


@pytest.fixture
def fresh_room(monkeypatch):
    """No teacher passcode unless a test sets one, an empty class room (nothing pinned, no votes, answers
    hidden, the server's default cap on a run) and no wrong passcodes counted, before and after the test."""
    from ui import board, resources

    monkeypatch.delenv(board.PASSCODE_ENV, raising=False)
    resources.room().new_class()  # the class's models stay listed, as they stay in the registry
    resources.room().set_max_run_seconds(None)  # the server's default cap (a new class keeps the teacher's)
    board.guesses.clear()  # no lockout left over from another test's wrong passcodes
    yield
    resources.room().new_class()
    resources.room().set_max_run_seconds(None)
    board.guesses.clear()


@pytest.fixture
def one_torch_thread():
    """Many tiny torch ops: a second intra-op thread only adds sync cost on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
