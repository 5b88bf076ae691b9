"""The student's active model, and the training run that may replace it (st.session_state).

The active model starts as the shipped checkpoint, so the Tensor and Eigenvectors pages work at
once. A training run lives in st.session_state *before* its first epoch, so when the script run is
interrupted (Stop, or leaving the page) the next run finds it and keeps what it has learnt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.config import Config
from core.model import BilinearMLP
from core.train import EpochMetrics, new_model
from ui import resources
from ui.resources import TrainedModel
from ui.state import notify


def active() -> TrainedModel:
    """The model the Tensor and Eigenvectors pages show (default: the shipped checkpoint)."""
    if "active" not in st.session_state:
        st.session_state.active = resources.seed_model()
    return st.session_state.active


def set_active(trained: TrainedModel) -> None:
    st.session_state.active = trained


@dataclass
class TrainingRun:
    """A model being trained by this session: owned by it alone until it is finished."""
    model: BilinearMLP
    config: Config
    history: list[EpochMetrics] = field(default_factory=list)

    def finish(self) -> TrainedModel:
        """Publish the finished model to the server-wide registry and make it the active model."""
        trained = resources.registry().add(TrainedModel(self.model, self.config, tuple(self.history), "trained"))
        set_active(trained)
        return trained

    def keep_interrupted(self) -> None:
        """The run was stopped: keep the epochs it finished as the student's (unshared) model."""
        if not self.history:
            notify("info", "Training stopped before the first epoch finished; your previous model is kept.")
            return
        set_active(TrainedModel(self.model, self.config, tuple(self.history), "stopped"))
        last = self.history[-1]
        notify("warning", f"Training stopped after epoch {last.epoch} of {last.epochs}. Your model keeps what it "
                          f"learnt so far (validation accuracy {last.val_acc:.1%}) and is now the active model.")


def start_training(config: Config) -> TrainingRun:
    """A fresh model for `config`, registered in the session before the first epoch runs."""
    run = TrainingRun(new_model(config), config)
    st.session_state.training = run
    return run


def end_training() -> None:
    """Forget the running training (it finished, or failed and is discarded)."""
    st.session_state.pop("training", None)


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
        notify("error", f"Could not load {upload.name}: {e}")
        return
    set_active(TrainedModel(model, config, tuple(history), "uploaded"))
    notify("success", f"Loaded {upload.name}: it is now your active model.")
