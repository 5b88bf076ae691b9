"""What every session on the server shares, built once with st.cache_resource.

st.cache_resource hands every caller the *same* object, so whatever these functions return is
read-only: never train, modify or move a model obtained here (train a fresh one instead). The
model stores themselves are server.registry; the caches here are what a page asks for by model id.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import streamlit as st
import torch
from sqlalchemy.exc import SQLAlchemyError
from streamlit.runtime import Runtime

from core import findings
from core.board import nickname
from core.checkpoint import CheckpointError, load_checkpoint
from core.config import Config
from core.data import MNIST, MNISTError, load_mnist
from core.eigen import Eigen, TopEigenvector, View, decompose, top_eigenvector
from core.explain import misclassified_indices
from core.findings import BiasPair, DecayRow, verdict_view
from core.grid import GRID_WEIGHT_DECAYS, grid_checkpoint, grid_config, grid_points, is_on_grid
from core.identity import TrainedModel, config_id
from core.labels import Splits, TargetSimilarities, labels_for, make_splits, target_similarities
from core.spectrum import concentration_of
from core.store import ModelStore, default_local_url, default_store_url, open_store
from core.tensor import Direction
from core.train import EpochMetrics, train
from core.truncation import TruncationCurves, truncation_curves
from render.figures import ExportCache, Figure, Settings, heatmap_png
from server import memory
from server.budget import BytesLRU
from server.jobs import DEFAULT_MAX_SECONDS, NICE, TrainingPool
from server.registry import Bounds, ModelRegistry, ModelSlots
from server.room import Room, default_url
from server.sessions import Sessions
from ui.state import Unavailable

SEED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "seed-default.safetensors"
log = logging.getLogger("bilinear_eigen_lab")


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
def model_store() -> ModelStore:
    """Where trained models outlive a restart: BILINEAR_LAB_MODEL_STORE (any fsspec URL), else a local cache
    directory (core.store.default_store_url); at most BILINEAR_LAB_MODEL_STORE_MB megabytes (default 512).
    A URL whose backend is missing falls back to the local directory, with a notice (core.store.open_store)."""
    url = default_store_url()
    log.info("models are stored in %s", url)
    return open_store(url, max_bytes=int(os.environ.get("BILINEAR_LAB_MODEL_STORE_MB", "512")) * 2**20)


def room_url() -> str:
    """The room's database: BILINEAR_LAB_ROOM_URL, else st.secrets' [connections.room] url (st.connection's
    layout), else a SQLite file in the local model store's directory."""
    try:
        secret = st.secrets.get("connections", {}).get("room", {}).get("url")
    except (FileNotFoundError, KeyError, AttributeError):  # no secrets file at all
        secret = None
    if secret and not os.environ.get("BILINEAR_LAB_ROOM_URL", "").strip():
        return str(secret)
    store = model_store()
    return default_url(store.root if store.local else default_local_url())


@st.cache_resource
def room() -> Room:
    """The room's state for every replica (server.room): models trained, pin, cleared, answers, votes, claims."""
    try:
        url = room_url()
        shared = Room(url)
    except (SQLAlchemyError, OSError, ValueError, ImportError) as error:  # a mistyped URL, a missing driver
        log.error("the room's database cannot be used (%s: %s): the room lives in memory", type(error).__name__, error)
        shared = Room("sqlite://")  # in this process's memory
        shared.fallback = (
            f"The class room's database cannot be used ({type(error).__name__}): pins, votes and the list of the "
            "class's models live in this server's memory only. They do not reach the class's other servers and "
            "will not survive a restart."
        )
    return shared


def _listed_in_room(trained: TrainedModel) -> None:
    """A model trained here (to the end, or stopped): the room lists it for every replica's board."""
    room().record_model(trained.model_id, trained.origin, trained.config.to_dict(), nickname(trained.trained_by))


def _tab_open(session_id: str) -> bool:
    """Whether a Streamlit session still has its websocket (False within a moment of its tab closing)."""
    return not Runtime.exists() or Runtime.instance().is_active_session(session_id)


@st.cache_resource
def sessions() -> Sessions:
    """Which sessions' tabs are open and which model each shows (server.sessions), one per server."""
    return Sessions(_tab_open)


@st.cache_resource
def bounds() -> Bounds:
    """What the model stores keep (server.eviction): BILINEAR_LAB_MODELS_PER_STUDENT models per browser (all its
    tabs and reloads), never one in use nor the teacher's pin (the room's, server.room)."""
    return Bounds(
        sessions().in_use,
        lambda: {room().state().pinned} - {None},
        per_owner=int(os.environ.get("BILINEAR_LAB_MODELS_PER_STUDENT", "3")),
        owner=sessions().owner,  # per browser: a reload or another tab is the same student
    )


@st.cache_resource
def registry() -> ModelRegistry:
    """The server-wide registry of trained models: the shipped checkpoint, and the precomputed grid
    (loaded on first request, so a grid slider or an on-grid Train click is instant)."""
    lazy_ids = {config_id(grid_config(t, wd)): grid_config(t, wd) for t, wd in grid_points()}
    return ModelRegistry(
        seed_model_or_none(),
        loader=load_grid_model,
        lazy_ids=lazy_ids,
        store=model_store(),
        on_new=_listed_in_room,
        bounds=bounds(),
    )


def default_max_run_seconds() -> float:
    """The server's cap on one run's estimated seconds while the teacher has set none: BILINEAR_LAB_MAX_RUN_SECONDS,
    else server.jobs.DEFAULT_MAX_SECONDS."""
    return float(os.environ.get("BILINEAR_LAB_MAX_RUN_SECONDS", str(DEFAULT_MAX_SECONDS)))


def max_run_seconds() -> float:
    """The cap on one run's estimated seconds now: the teacher's, from the room every replica shares (read at
    most once a second per process, server.room), else the server's default."""
    cap = room().state().max_run_seconds
    return default_max_run_seconds() if cap is None else cap


@st.cache_resource
def training_pool() -> TrainingPool:
    """The server's trainings: at most one per core at once (BILINEAR_LAB_TRAINING_WORKERS), the rest queued
    fairly; a lone training uses every core (BILINEAR_LAB_TRAINING_THREADS_ALONE); a run's estimate at most
    the teacher's cap, set on the board and kept in the room (`max_run_seconds`); a run whose tabs all closed stops."""
    workers = int(os.environ.get("BILINEAR_LAB_TRAINING_WORKERS", "0")) or None
    nice = int(os.environ.get("BILINEAR_LAB_TRAINING_NICE", str(NICE)))
    threads_alone = int(os.environ.get("BILINEAR_LAB_TRAINING_THREADS_ALONE", "0")) or None
    return TrainingPool(
        train,
        registry().add,
        workers=workers,
        nice=nice,
        threads_alone=threads_alone,
        claims=room(),  # replicas sharing the room never train the same settings twice
        fetch=lambda config: registry().get(config, fresh=True),  # what another replica finished, from the store
        target=lambda config: mnist().train_x[config.target_index],  # each run's live eigenvector (core.snapshot)
        max_seconds=max_run_seconds,  # the room's: a change on one replica's board reaches every replica
        connected=sessions().connected,
        owner=sessions().owner,
        after_run=memory.Reclaimer(),  # each run's freed memory back to the system (issue 25's flood)
    )


@st.cache_resource
def slots() -> ModelSlots:
    """The server-wide store of stopped runs and uploaded models, by id."""
    return ModelSlots(store=model_store(), on_new=_listed_in_room, bounds=bounds())


def find_model(model_id: str) -> TrainedModel | None:
    """The model a link's `model=<id>` names, if the server still has it."""
    return registry().by_id(model_id) or slots().get(model_id)


def outages() -> list[str]:
    """What the page must say now: the model store or the room's database is unreachable (or replaced)."""
    return [problem for problem in (model_store().problem, room().fallback or room().problem) if problem]


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


@st.cache_resource(max_entries=64, show_spinner="Comparing every image with the target…")
def similarities(target_index: int) -> TargetSimilarities:
    """Cosine similarities of all train and test images with training image `target_index` (~1 MB)."""
    return target_similarities(mnist(), target_index)


def labels(config: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) 0/1 labels for the whole of MNIST under the config's labelling rule."""
    return labels_for(similarities(config.target_index), config)


def splits(config: Config) -> Splits:
    """What core.train consumes for `config`, from the shared similarities."""
    return make_splits(mnist(), config, similarities(config.target_index))


def random_index_of_digit(digit: int) -> int:
    """A random training image showing `digit`."""
    return random.choice((mnist().train_y == digit).nonzero().flatten().tolist())  # not torch's global RNG


def first_with_label(labels: torch.Tensor, value: int, n: int) -> list[int]:
    """Indices of the first n images carrying label `value`."""
    return (labels == value).nonzero().flatten()[:n].tolist()


# --- per model (by id): the leading-underscore argument is not hashed, the id stands for it ------


@st.cache_resource(max_entries=32, show_spinner="Finding the test images this model gets wrong…")
def misclassified(model_id: str, _trained: TrainedModel) -> tuple[int, ...]:
    """Indices of the test images the model misclassifies, under its own labels."""
    return tuple(misclassified_indices(_trained.model, mnist().test_x, labels(_trained.config)[1]).tolist())


@st.cache_resource(max_entries=32, show_spinner="Truncating every interaction matrix, for every k…")
def truncation(model_id: str, _trained: TrainedModel) -> TruncationCurves:
    """Accuracy on all 10 000 test images with only the top-k eigenvectors kept (thresholds refit on the
    model's training images)."""
    config = _trained.config
    train_y, test_y = labels(config)
    train = (mnist().train_x[: config.n_train], train_y[: config.n_train])  # the model's own training images
    return truncation_curves(_trained.model, mnist().test_x, test_y, train=train)


@st.cache_resource
def eigen_cache() -> BytesLRU[Eigen]:
    """The server's eigendecompositions, least recently used dropped past BILINEAR_LAB_EIGEN_CACHE_MB (default
    128): 0.4 MB each at H = 64, 23 MB at H = 1024, so a count of entries bounds nothing (server.budget). 128 MB
    holds a class's 30 models at H = 64 in all four views (48 MB) or one H = 1024 model's four (92 MB); at 256 MB
    the cache was a fifth of the server's memory at the peak of issue 25's flood."""
    return BytesLRU(int(os.environ.get("BILINEAR_LAB_EIGEN_CACHE_MB", "128")) * 2**20, lambda e: e.n_bytes)


def eigen(model_id: str, _trained: TrainedModel, direction: Direction, view: View) -> Eigen:
    """core.eigen.decompose, once per model, direction and view for the whole server (within a byte budget)."""
    return eigen_cache().get((model_id, direction, view), lambda: decompose(_trained.model, direction, view))


def digit_of(index: int) -> int | None:
    """The digit MNIST training image `index` shows (None where MNIST is missing on this server)."""
    try:
        return int(mnist().train_y[index])
    except (Unavailable, IndexError):
        return None


def settings(
    model: TrainedModel | Config, history: tuple[EpochMetrics, ...] | None = None, varying: tuple[str, ...] = ()
) -> Settings:
    """What an exported figure says produced it (render.figures.Settings): a trained model's settings and
    history, or a Config (with `history` None: labels only), and the target's digit, read from MNIST."""
    if isinstance(model, TrainedModel):
        model, history = model.config, model.history
    return Settings(model, history, varying, digit=digit_of(model.target_index))


def top(trained: TrainedModel, direction: Direction, view: View) -> TopEigenvector:
    """The direction's top eigenvector as an image, with its |cos| to the model's target."""
    return top_eigenvector(
        eigen(trained.model_id, trained, direction, view), mnist().train_x[trained.config.target_index]
    )


def decay_row(trained: TrainedModel) -> DecayRow:
    """The model's row of the weight-decay comparison (core.findings.decay_row), from the cached decompositions."""
    return findings.decay_row(
        eigen(trained.model_id, trained, "true_minus_false", "augmented"),
        eigen(trained.model_id, trained, "true_minus_false", "bias_free"),
        mnist().train_x[trained.config.target_index],
        trained.config.weight_decay,
        trained.history[-1].val_acc if trained.history else float("nan"),
    )


def grid_decay_rows(threshold: float) -> list[DecayRow]:
    """The weight-decay rows of the precomputed models at this threshold that this server has."""
    rows = []
    for weight_decay in GRID_WEIGHT_DECAYS:
        grid_trained = registry().get(grid_config(threshold, weight_decay))
        if grid_trained is not None:
            rows.append(decay_row(grid_trained))
    return rows


def bias_pair(trained: TrainedModel, direction: Direction) -> BiasPair | None:
    """core.findings.bias_pair of the direction (None where the biases do not couple: b = 0)."""
    augmented = eigen(trained.model_id, trained, direction, "augmented")
    if float(augmented.bias_vector.norm()) == 0:
        return None
    return findings.bias_pair(
        augmented,
        eigen(trained.model_id, trained, direction, "bias_free"),
        mnist().train_x[trained.config.target_index],
    )


@st.cache_resource(max_entries=256, show_spinner=False)
def board_top(model_id: str, _trained: TrainedModel) -> tuple[TopEigenvector, float]:
    """The class board's numbers for a model: the top eigenvector of the verdict's matrix (core.findings.verdict_view:
    the bias-free True − False block, what the Eigenvectors page leads with) with its |cos|, and that eigenvalue's
    share of Σλ² (core.spectrum);
    once per model for the whole server (every session's board asks every few seconds; ~6 KB each).

    Kept apart from `eigen` (128 entries, every page's views): a board of a class's models and the grid
    must not push out, and then recompute, a decomposition a board shows.
    """
    matrix = decompose(_trained.model, *verdict_view())
    return top_eigenvector(matrix, mnist().train_x[_trained.config.target_index]), concentration_of(
        matrix
    ).top_energy_share


@st.cache_resource(max_entries=64, show_spinner=False)
def heatmap(model_id: str, name: str, scale: int, _figure: Figure) -> bytes:
    """render.figures.heatmap_png of a model's matrix figure (`name`, as W_l_augmented or B_true, names the
    matrix of that model), drawn once for the whole server: a rerun or another student sends the same bytes."""
    return heatmap_png(_figure, scale)


@st.cache_resource
def figure_exports() -> ExportCache:
    """The server's PNG/SVG exports of figures (render.figures), the last few shared by every session."""
    return ExportCache()
