"""Step 2 · Train: the seed's training recipe, streamed live epoch by epoch, with a Stop button."""

import streamlit as st

import core.train
from core import reference_train
from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import N_TEST_MNIST, N_TRAIN_MNIST, PRESET_RESULTS, Config, preset
from core.labels import class_balance_problem, labels_from_similarities
from core.train import new_model
from render import charts, figures
from ui import models, resources, state, widgets

widgets.page_intro(
    "Train",
    ":material/model_training:",
    "A one-layer bilinear MLP learns to separate the images labelled true from the rest, with the seed's "
    "recipe: AdamW, a cosine learning-rate schedule and Gaussian noise on every training image. Weight decay "
    "and input noise keep the weights simple, which is what lets the target show up in step 4.",
    r"\text{logits}(x) = W_u \big[ (W_l h + b_l) \odot (W_r h + b_r) \big], \quad h = W_e x, \qquad "
    r"\text{trained on } x + \varepsilon,\ \ \varepsilon \sim \mathcal N(0, \sigma^2 I)",
    lead="A one-layer bilinear MLP learns your labels. Weight decay and input noise keep "
    "its weights simple, which lets the target show in step 4.",
)
widgets.model_badge(needs_model=False)


# The run this student follows locks the settings until it ends: they describe that run.
following = models.followed()
settings = {"persist_state": "session", "disabled": following is not None}
st.subheader("Settings")
label_column, link_column = st.columns([3, 1], vertical_alignment="center")
labels_now = state.describe_labels(state.label_config(), resources.digit_of(st.session_state.target_index))
label_column.markdown(f"**Labels** (set in step 1): {labels_now}")
link_column.page_link("app_pages/label.py", label="Change the labels", icon=":material/label:")

columns = st.columns(4)
columns[0].slider(
    "Weight decay",
    0.0,
    5.0,
    step=0.1,
    key="weight_decay",
    **settings,
    help="AdamW's decoupled weight decay; the paper uses 1.0.",
)
columns[1].slider(
    "Input noise std σ",
    0.0,
    1.0,
    step=0.01,
    key="noise_std",
    **settings,
    help="Gaussian noise added to every training pixel; the paper uses 0.1.",
)
columns[2].number_input(
    "Epochs",
    1,
    state.MAX_EPOCHS,
    step=1,
    key="epochs",
    **settings,
    help="Full passes over the training images; the paper uses 100.",
)
columns[3].select_slider("Hidden width d_hidden", state.D_HIDDEN_OPTIONS, key="d_hidden", **settings)

with st.expander("Advanced and classroom options", icon=":material/tune:"):
    columns = st.columns(3)
    columns[0].select_slider("Learning rate", state.LR_OPTIONS, format_func="{:g}".format, key="lr", **settings)
    columns[1].number_input(
        "Batch size",
        1,
        N_TRAIN_MNIST,
        step=256,
        key="batch_size",
        **settings,
        help="The last partial batch of every epoch is dropped, as in the seed.",
    )
    columns[2].number_input(
        "Seed",
        0,
        2**32 - 1,
        step=1,
        key="seed",
        **settings,
        help="Same settings and seed give the same model, so the server trains each once.",
    )
    use_slice = st.toggle("Train on a slice of MNIST (fast classroom demos)", key="use_slice", **settings)
    slice_settings = {**settings, "disabled": settings["disabled"] or not use_slice}
    columns = st.columns(2)
    columns[0].number_input("Training images", 1, N_TRAIN_MNIST, step=1000, key="n_train", **slice_settings)
    columns[1].number_input("Test images", 1, N_TEST_MNIST, step=500, key="n_test", **slice_settings)
    with st.container(horizontal=True):
        st.button(
            "Quick classroom preset",
            icon=":material/bolt:",
            key="quick_preset",
            on_click=state.apply,
            args=(state.preset_widgets("quick"),),
            disabled=settings["disabled"],
            help=f"{state.describe_training(preset('quick'))}. {PRESET_RESULTS['quick']} (docs/quick_preset.md).",
        )
        st.button(
            "Paper settings",
            icon=":material/restart_alt:",
            key="paper_preset",
            on_click=state.apply,
            args=(state.preset_widgets("paper"),),
            disabled=settings["disabled"],
        )

# The classroom path is the default: until the student changes a setting, Train trains the quick preset (~5 s) with
# the student's labels, not the paper's 100 epochs (whose model, the pretrained one, is already there).
quick = not state.training_changed() and following is None
try:
    config = state.quick_config() if quick else state.config_from_widgets()
except ValueError as error:
    config = None
    st.error(f"These settings can't be trained: {error}. Your current model is kept.", icon=":material/error:")

refused, existing, too_long = True, None, None
if config is not None:
    splits = resources.splits(config)
    refused = widgets.class_balance(splits.train_y, class_balance_problem(splits.train_y))
    existing = resources.registry().get(config)  # finds the precomputed grid models too
    too_long = models.too_long(config)  # past the server's cap on one run (the teacher sets it)
    if existing is not None and not refused:
        st.info(models.describe_existing(existing), icon=":material/bolt:")
    elif too_long is not None and not refused and following is None:
        refused = True
        st.error(models.refusal_text(too_long), icon=":material/timer_off:")
        with st.container(horizontal=True):
            for number, nearer in enumerate(too_long.nearest):
                st.button(
                    f"Use {models.describe_change(config, nearer)}",
                    key=f"nearest_{number}",
                    icon=":material/timer:",
                    on_click=state.apply,
                    args=(state.training_widgets(nearer),),
                )

seconds = "" if config is None else "instant: trained before" if existing else f"about {models.estimate(config):.0f} s"
with st.container(horizontal=True, vertical_alignment="center"):
    st.button(
        f"Train the quick preset ({seconds})" if quick else f"Train ({seconds})",
        type="primary",
        icon=":material/play_arrow:",
        key="train_button",
        disabled=refused or following is not None,
        on_click=models.train_quick if quick else models.train_or_load,
        args=() if quick else (config,),
        help=f"{state.describe_training(config)}." if config is not None else None,
    )
    if existing is not None:
        st.button(
            "Train again anyway",
            icon=":material/replay:",
            key="train_again",
            disabled=refused or following is not None or too_long is not None,
            on_click=models.train_or_load,
            args=(config,),
            kwargs={"again": True},
            help="Train these settings from scratch and watch the curves; training is deterministic per seed, "
            "so the result is the same model.",
        )
    mine = models.active_or_none()
    if following is None and mine is not None and mine.origin in ("trained", "stopped"):  # a run just finished
        st.page_link("app_pages/eigenvectors.py", label="See what it learnt →", icon=":material/insights:")
    st.button(
        "Stop training",
        icon=":material/stop:",
        key="stop",
        disabled=following is None,
        on_click=models.stop,
        help="Stops within a moment; your model is the one at the end of the last finished epoch.",
    )


@st.fragment(run_every=0.25)
def replay(trained) -> None:
    """The curves of a model the server already had, drawn epoch by epoch over a few seconds; then the page."""
    shown = models.replayed_epochs(trained)
    if shown is None:
        st.rerun()
    st.progress(shown / len(trained.history), text=f"Replaying the run that trained it: epoch {shown}")
    for column, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
        with column:
            widgets.live_curve(tuple(trained.history[:shown]), metric)


trained = models.active_or_none()  # None only while there is no model yet (no shipped checkpoint on this server)
if following is not None:
    widgets.follow_run("train")  # progress, the top eigenvector beside the target, spectrum and curves, live
elif trained is not None and trained.history and models.replayed_epochs(trained) is not None:
    replay(trained)
elif trained is not None:  # the active model: how its target appeared, and its curves
    widgets.watch_target(trained.config, trained.snapshots, resources.settings(trained), trained, "train_strip")
    if trained.history:
        epochs = f"{trained.epochs_done} epoch" + ("s" if trained.epochs_done > 1 else "")
        st.caption(f"Training curves of the active model ({epochs}, {trained.history[-1].seconds:.0f} s).")
        for column, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
            figure = figures.chart(
                charts.training_curve(trained.history, metric),
                f"training_{metric}",
                f"Training and validation {'cross-entropy loss' if metric == 'loss' else 'accuracy'} per epoch",
                resources.settings(trained),
            )
            with column:
                widgets.chart(figure, f"train_{metric}")

st.subheader("Keep your model")
stem = models.file_stem(trained) if trained is not None else "bilinear-eigen-lab"
st.download_button(
    "Training metrics (CSV)",
    data=lambda: models.history_csv(trained),
    mime="text/csv",
    file_name=f"{stem}.csv",
    icon=":material/table:",
    key="download_metrics",
    on_click="ignore",
    disabled=trained is None or not trained.history,
)
st.caption(
    "Download the model itself, or load one you saved, in the sidebar's **Your model** section "
    "(on every page). Its id is in the address bar, so reloading the page keeps it."
)

widgets.next_step(
    "app_pages/tensor.py", "Next: 3 · Tensor →", ":material/grid_on:", "Turn the weights into one matrix."
)
widgets.code_expander(
    Config.validate,
    labels_from_similarities,
    class_balance_problem,
    new_model,
    reference_train.train,
    save_checkpoint,
    load_checkpoint,
    note="The training loop below is the one to read (autograd, torch's AdamW, explicit noise); the app trains "
    "with `core.train`, a faster loop that follows the same law, which tests/unit/test_reference_train.py checks.",
    module=core.train,
)
