"""The URL as shared state: a teacher's link opens the same view, and a reload keeps the model.

A reload starts a new Streamlit session (empty st.session_state), so what a student sees must
also live in the URL. The entry file calls `restore()` once per session, before the page: valid
query values go into st.session_state (the widgets read them from there), each bad one leaves
its default in place with a warning naming it, and `model=<id>` makes that model active if the
server still has it (ui.resources.find_model). `write()` then mirrors the current values into
the URL on every run; values equal to their default are left out. Parsing is core.urlstate.
While the student's training run goes on, `training=<id>` names it, so a reload follows it again.
Lesson mode travels as `lesson=true` and the revealed steps with their predictions as
`picked=label-1.eigenvectors-0` (core.lesson.parse_progress).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import MAX_D_HIDDEN, N_TEST_MNIST, N_TRAIN_MNIST, Config
from core.directions import DIRECTIONS, VIEWS
from core.grid import GRID_THRESHOLDS, GRID_WEIGHT_DECAYS
from core.identity import config_id
from core.lesson import format_progress, parse_progress
from core.urlstate import (
    RESERVED,
    Param,
    boolean,
    choice,
    fmt_bool,
    fmt_choice,
    fmt_number,
    integer,
    model_id,
    number,
    one_of,
    parse_query,
    to_query,
)
from ui import lesson, state

MODEL_KEY = "_link_model"  # not a widget: the active model's id, read from / written to `model=`
JOB_LINK_KEY = "_link_training"  # not a widget: the id of the Config being trained for this session
READ_KEY = "_link_read"  # set once the session has read its URL
PARAMS: tuple[Param, ...] = (
    Param("target", "target_index", integer(0, N_TRAIN_MNIST - 1)),
    Param("threshold", "threshold", number(0.0, 1.0, 2), fmt_number),
    Param("inverse", "include_inverse", boolean, fmt_bool),
    Param("direction", "direction", choice({name: name for name in DIRECTIONS})),
    Param("k", "top_k", integer(1, state.TOP_K_MAX)),
    Param("eig", "eig_index", integer(0, MAX_D_HIDDEN)),  # at most MAX_D_HIDDEN + 1 eigenvectors
    Param("tab", "eig_tab", choice(state.EIGEN_TABS), fmt_choice(state.EIGEN_TABS)),
    Param("view", "eig_matrix", choice({name: name for name in VIEWS})),
    Param("grid_t", "grid_threshold", one_of(GRID_THRESHOLDS), fmt_number),
    Param("grid_wd", "grid_weight_decay", one_of(GRID_WEIGHT_DECAYS), fmt_number),
    Param("image", "explain_index", integer(0, N_TEST_MNIST - 1)),
    Param("projector", "projector", boolean, fmt_bool),
    Param("lesson", lesson.MODE_KEY, boolean, fmt_bool),
    Param("picked", lesson.PROGRESS_KEY, parse_progress, format_progress, fallback="no revealed lesson step"),
    # the Train page's settings (the ranges of its widgets), so a reload or a link keeps them
    Param("wd", "weight_decay", number(0.0, 5.0, 1), fmt_number),
    Param("noise", "noise_std", number(0.0, 1.0, 2), fmt_number),
    Param("epochs", "epochs", integer(1, state.MAX_EPOCHS)),
    Param("width", "d_hidden", one_of(state.D_HIDDEN_OPTIONS)),
    Param("lr", "lr", one_of(state.LR_OPTIONS), fmt_number),
    Param("batch", "batch_size", integer(1, N_TRAIN_MNIST)),
    Param("seed", "seed", integer(0, 2**32 - 1)),
    Param("slice", "use_slice", boolean, fmt_bool),
    Param("n_train", "n_train", integer(1, N_TRAIN_MNIST)),
    Param("n_test", "n_test", integer(1, N_TEST_MNIST)),
    Param("model", MODEL_KEY, model_id, fallback="the pretrained model"),
    Param("training", JOB_LINK_KEY, model_id, fallback="no training run"),
)
DEFAULTS: dict[str, Any] = {
    **state.WIDGET_DEFAULTS,
    MODEL_KEY: config_id(Config()),  # the shipped seed model
    lesson.PROGRESS_KEY: (),  # no lesson step revealed
}
GRID_KEYS = ("grid_threshold", "grid_weight_decay")
TRAINING_KEYS = ("epochs", "d_hidden", "batch_size", "n_train", "use_slice", "weight_decay", "noise_std", "lr")


def restore() -> None:
    """Once per session (its first run): take the view and the model from the URL."""
    ss = st.session_state
    if ss.get(READ_KEY):
        return
    ss[READ_KEY] = True
    parsed = parse_query({name: st.query_params.get_all(name) for name in st.query_params}, PARAMS, DEFAULTS)
    requested = parsed.values.pop(MODEL_KEY, None)
    training = parsed.values.pop(JOB_LINK_KEY, None)
    ss.update(parsed.values)
    if lesson.PROGRESS_KEY in parsed.values:
        lesson.counted_by_link(parsed.values[lesson.PROGRESS_KEY])
    for problem in parsed.problems:
        state.notify("warning", problem)
    sets_training = any(key in parsed.values for key in TRAINING_KEYS)
    if (
        requested is None
        and training is None
        and not sets_training
        and not any(key in parsed.values for key in GRID_KEYS)
    ):
        return
    from ui import models  # altair and pandas load with it: only when a link names a model or training settings

    if sets_training and training is None:
        _warn_if_too_long(models)

    if training is not None and models.reattach(training):
        return  # the run (or the model it became) wins over the model the link showed meanwhile
    if requested is not None:
        if requested != DEFAULTS[MODEL_KEY]:
            models.restore(requested)
    else:  # a hand-written link with grid settings only: show that precomputed model
        models.use_grid_point()


def _warn_if_too_long(models) -> None:
    """The link's training settings are past the server's cap: say so now, with the nearest that fit. Settings the
    server already holds a model for (a precomputed one, a run trained under a higher cap) are not refused: Train
    loads them at once, as the Train page says."""
    from ui import resources  # loaded with ui.models just before: only when a link names training settings

    try:
        config = state.config_from_widgets()
    except ValueError:
        return  # the Train page says why these settings cannot be trained
    refusal = models.too_long(config)
    if refusal is not None and resources.registry().get(config) is None:
        state.notify("warning", "The link's training settings: " + models.refusal_text(refusal))


def current_query() -> dict[str, str]:
    """The query string the current settings and model call for."""
    ss = st.session_state
    values = {param.key: ss[param.key] for param in PARAMS if param.key in ss}
    active = ss.get("active")
    values[MODEL_KEY] = active.model_id if active is not None else DEFAULTS[MODEL_KEY]
    job = ss.get(state.JOB_KEY)
    values[JOB_LINK_KEY] = config_id(job.config) if job is not None else None
    query = to_query(values, PARAMS, DEFAULTS)
    if any(name in query for name in ("grid_t", "grid_wd")):
        # grid settings alone would mean "load that grid model" (see restore): say which model is shown
        query.setdefault("model", values[MODEL_KEY])
    return query


def write() -> None:
    """Mirror the current settings and model into the URL (only when they changed)."""
    query = current_query()
    shown = {key: value for key, value in st.query_params.to_dict().items() if key not in RESERVED}
    if query != shown:
        st.query_params.from_dict(query)
