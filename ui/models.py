"""The student's active model, and the training job that may replace it (st.session_state).

The active model starts as the shipped checkpoint, so the Tensor and Eigenvectors pages work at
once. Pressing Train hands the Config to the server's training pool (server.jobs): the run belongs to
the server, so the student can look at other pages (the sidebar shows its progress) or reload
(the URL's `training=<id>` reattaches) while it trains; `settle`, called on every script run, makes
its model active when it ends. Every active model has an id (ui.resources) that ui.links puts in
the URL: a reload, which starts a new session, finds the model again with `restore`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.checkpoint import CheckpointError, load_checkpoint, load_snapshots, save_checkpoint
from core.config import Config
from core.grid import grid_config, is_on_grid
from core.identity import TrainedModel, config_id
from core.snapshot import Snapshot
from core.text import literal
from core.train import EpochMetrics
from render import figures
from server.jobs import OneRunEach, TooLong, TrainingJob, duration, seconds_left
from server.sessions import browser_key as browser_key_of
from ui import resources
from ui.state import JOB_KEY, TOKEN_KEY, Unavailable, config_from_widgets, notify, quick_config, training_widgets

log = logging.getLogger("bilinear_eigen_lab")
REJECTED_KEY = "_uploads_rejected"  # not a widget: how many files the sidebar uploader refused
MISSING_KEY = "_missing_model"  # not a widget: a linked model id the server lacks but the link's settings train


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


def active_or_none() -> TrainedModel | None:
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
    resources.sessions().using(session_token(), trained.model_id)  # in use: the stores keep it


def restore(model_id: str) -> bool:
    """A new session opened with `model=<id>` in its URL: make that model active if the server has it.

    If not, and the link's settings (restored before this) train to exactly that id, offer to retrain it
    (`retrain_offer`): training is deterministic per Config, so the same model comes back.
    """
    found = resources.find_model(model_id)
    if found is None:
        offer = _settings_that_train(model_id)
        if offer is not None:
            st.session_state[MISSING_KEY] = model_id
            notify(
                "warning",
                f"The model {literal('model=' + model_id)} is not on this server any more (it restarted, or dropped "
                "the model to make room). The link's settings are back, and they train exactly that model: press "
                f"**Retrain it** in the sidebar (about {estimate(offer):.0f} s). Showing the pretrained model "
                "meanwhile.",
            )
            return False
        notify(
            "warning",
            f"This server has no model {literal('model=' + model_id)}: the link may be mistyped or from another "
            "server, or the server restarted or dropped the model to make room. Showing the pretrained model "
            "instead; load your .safetensors file from the sidebar, or train it again, to get it back.",
        )
        return False
    st.session_state.active = found
    resources.sessions().using(session_token(), found.model_id)
    if found.origin in ("trained", "stopped"):  # the student's own run: its settings back on the Train page
        st.session_state.update(training_widgets(found.config))
    return True


def _settings_that_train(model_id: str) -> Config | None:
    try:
        config = config_from_widgets()
    except ValueError:
        return None
    return config if config_id(config) == model_id else None


def estimate(config: Config) -> float:
    """Seconds `config` takes to train alone on this server (from what it has measured so far)."""
    return resources.training_pool().estimate(config)


def too_long(config: Config) -> TooLong | None:
    """Why `config` is past the server's cap on one run (with the nearest settings that fit), or None."""
    try:
        resources.training_pool().check(config)
    except TooLong as refusal:
        return refusal
    return None


def describe_change(old: Config, new: Config) -> str:
    """What `new` changes of `old`, in the Train page's words: '3 epochs', 'batch 64', 'a 9,000-image slice'."""
    if new.epochs != old.epochs and new.replace(epochs=old.epochs) == old:
        return f"{new.epochs} epoch{'s' if new.epochs > 1 else ''}"
    if new.batch_size != old.batch_size and new.replace(batch_size=old.batch_size) == old:
        return f"batch {new.batch_size}"
    if new.d_hidden != old.d_hidden and new.replace(d_hidden=old.d_hidden) == old:
        return f"width {new.d_hidden}"
    if new.n_train != old.n_train and new.replace(n_train=old.n_train, n_test=old.n_test) == old:
        return f"a {new.n_train:,}-image slice"
    return "the quick preset"


def refusal_text(refusal: TooLong) -> str:
    """The cap's message, with the nearest settings that fit and how long each takes."""
    options = ", or ".join(
        f"{describe_change(refusal.config, c)} (about {duration(estimate(c))})" for c in refusal.nearest
    )
    return f"These settings can't be trained: {refusal}. Nearest settings that fit: {options}."


def retrain_offer() -> Config | None:
    """The settings of a linked model that is gone, while they still describe it and nothing replaced it."""
    missing = st.session_state.get(MISSING_KEY)
    if missing is None or followed() is not None:
        return None
    active_model = active_or_none()
    config = _settings_that_train(missing)
    if config is None or (active_model is not None and active_model.model_id == missing):
        st.session_state.pop(MISSING_KEY, None)
        return None
    return config


def retrain() -> None:
    """The sidebar's Retrain button: train the gone model's settings again (server.jobs)."""
    config = retrain_offer()
    st.session_state.pop(MISSING_KEY, None)
    if config is not None:
        train_or_load(config)


OWN = ("trained", "stopped", "uploaded")  # the origins of a student's own model


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
    previous = ss.get("active")
    set_active(trained)
    left = leave_for_another_model()
    own = previous is not None and previous.origin in OWN and previous.model_id != trained.model_id
    if own or left:
        instead = f" It replaces your {previous.origin} model `{previous.model_id}` on every page." if own else ""
        notify("info", f"The precomputed model is now your active model.{instead}{left}")


def grid_point(trained: TrainedModel) -> tuple[float, float] | None:
    """(threshold, weight decay) if the model is one of the precomputed grid models, else None."""
    config = trained.config
    if trained.origin in ("uploaded", "stopped") or not is_on_grid(config):  # same config, other weights
        return None
    snapped = grid_config(config.threshold, config.weight_decay)
    return snapped.threshold, snapped.weight_decay


def session_token() -> str:
    """This session's anonymous token: how the training pool knows who follows a job (and, through
    server.sessions, whether that session's tab is still open)."""
    token = st.session_state.get(TOKEN_KEY)
    if token is None:
        token = st.session_state[TOKEN_KEY] = uuid.uuid4().hex
    ctx = get_script_run_ctx()
    resources.sessions().seen(token, ctx.session_id if ctx is not None else None, browser_key())
    return token


def browser_key() -> str | None:
    """This browser's anonymous key (server.sessions.browser_key of its XSRF cookie), the same in all its tabs
    and after a reload; None without one (AppTest, or XSRF protection off)."""
    try:
        return browser_key_of(st.context.cookies.get("_streamlit_xsrf"))
    except Exception:  # no browser (AppTest, a bare script run)
        return None


def followed() -> TrainingJob | None:
    """The training job this session follows (queued or running on the server), if any."""
    return st.session_state.get(JOB_KEY)


def _leave(job: TrainingJob) -> None:
    resources.training_pool().leave(job, session_token())
    if st.session_state.get(JOB_KEY) is job:
        del st.session_state[JOB_KEY]


def leave_for_another_model() -> str:
    """The student chose another model (an upload, a grid point) while following a run: one outcome,
    the chosen model; the sentence to add to that choice's message ('' when nothing was followed)."""
    job = followed()
    if job is None:
        return ""
    _leave(job)
    return " You no longer follow the training run you started (it stops unless another student follows it)."


def train_or_load(config: Config, again: bool = False) -> None:
    """Press Train: give this student the model for `config`.

    - Already on the server (a precomputed checkpoint, or trained before): made active at once;
      unless `again`, which trains it anyway (deterministic: the same model comes out).
    - Otherwise the server's training pool trains it (or this session joins the job already
      training exactly `config`); `settle` makes the model active when the job ends, on whatever
      page the student is then.
    """
    existing = None if again else resources.registry().get(config)  # finds the precomputed grid models too
    previous = followed()
    if existing is not None:
        if previous is not None:
            _leave(previous)
        if existing.history and st.session_state.get("active") is not existing:  # its curves, replayed
            st.session_state[REPLAY_KEY] = (existing.model_id, time.monotonic())
        set_active(existing)
        notify(
            "success",
            "Loaded the precomputed checkpoint for these settings."
            if existing.origin == "grid"
            else "Loaded the model trained earlier with exactly these settings.",
        )
        return
    pool = resources.training_pool()
    running = next((j for j in pool.in_flight() if j.config == config), None)  # joining it costs nothing more
    refusal = too_long(config) if running is None else None
    if refusal is not None:  # the page disables Train past the cap: a forged click, or the cap just changed
        notify("error", refusal_text(refusal) + " Your current model is kept.")
        return
    st.session_state.pop(REPLAY_KEY, None)  # a real run draws its own curves, live
    if previous is not None and previous is not running:  # one run per student: the new one replaces it
        _leave(previous)
    try:
        job = pool.submit(config, resources.splits(config), session_token())
    except TooLong as refusal:  # the cap changed between the check and the submit
        notify("error", refusal_text(refusal) + " Your current model is kept.")
        return
    except OneRunEach as refusal:  # this session still follows a run in flight (a race with its own Stop)
        notify("error", f"Not started: {refusal}. Your current model is kept.")
        return
    st.session_state[JOB_KEY] = job


REPLAY_KEY = "_replay"  # (model id, monotonic start): the curves of a model someone trained before, replayed once
REPLAY_SECONDS = 4.0  # a replay's length, whatever the run's


def replayed_epochs(trained: TrainedModel) -> int | None:
    """How many of the model's epochs its replay shows now (a student who pressed Train for settings the server
    already had sees the run's curves drawn as if it trained); None when no replay of it is running."""
    kept = st.session_state.get(REPLAY_KEY)
    if kept is None or kept[0] != trained.model_id:
        return None
    n = len(trained.history)
    shown = 1 + int((time.monotonic() - kept[1]) / REPLAY_SECONDS * n)
    if shown >= n:
        del st.session_state[REPLAY_KEY]
        return None
    return shown


def train_quick() -> None:
    """The Train button at the default settings: the quick preset with the student's labels (the Train page's
    settings then show the preset, so they describe the run)."""
    config = quick_config()
    st.session_state.update(training_widgets(config))
    train_or_load(config)


def follow(job: TrainingJob) -> bool:
    """Follow a job in flight (a reloaded page reattaching to its run); False if it has ended."""
    if not resources.training_pool().follow(job, session_token()):
        return False
    st.session_state[JOB_KEY] = job
    return True


def reattach(job_id: str) -> bool:
    """A reload (or a link) with `training=<id>`: follow that run again, or take the model it became.

    The run's settings come back on the Train page; False (with a message) if the server has neither.
    """
    job = next((j for j in resources.training_pool().in_flight() if config_id(j.config) == job_id), None)
    if job is not None and follow(job):
        st.session_state.update(training_widgets(job.config))
        return True
    trained = resources.registry().by_id(job_id)  # a finished run's id is its model's id
    if trained is not None:
        set_active(trained)
        st.session_state.update(training_widgets(trained.config))
        notify("success", "Your training run finished while the page was away: it is now your active model.")
        return True
    notify(
        "warning",
        f"The training run {literal('training=' + job_id)} is no longer on this server (it stopped, or the server "
        "restarted). Your settings are back on the Train page: press Train to train them again.",
    )
    return False


def stop() -> None:
    """Stop button: stop following; keep the model as it was after the last finished epoch."""
    job = followed()
    if job is None:
        return
    _leave(job)
    kept = job.model_so_far(trained_by=session_token())  # on the class board under the name of who stopped it
    if kept is None:
        notify("info", "Training stopped before the first epoch finished; your previous model is kept.")
        return
    if kept.origin == "trained":  # stopped after the last epoch: it is the complete model
        set_active(resources.registry().add(kept))
        notify("success", f"Training finished: validation accuracy {kept.history[-1].val_acc:.1%}.")
        return
    set_active(kept)
    last = kept.history[-1]
    notify(
        "warning",
        f"Training stopped after epoch {last.epoch} of {last.epochs}. Your model is the one at the end of that "
        f"epoch (validation accuracy {last.val_acc:.1%}) and is now the active model.",
    )


def settle() -> bool:
    """If the followed job has ended, act on its outcome (new active model, or a message); True then."""
    job = followed()
    if job is None or not job.done.is_set():
        return False
    del st.session_state[JOB_KEY]
    if job.state == "finished" and job.result is not None:
        set_active(job.result)
        notify(
            "success",
            f"Training finished: validation accuracy {job.result.history[-1].val_acc:.1%}. This is now "
            "your active model; see what it learnt in steps 3 and 4.",
        )
    elif job.state == "failed":
        notify("error", f"{job.error} Your previous model is kept.")
    elif job.cancelled:  # the teacher, or the server, stopped it for everyone
        notify("info", f"The training run stopped before the end ({job.cancelled}); your previous model is kept.")
    else:  # stopped by everyone else who followed it, before this session noticed
        notify("info", "The training run stopped before the end; your previous model is kept.")
    return True


@dataclass(frozen=True)
class Progress:
    """What the Train page and the sidebar badge draw while the followed job goes on."""

    history: tuple[EpochMetrics, ...]  # the epochs finished so far
    epochs: int  # planned
    snapshots: tuple[Snapshot, ...]  # the verdict's top eigenvector so far (core.snapshot), taken by the job
    text: str  # one line for the progress bar
    queued: bool

    @property
    def fraction(self) -> float:
        return self.history[-1].epoch / self.epochs if self.history else 0.0


def progress(job: TrainingJob) -> Progress:
    """The followed job's state in words: its queue position, or its epoch and accuracy."""
    pool = resources.training_pool()
    history, epochs, snapshots = job.history, job.config.epochs, job.snapshots
    if job.state == "queued":
        running, queued = pool.status()
        lane = (
            " A long run like yours leaves the last trainer to short runs, so one student's long runs never "
            "hold up the class."
            if pool.is_long(job) and running < pool.workers
            else ""
        )
        text = (
            f"Waiting for a free trainer: {running} run(s) are training on this server's {pool.workers} core(s); "
            f"yours is number {pool.position(job)} of {queued} in the queue and starts in about "
            f"{duration(pool.seconds_to_start(job))}.{lane}"
        )
        return Progress(history, epochs, snapshots, text, queued=True)
    others = len(job.followers) - 1  # a snapshot: another session may join or leave meanwhile
    shared = f" · shared with {others} other student{'s' if others > 1 else ''}" if others > 0 else ""
    if job.elsewhere:  # server.jobs: another server of the class trains these settings; this one follows it
        shared += " · training on another server of the class"
    if not history:
        return Progress(history, epochs, snapshots, f"Epoch 1 / {epochs} is running…{shared}", queued=False)
    return Progress(history, epochs, snapshots, progress_text(history[-1]) + shared, queued=False)


def progress_text(m: EpochMetrics) -> str:
    left = seconds_left((m,))  # from the run's own epochs, as the queue's estimates (server.jobs)
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


def file_stem(trained: TrainedModel) -> str:
    """A download's file name (without extension) that says what the model was trained with: a run
    stopped after 4 of 40 epochs says 4ep (the figures' downloads use the same, render.figures.file_stem)."""
    return figures.file_stem(trained.config, trained.epochs_done)


def history_csv(trained: TrainedModel) -> str:
    """The per-epoch metrics as CSV text."""
    return pd.DataFrame([m.to_dict() for m in trained.history]).to_csv(index=False)


def checkpoint_bytes(trained: TrainedModel) -> bytes:
    """The model with its config and history as a .safetensors file."""
    return save_checkpoint(trained.model, trained.config, list(trained.history), trained.snapshots)


def upload_key() -> str:
    """The sidebar uploader's key: "upload", then a new one after each rejected file (an empty field)."""
    rejected = st.session_state.get(REJECTED_KEY, 0)
    return "upload" if rejected == 0 else f"upload-{rejected}"


def load_upload(key: str) -> None:
    """file_uploader callback: validate an uploaded checkpoint and make it the active model."""
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        model, config, history = load_checkpoint(upload.getvalue())
        snapshots = load_snapshots(upload.getvalue(), config)
    except CheckpointError as e:
        st.session_state[REJECTED_KEY] = st.session_state.get(REJECTED_KEY, 0) + 1
        notify("error", f"Could not load {literal(upload.name)}: {e}. Your current model is kept.")
        return
    except Exception as e:  # a bug or an unforeseen file: still a message, never a traceback
        st.session_state[REJECTED_KEY] = st.session_state.get(REJECTED_KEY, 0) + 1
        log.exception("loading the uploaded checkpoint %s failed", upload.name)
        notify(
            "error",
            f"Could not load {literal(upload.name)} ({type(e).__name__}: {literal(str(e), 120)}). "
            "Your current model is kept.",
        )
        return
    set_active(TrainedModel(model, config, tuple(history), "uploaded", snapshots=snapshots))
    left = leave_for_another_model()
    notify("success", f"Loaded {literal(upload.name)}: it is now your active model, on every page.{left}")
