"""Each student's settings and messages, in st.session_state (light: no torch import here).

Widget keys are the Config field names, so a Config is built straight from the widgets, and their
defaults come from Config() (the seed notebook's settings). The entry file calls `init()` on every
run: it fills missing keys once. Widgets are created with persist_state="session", so a setting
made on one page is still there after visiting the others.
"""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from core.config import Config, preset

DEFAULTS = Config()
CONFIG_WIDGETS = (
    "target_index",
    "threshold",
    "include_inverse",
    "weight_decay",
    "noise_std",
    "epochs",
    "d_hidden",
    "lr",
    "batch_size",
    "seed",
)
ROUNDED = ("threshold", "weight_decay", "noise_std")  # slider floats like 0.41000000000000003
WIDGET_DEFAULTS: dict[str, Any] = {
    **{name: getattr(DEFAULTS, name) for name in CONFIG_WIDGETS},
    "use_slice": False,
    "n_train": 12_000,
    "n_test": 2_000,  # classroom option: train on a slice
    "random_digit": 1,  # Label page: "random image of digit d" (the default target, #6, is a 1)
    "tensor_direction": "true",
    "tensor_hover": False,  # Tensor page: interactive heatmaps instead of images
    "proof_offset": 0,  # Tensor page
    "direction": "true_minus_false",
    "top_k": 3,
    "eig_index": 0,  # Eigenvectors page (direction: Explain too)
    "eig_hover": False,  # Eigenvectors page: the browsed eigenvector as an interactive chart, not an image
    "grid_threshold": DEFAULTS.threshold,
    "grid_weight_decay": DEFAULTS.weight_decay,  # instant grid sliders
    "eig_tab": "Eigenvectors",  # Eigenvectors page tab: one of EIGEN_TABS
    "eig_matrix": "bias_free",  # Eigenvectors page: which view of the matrix (core.directions.VIEWS)
    "projector": False,  # sidebar: larger type and images for a classroom projector
    "lesson": False,  # sidebar: lesson mode (ui.lesson), a question before each step's result
    "explain_source": "test",
    "explain_index": 0,
    "explain_top": 6,
    "explain_resize": False,  # Explain page
}
D_HIDDEN_OPTIONS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)  # Train page choices (and what a link may ask for)
LR_OPTIONS = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)  # finer where the presets are
MAX_EPOCHS = 1000
TOP_K_MAX = 8  # Eigenvectors page: eigenvectors shown at each end of the spectrum
EIGEN_TABS = {"eigenvectors": "Eigenvectors", "compare": "Compare weight decays"}  # URL word -> tab label
JOB_KEY = "training_job"  # not a widget: the server.jobs.TrainingJob this session follows while it trains
TOKEN_KEY = "_session_token"  # not a widget: this session's anonymous id in the training pool

Kind = Literal["success", "info", "warning", "error"]


class Unavailable(Exception):
    """Something a page needs is missing on this server (no model yet, no MNIST): not a bug.

    Its message says what is missing and how to get it; the entry file shows it, without a
    traceback, in place of the rest of the page, and the sidebar still renders.
    """


def init() -> None:
    """Run at the start of every script run, before the page."""
    for key, value in WIDGET_DEFAULTS.items():
        st.session_state.setdefault(key, value)


def apply(values: dict[str, Any]) -> None:
    """Set several widgets at once (a button callback, so it runs before the widgets are drawn)."""
    st.session_state.update(values)


def config_from_widgets() -> Config:
    """The Config the widgets describe; raises ValueError with a user-facing message."""
    ss = st.session_state
    values = {name: ss[name] for name in CONFIG_WIDGETS}
    values.update({name: round(values[name], 6) for name in ROUNDED})
    values.update(n_train=ss.n_train if ss.use_slice else None, n_test=ss.n_test if ss.use_slice else None)
    return Config(**values)


def training_widgets(config: Config) -> dict[str, Any]:
    """The Train page's widget values that describe `config` (the inverse of config_from_widgets,
    without the labelling rule, which the Label page and the URL carry)."""
    values = {
        name: getattr(config, name)
        for name in CONFIG_WIDGETS
        if name not in ("target_index", "threshold", "include_inverse")
    }
    values["use_slice"] = config.n_train is not None
    if config.n_train is not None:
        values.update(n_train=config.n_train, n_test=config.n_test or WIDGET_DEFAULTS["n_test"])
    return values


def training_changed() -> bool:
    """Has the student changed a Train page setting from its default (the paper's, the pretrained model's)?"""
    defaults = training_widgets(DEFAULTS)
    return any(st.session_state.get(name, value) != value for name, value in defaults.items())


def quick_config() -> Config:
    """The quick classroom preset (core.config.PRESETS) with this student's labels: what Train trains by default."""
    return preset("quick").replace(**{name: getattr(label_config(), name) for name in LABEL_FIELDS})


LABEL_FIELDS = ("target_index", "threshold", "include_inverse")  # what the Label page sets (and the URL carries)


def preset_widgets(name: str) -> dict[str, Any]:
    """The Train page's widget values for a named preset (core.config.PRESETS)."""
    return training_widgets(preset(name))


def label_config() -> Config:
    """The paper's settings with this student's labelling rule (what the Label page sets)."""
    ss = st.session_state
    return DEFAULTS.replace(
        target_index=ss.target_index, threshold=round(ss.threshold, 6), include_inverse=ss.include_inverse
    )


def describe_labels(config: Config, digit: int | None = None) -> str:
    """'target image #6 (a 1), threshold 0.40, inverse counted' (one line, markdown): the image's number never
    reads as the digit it shows; `digit`, the digit it shows, when the caller has MNIST at hand."""
    inverse = "inverse counted" if config.include_inverse else "inverse ignored"
    shows = f" (a {digit})" if digit is not None else ""
    return f"target image #{config.target_index}{shows}, threshold {config.threshold:.2f}, {inverse}"


def describe_training(config: Config) -> str:
    """The settings a student changes on the Train page, in one line."""
    data = f"{config.n_train:,} train / {config.n_test or 10_000:,} test images" if config.n_train else "full MNIST"
    return (
        f"weight decay {config.weight_decay:g}, noise {config.noise_std:g}, {config.epochs} epochs, "
        f"d_hidden {config.d_hidden}, lr {config.lr:g}, batch {config.batch_size}, seed {config.seed}, {data}"
    )


def notify(kind: Kind, message: str) -> None:
    """Queue a message for the next page render (it survives st.rerun)."""
    st.session_state.setdefault("notices", []).append((kind, message))


def show_notices() -> None:
    """Show and forget the queued messages."""
    for kind, message in st.session_state.pop("notices", []):
        getattr(st, kind)(message)
