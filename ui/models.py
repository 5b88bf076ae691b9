"""The student's active model, and the training run that may replace it (st.session_state).

The active model starts as the shipped checkpoint, so the Tensor and Eigenvectors pages work at
once. A training run lives in st.session_state *before* its first epoch, so when the script run is
interrupted (Stop, or leaving the page) the next run finds it and keeps what it has learnt.
Every active model has an id (ui.resources) that ui.links puts in the URL: a reload, which
starts a new session, finds the model again with `restore`.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.config import Config
from core.grid import grid_config, is_on_grid
from core.model import BilinearMLP
from core.text import literal
from core.train import EpochMetrics, TrainingDiverged, new_model, train
from ui import figures, resources
from ui.registry import TrainedModel
from ui.state import RUN_KEY, Unavailable, notify, training_widgets

log = logging.getLogger("bilinear_eigen_lab")


class NoModel(Unavailable):
    """This session has no model: the shipped checkpoint is missing or unusable on this server."""


def active() -> TrainedModel:
    """The model the Tensor and Eigenvectors pages show (default: the shipped checkpoint).

    Raises NoModel, with what to do, if the session has none and the shipped checkpoint cannot be
    read (not cached by st.cache_resource: the next run tries the file again).
    """
    if "active" not in st.session_state:
        try:
            st.session_state.active = resources.seed_model()
        except (OSError, CheckpointError) as error:
            log.warning("no model: the shipped checkpoint %s is unusable (%s)", resources.SEED_CHECKPOINT, error)
            raise NoModel(
                f"No model yet: the pretrained checkpoint could not be loaded on this server "
                f"({type(error).__name__}: {error}). Train one in step 2 · Train, or load a "
                ".safetensors model you saved from the sidebar; this page then shows it."
            ) from error
    return st.session_state.active


def current() -> TrainedModel | None:
    """The active model, or None while there is none (see `active`)."""
    try:
        return active()
    except NoModel:
        return None


def set_active(trained: TrainedModel) -> None:
    """Make `trained` this student's model. A stopped run or an upload also gets a shared slot under
    its id, so the link in the URL (model=<id>) finds it again after a reload."""
    if trained.origin in ("stopped", "uploaded"):
        trained = resources.slots().add(trained)
    st.session_state.active = trained


def restore(model_id: str) -> bool:
    """A new session opened with `model=<id>` in its URL: make that model active if the server has it."""
    found = resources.find_model(model_id)
    if found is None:
        notify(
            "warning",
            f"This server has no model {literal('model=' + model_id)}: the link may be mistyped or from another "
            "server, or the server restarted or dropped the model to make room. Showing the pretrained model "
            "instead; load your .safetensors file from the sidebar, or train it again, to get it back.",
        )
        return False
    st.session_state.active = found
    if found.origin in ("trained", "stopped"):  # the student's own run: its settings back on the Train page
        st.session_state.update(training_widgets(found.config))
    return True


def use_grid_point() -> None:
    """Grid slider callback: make the precomputed checkpoint for the sliders' (τ, weight decay) active."""
    ss = st.session_state
    try:
        config = grid_config(ss.grid_threshold, ss.grid_weight_decay)
    except ValueError as error:
        notify("error", f"{error}. Your current model is kept.")
        return
    trained = resources.registry().get(config)
    if trained is None:
        notify(
            "error",
            f"The precomputed checkpoint for threshold {config.threshold:g} and weight decay "
            f"{config.weight_decay:g} is missing on this server: train it on the Train page "
            "instead. Your current model is kept.",
        )
        return
    set_active(trained)


def grid_point(trained: TrainedModel) -> tuple[float, float] | None:
    """(threshold, weight decay) if the model is one of the precomputed grid models, else None."""
    config = trained.config
    if trained.origin in ("uploaded", "stopped") or not is_on_grid(config):  # same config, other weights
        return None
    snapped = grid_config(config.threshold, config.weight_decay)
    return snapped.threshold, snapped.weight_decay


class TrainingRun:
    """A model being trained by this session; the session alone owns it until the run is closed.

    Streamlit's fast reruns start the next script run *while* the interrupted one still finishes
    its current batch in another thread. So the next run asks this one to stop (`core.train`
    polls `stop_requested` between batches), waits until it has left its training loop, and only
    then keeps a copy of the model. Exactly one of finish / fail / keep_interrupted closes a run.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.model: BilinearMLP = new_model(config)
        self.history: list[EpochMetrics] = []
        self.stop_requested = threading.Event()  # set by the run that interrupts this one
        self.left_loop = threading.Event()  # set by the training thread when it stops training
        self.replaces: TrainedModel | None = None  # the session's active model when the run started
        self._lock, self._closed = threading.Lock(), False

    def _close(self) -> bool:
        """Claim the right to decide what becomes of this run (True once, then False)."""
        with self._lock:
            closed, self._closed = self._closed, True
            return not closed

    def _forget(self) -> None:
        if st.session_state.get(RUN_KEY) is self:
            del st.session_state[RUN_KEY]

    def _publish(self) -> None:
        trained = resources.registry().add(TrainedModel(self.model, self.config, tuple(self.history), "trained"))
        set_active(trained)
        notify(
            "success",
            f"Training finished: validation accuracy {trained.history[-1].val_acc:.1%}. This is now "
            "your active model; see what it learnt in steps 3 and 4.",
        )

    def finish(self) -> None:
        """Training completed: publish the model server-wide and make it the active model."""
        if not self.stop_requested.is_set() and self._close():
            self._forget()
            self._publish()

    def fail(self, message: str) -> None:
        """Training failed (e.g. diverged): discard the model, keep the previous one."""
        if self._close():
            self._forget()
            notify("error", f"{message} Your previous model is kept.")

    def keep_interrupted(self, timeout: float = 120.0) -> None:
        """Called by the next script run: stop this one and keep the epochs it finished."""
        self.stop_requested.set()
        self.left_loop.wait(timeout)
        if not self._close():
            return
        if self.replaces is not None and st.session_state.get("active") is not self.replaces:
            # the student chose another model meanwhile (an upload's callback ran before this): one outcome
            complete = len(self.history) == self.config.epochs
            if complete:
                resources.registry().add(TrainedModel(self.model, self.config, tuple(self.history), "trained"))
            notify(
                "info",
                "Training stopped because you chose another model, which stays your active model. "
                + (
                    "The run had finished: Train loads it at once."
                    if complete
                    else f"The unfinished run ({len(self.history)} of {self.config.epochs} epochs) was discarded."
                ),
            )
            return
        if not self.history:
            notify("info", "Training stopped before the first epoch finished; your previous model is kept.")
            return
        if len(self.history) == self.config.epochs:  # interrupted after the last epoch: it is complete
            self._publish()
            return
        # A copy, so the kept model is never shared with a training thread that might still run.
        set_active(TrainedModel(copy.deepcopy(self.model), self.config, tuple(self.history), "stopped"))
        last = self.history[-1]
        notify(
            "warning",
            f"Training stopped during epoch {last.epoch + 1} of {last.epochs}. Your model keeps what it "
            f"has learnt (validation accuracy {last.val_acc:.1%} after epoch {last.epoch}) and is now "
            "the active model.",
        )


def start_training(config: Config) -> tuple[TrainingRun, TrainingRun | None]:
    """(run, None): a fresh model for `config`, registered in the session before the first epoch
    runs and in the server's trainings in flight; or (run, other) when another session is already
    training exactly this config: then wait for `other` (see `wait_for`) instead of training."""
    run = TrainingRun(config)
    run.replaces = st.session_state.get("active")
    other = resources.trainings_in_flight().claim(config, run)
    if other is None:
        st.session_state[RUN_KEY] = run
    return run, other


def end_training(run: TrainingRun) -> None:
    """The training loop is over (finished, failed or interrupted): let waiting sessions go on."""
    run.left_loop.set()
    resources.trainings_in_flight().release(run.config, run)


def adopt_shared(other: TrainingRun) -> None:
    """Another session's run with our exact settings has ended: use its model if it finished."""
    trained = resources.registry().get(other.config)
    if trained is not None:
        set_active(trained)
        notify(
            "success",
            f"Another student trained exactly these settings at the same time, so you share their "
            f"model (validation accuracy {trained.history[-1].val_acc:.1%}). It is now your active "
            "model.",
        )
    else:
        notify(
            "info",
            "The other student's run with these settings stopped before the end, so there is no model "
            "to share. Press **Train** to train these settings yourself.",
        )


@dataclass(frozen=True)
class Progress:
    """What the Train page draws while a run goes on."""

    history: tuple[EpochMetrics, ...]  # the epochs finished so far
    epochs: int  # planned
    text: str  # one line for the progress bar

    @property
    def fraction(self) -> float:
        return self.history[-1].epoch / self.epochs if self.history else 0.0


def progress_text(m: EpochMetrics) -> str:
    left = m.seconds / m.epoch * (m.epochs - m.epoch)
    return (
        f"Epoch {m.epoch} / {m.epochs} · validation accuracy {m.val_acc:.1%} · "
        f"{m.seconds:.0f} s elapsed, about {left:.0f} s left"
    )


def describe_existing(existing: TrainedModel) -> str:
    """What pressing Train will do for settings the server already has a model for."""
    if st.session_state.get("active") is existing:
        what = "Your active model was trained with exactly these settings, so **Train** keeps it."
    elif existing.origin == "grid":
        what = (
            "These settings are one of the 15 precomputed checkpoints (threshold × weight decay, everything else "
            "at the paper's values), so **Train** loads it at once."
        )
    else:
        what = "These exact settings were already trained on this server, so **Train** loads that model at once."
    return what + " **Train again anyway** trains it from scratch, to watch it learn (the same model comes out)."


def train_or_load(config: Config, again: bool = False, poll_seconds: float = 0.5) -> Iterator[Progress]:
    """Press Train: give this student the model for `config`, yielding progress to draw.

    - Already on the server (a precomputed checkpoint, or trained before): made active at once,
      nothing to draw; unless `again`, which trains it anyway (deterministic: the same model).
    - Being trained right now by another student: follow that run, a Progress every `poll_seconds`
      (so a Stop click, which interrupts at the page's next st call, is seen), then share its model.
    - Otherwise: train here, a Progress per epoch. The run sits in st.session_state before its first
      epoch, so a Stop (or leaving the page) keeps what it learnt (TrainingRun.keep_interrupted).

    The messages for the next render are queued with ui.state.notify; the page reruns afterwards.
    """
    existing = None if again else resources.registry().get(config)  # finds the precomputed grid models too
    if existing is not None:
        set_active(existing)
        notify(
            "success",
            "Loaded the precomputed checkpoint for these settings."
            if existing.origin == "grid"
            else "Loaded the model trained earlier with exactly these settings.",
        )
        return
    run, other = start_training(config)
    if other is not None:  # another student is training exactly these settings: follow their run
        while not other.left_loop.wait(poll_seconds):
            history = tuple(other.history)
            yield Progress(
                history,
                config.epochs,
                "Another student is training exactly these settings right now: "
                f"epoch {len(history)} / {config.epochs}. Their model becomes yours when it finishes.",
            )
        adopt_shared(other)
        return
    try:
        for metrics in train(run.model, resources.splits(config), config, should_stop=run.stop_requested.is_set):
            run.history.append(metrics)
            yield Progress(tuple(run.history), config.epochs, progress_text(metrics))
        run.finish()
    except TrainingDiverged as error:
        run.fail(str(error))
    finally:  # also when the page's script run is interrupted (the generator is closed)
        end_training(run)


def file_stem(trained: TrainedModel) -> str:
    """A download's file name (without extension) that says what the model was trained with: a run
    stopped after 4 of 40 epochs says 4ep (the figures' downloads use the same, ui.figures.file_stem)."""
    return figures.file_stem(trained.config, trained.epochs_done)


def history_csv(trained: TrainedModel) -> str:
    """The per-epoch metrics as CSV text."""
    return pd.DataFrame([m.to_dict() for m in trained.history]).to_csv(index=False)


def checkpoint_bytes(trained: TrainedModel) -> bytes:
    """The model with its config and history as a .safetensors file."""
    return save_checkpoint(trained.model, trained.config, list(trained.history))


def load_upload(key: str) -> None:
    """file_uploader callback: validate an uploaded checkpoint and make it the active model."""
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        model, config, history = load_checkpoint(upload.getvalue())
    except CheckpointError as e:
        notify("error", f"Could not load {literal(upload.name)}: {e}. Your current model is kept.")
        return
    except Exception as e:  # a bug or an unforeseen file: still a message, never a traceback
        log.exception("loading the uploaded checkpoint %s failed", upload.name)
        notify(
            "error",
            f"Could not load {literal(upload.name)} ({type(e).__name__}: {literal(str(e), 120)}). "
            "Your current model is kept.",
        )
        return
    set_active(TrainedModel(model, config, tuple(history), "uploaded"))
    notify("success", f"Loaded {literal(upload.name)}: it is now your active model, on every page.")
