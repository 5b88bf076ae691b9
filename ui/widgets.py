"""The pieces every page repeats: its opening, the model badge, the "code this page ran" expander, and
its figures with their "Download" popovers (PNG and SVG for slides)."""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import streamlit as st

from core.directions import DIRECTIONS, VIEWS
from ui import state

if TYPE_CHECKING:
    from render.figures import Figure


def page_intro(title: str, icon: str, what_and_why: str, formula: str | None = None, lead: str = "") -> None:
    """Title, the page's lead (a sentence or two, visible), and what this step does and why with its formula in a
    closed "Why?" expander (`why`); then any queued messages. Without a lead, `what_and_why` is the lead."""
    st.title(title, icon=icon)
    if lead:
        st.markdown(lead)
        why(what_and_why, formula, key=f"why_{title}")
    else:
        st.markdown(what_and_why)
        if formula:
            latex(formula)
    state.show_notices()


def why(text: str, formula: str | None = None, key: str | None = None, label: str = "Why?") -> None:
    """The derivation or caveat behind what a page shows, closed until a student asks (issue 24: a page a minute)."""
    with st.expander(label, icon=":material/help:", key=key):
        st.markdown(text)
        if formula:
            latex(formula)


def latex(formula: str) -> None:
    """A display formula that fits its column: typeset inline (KaTeX may break a line after a relation or an
    operator) in display style, its parts (split at \\qquad) separated by spaces a line may also break at, and
    scaled down with its column (FORMULA_STYLE). st.latex's display box never wraps: 533-1,045 px formulas were cut
    off in 358-846 px columns on a phone and in projector mode."""
    parts = [part.strip() for part in formula.split(r"\qquad") if part.strip()]
    with st.container(key=f"formula_{zlib.crc32(formula.encode()):08x}"):  # one key per formula: a page shows each once
        st.markdown(" \u2003 ".join(f"$\\displaystyle {part}$" for part in parts))


def next_step(page: str, label: str, icon: str, why_go: str = "") -> None:
    """Where to go from here: a page link (and a short reason) at the foot of every page."""
    with st.container(horizontal=True, vertical_alignment="center", key="next_step"):
        st.page_link(page, label=label, icon=icon)
        if why_go:
            st.caption(why_go)


def badge_style(trained: Any) -> tuple[str, str, str]:
    """(label, icon, colour) of the badge naming where the active model comes from."""
    config = trained.config
    return {
        "pretrained": ("Pretrained seed checkpoint", ":material/inventory_2:", "green"),
        "grid": (
            f"Precomputed checkpoint: threshold {config.threshold:.2f}, weight decay {config.weight_decay:g}",
            ":material/bolt:",
            "gray",
        ),
        "trained": ("Your trained model", ":material/school:", "blue"),
        "stopped": (
            f"Your model, stopped after epoch {trained.epochs_done} of {config.epochs}",
            ":material/pause_circle:",
            "orange",
        ),
        "uploaded": ("Your uploaded model", ":material/upload_file:", "violet"),
    }[trained.origin]


def model_badge(note: str = "", needs_model: bool = True) -> None:
    """Which model the page shows: the pretrained seed checkpoint, a precomputed one or the student's own.

    Without any model (ui.models.NoModel), a page that needs one stops here (the entry file shows
    the message instead of the page); the others (Home, Label, Train) show the message and go on.
    """
    from ui import resources  # torch: after the page's text (cold start)
    from ui.models import NoModel, active  # ui.models loads altair and pandas: after the page's text (cold start)

    try:
        trained = active()
    except NoModel as missing:
        if needs_model:
            raise
        st.info(str(missing), icon=":material/model_training:")
        return
    config, final = trained.config, (trained.history[-1] if trained.history else None)
    accuracy = f" · validation accuracy {final.val_acc:.1%}" if final else ""
    label, icon, color = badge_style(trained)
    with st.container(border=True):
        st.badge(label, icon=icon, color=color)
        st.caption(
            f"Labels: {state.describe_labels(config, resources.digit_of(config.target_index))}{accuracy}  \n"
            f"Training: {state.describe_training(config)}" + (f"  \n{note}" if note else "")
        )


@st.fragment(run_every=1.0)
def follow_run(where: Literal["train", "sidebar"]) -> None:
    """The training run this student follows, redrawn every second; the whole app reruns when it ends
    (ui.models.settle). On the Train page (`where="train"`) its progress, the verdict's top eigenvector beside
    the target, the spectrum and the curves as they change; in the sidebar of the other pages, a badge."""
    from ui import models  # altair and pandas: see `model_badge`

    job = models.followed()
    if job is None or models.settle():
        st.rerun()  # the run ended: every page redraws with the new model (or the message)
    step = models.progress(job)
    if where == "sidebar":
        status = "Queued for training" if step.queued else f"Training: epoch {len(step.history)} / {step.epochs}"
        st.progress(step.fraction, text=status)
        st.page_link("app_pages/train.py", label="Watch it train", icon=":material/model_training:")
        return
    st.progress(step.fraction, text=step.text)
    if step.snapshots:
        from ui import resources  # altair and pandas: see `model_badge`

        watch_target(job.config, step.snapshots, resources.settings(job.config, step.history))
    if step.history:
        for column, metric in zip(st.columns(2), ("loss", "accuracy"), strict=True):
            with column:
                live_curve(step.history, metric)
    st.caption(
        "The run belongs to the server: you can look at other pages meanwhile (the sidebar shows its progress) "
        "or reload; it becomes your active model when it finishes."
    )


def watch_target(
    config: Any, snapshots: Sequence[Any], settings: Any, trained: Any = None, key: str | None = None
) -> None:
    """The target beside the top eigenvector of the verdict's matrix (core.findings.verdict_view) as the model
    trains (core.snapshot: the latest snapshot), or for a `trained` model its own top eigenvector (ui.resources.top,
    exactly the Eigenvectors page's image); its numbers, and the spectrum per snapshot. With a `key`, a strip of
    thumbnails of how the target appeared, and its download as one figure."""
    from core.findings import match_words, verdict_view  # torch: after the page's text (cold start)
    from core.snapshot import in_view, strip, strip_pixels  # torch: as above
    from render import charts, figures  # altair: see `model_badge`
    from ui import resources  # altair and pandas: see `model_badge`

    last = snapshots[-1] if snapshots else None
    if trained is not None:  # the model itself, decomposed now in today's verdict view
        direction, view = verdict_view()
        top = resources.top(trained, direction, view)
        image, cos, eigenvalue, when = top.image, top.cos, top.eigenvalue, "after training"
        snapshots = in_view(snapshots, direction, view)  # one matrix per chart
        last = snapshots[-1] if snapshots else None
    else:
        direction, view = last.direction, last.view
        image, cos, eigenvalue, when = last.image(), last.cos, last.eigenvalue, last.label
    label = VIEWS[view].label
    matrix = f"the {label[0].lower()}{label[1:]} of {DIRECTIONS[direction].name}"  # as the Eigenvectors page says
    digit = int(resources.mnist().train_y[config.target_index])
    pictures, chart_column = st.columns([2, 3], vertical_alignment="top")
    with pictures:
        shown = [
            figures.pixels(
                resources.mnist().train_x[config.target_index],
                "target",
                f"Target #{config.target_index}",
                f"The target: MNIST training image #{config.target_index}, a handwritten {digit}",
                settings,
                colours="digit",
                scale=5,
            ),
            figures.pixels(
                image,
                f"top_eigenvector_{view}_{direction}" + ("" if trained is not None else f"_step{last.step}"),
                f"Top eigenvector, {when}" + ("" if trained is not None else " (live)"),
                f"Top eigenvector of {matrix}"
                + (", after training" if trained is not None else f" while training ({when})")
                + f", as a 28×28 image ({DIVERGING}): eigenvalue {eigenvalue:+.3f}, |cos| with the target {cos:.2f}",
                settings,
                scale=5,
            ),
        ]
        image_row(shown, width=130)
        words = f"λ₀ {eigenvalue:+.3f} · |cos| {cos:.2f}: {match_words(cos)}."
        if last is not None:
            words += (
                f" At {last.label} its eigenvalue carried {last.top_share:.0%} of Σλ², and {last.for_90pct} "
                f"eigenvector{'s' if last.for_90pct != 1 else ''} carried 90 %."
            )
        st.caption(f"Top eigenvector of {matrix} ({DIVERGING}). {words}")
    with chart_column:
        if snapshots:
            rows = tuple((s.epoch, s.cos, s.top_share, s.eigenvalue, s.for_90pct) for s in snapshots)
            altair(charts.snapshot_curves(rows, config.epochs))
            st.caption(
                "Per epoch (and four times in the first): does the top eigenvector look like the target, and how "
                "much of the matrix is it (λ₀² / Σλ²: near 1, one spike; low, many features). Hover for λ₀."
            )
        else:
            st.caption(
                "This model's file kept no record of its top eigenvector during training (it was saved before the "
                "lab recorded one): train it here to watch the target appear."
            )
    if key is None:
        return
    kept = strip(snapshots)
    if len(kept) < 2:
        return
    st.markdown("**How the target appeared**")
    image_row(
        [
            figures.pixels(
                s.image(),
                f"top_eigenvector_{s.label.replace(' ', '')}",
                f"{s.label} · |cos| {s.cos:.2f}",
                f"Top eigenvector of {matrix}, {s.label} ({DIVERGING}): |cos| with the target {s.cos:.2f}",
                settings,
            )
            for s in kept
        ],
        width=72,
    )
    strip_figure = figures.pixels(
        strip_pixels(kept),
        f"top_eigenvector_strip_{view}_{direction}",
        "How the target appeared: " + " → ".join(s.label for s in kept),
        f"The top eigenvector of {matrix} at {len(kept)} moments of training, each at its own scale ({DIVERGING}): "
        + ", ".join(f"{s.label} |cos| {s.cos:.2f}" for s in kept),
        settings,
    )
    downloads(key, [strip_figure])


def model_sidebar(badge: bool = True) -> None:
    """The sidebar's "Your model" section, on every page: download the active model, load one back,
    and (`badge`, on pages other than Train) the progress of the student's training run."""
    from ui import models  # altair and pandas: see `model_badge`

    trained = models.active_or_none()  # None: no model yet (the shipped checkpoint is missing on this server)
    with st.sidebar:
        st.subheader("Your model", divider="gray")
        if badge and models.followed() is not None:
            follow_run("sidebar")
        retrain = models.retrain_offer()
        if retrain is not None:
            st.button(
                f"Retrain it (about {models.estimate(retrain):.0f} s)",
                type="primary",
                icon=":material/replay:",
                key="retrain",
                on_click=models.retrain,
                help="The model your link names is gone from this server; its settings are back, and training "
                "is deterministic per seed, so this trains exactly that model again.",
            )
        if trained is None:
            st.caption("No model yet: train one in step 2, or load one you saved below.")
        else:
            label, icon, color = badge_style(trained)
            st.badge(label, icon=icon, color=color)
            st.caption(
                f"Model id `{trained.model_id}`: it is in the address bar, so a reload or a copied link opens "
                "this model while the server keeps it."
            )
            st.download_button(
                "Download it (.safetensors)",
                data=lambda: models.checkpoint_bytes(trained),
                file_name=f"{models.file_stem(trained)}.safetensors",
                mime="application/octet-stream",
                icon=":material/download:",
                key="download_model",
                on_click="ignore",
                width="stretch",
            )
        # Any file type: a .pt (a pickle) then gets the app's own reason, not the browser's bare refusal.
        # A rejected file gets a new, empty field (a new key), so it is not listed as if it were loaded.
        key = models.upload_key()
        st.file_uploader(
            "Load a model you saved (.safetensors)",
            key=key,
            on_change=models.load_upload,
            args=(key,),
            help="Only .safetensors files saved by this app (never pickle or .pt files): every tensor's "
            "name, shape, dtype and value is checked before use. A rejected file leaves your "
            "current model in place.",
        )


@st.cache_data(show_spinner=False)
def science_notes() -> str:
    """docs/science.md, the lab's notes on the paper's claims and on what the app shows (our own text)."""
    return (Path(__file__).resolve().parent.parent / "docs" / "science.md").read_text()


def source(function: Callable[..., Any]) -> None:
    """The source code of one core function, as the page runs it."""
    st.code(inspect.getsource(function), language="python")


def lazy_expander(label: str, key: str, icon: str) -> Any:
    """A closed expander whose content is sent only once it is opened (None while closed): opening it reruns
    the page. Closed, a long text or highlighted code would still be laid out by the browser on every page
    switch (issue 13: pages at the floor)."""
    expander = st.expander(label, icon=icon, key=key, on_change="rerun")
    return expander if expander.open else None


def code_expander(*functions: Callable[..., Any], note: str = "", module: ModuleType | None = None) -> None:
    """An expander with the source of the core functions this page called (`lazy_expander`, key show_code).

    `note` (a sentence) comes first, then `module`'s whole source in an expander of its own (lazy too), for
    code a page shows through a readable stand-in: the Train page shows the reference loop, and the fast
    loop the app runs sits behind it."""
    expander = lazy_expander("Show the code this page ran", "show_code", ":material/code:")
    if expander is None:
        return
    with expander:
        if note:
            st.caption(note)
        if module is not None:
            name = module.__name__
            inner = lazy_expander(f"Show `{name}`", f"show_code_{name}", ":material/code:")
            if inner is not None:
                with inner:
                    st.code(inspect.getsource(module), language="python")
        for function in functions:
            st.caption(f"`{function.__module__}.{function.__qualname__}`")
            st.code(inspect.getsource(function), language="python")


def png_url(png: bytes) -> str:
    """A PNG as a data: URL, which travels inside the element's message. Given bytes, st.image stores them as a
    media file instead, and the end of the next script run deletes it: in a burst of slider steps the browser
    asked for images that a later run had already dropped (HTTP 404: a broken image and a console error,
    tests/browser/test_browser_stress.py). A 28×28 figure is a few hundred bytes: inline, it spares a request."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_row(figures: Sequence[Figure], width: int = 84, key: str | None = None) -> None:
    """Small images side by side (pixel figures from render.figures), each with its caption (the figure's
    title) and a text alternative that says what it shows, with the numbers, for a screen reader (its
    description); then, with a `key`, one popover to download them."""
    # PNG everywhere: JPEG (Streamlit's "auto" for RGB) smears the edges of upscaled 28×28 pixels
    st.image(
        [png_url(figure.screen_png()) for figure in figures],
        caption=[figure.title for figure in figures],
        alt=[figure.description for figure in figures],
        width=px(width),
        output_format="PNG",
    )
    if key:
        downloads(key, figures)


def image(figure: Figure, width: int) -> None:
    """One pixel figure with its caption and alt text, as image_row (no popover: pages group them)."""
    st.image(png_url(figure.screen_png()), caption=figure.title, alt=figure.description, width=px(width))


def altair(chart: Any, width: Any = "stretch") -> None:
    """An Altair chart as drawn (projector mode too), sent as its Vega-Lite spec without Altair's JSON-schema
    validation: st.altair_chart validates on every run, 20-40 ms a layered chart on this machine, a third of
    the Eigenvectors page's script for its two spectra. tests/unit/test_charts.py validates every chart instead.
    The spec is made once per chart object (`_spec_parts`; render.charts' builders hand out the same chart for
    the same data) and parsed afresh each time, as st.vega_lite_chart changes the dict it is given."""
    text, datasets = _spec_parts(chart, bool(st.session_state.get("projector")))
    spec = json.loads(text)
    if datasets:
        spec["datasets"] = dict(datasets)
    st.vega_lite_chart(spec, width=width)


SpecParts = tuple[str, dict[str, Any]]  # the spec's JSON without its datasets, and the datasets
_SPECS: OrderedDict[tuple[int, bool], tuple[Any, SpecParts]] = OrderedDict()  # (id(chart), projector) -> ...
_SPECS_LOCK = threading.Lock()


def _spec_parts(chart: Any, projector: bool) -> SpecParts:
    """The chart's Vega-Lite spec as JSON and its datasets as Arrow IPC bytes, kept for the last 512 charts
    (with the chart, so that its id stays its own). st.vega_lite_chart turns a dataset given as rows into
    Arrow on every run (pandas and pyarrow, ~3 ms a chart here); bytes it passes on as they are."""
    key = (id(chart), projector)
    with _SPECS_LOCK:
        kept = _SPECS.get(key)
        if kept is not None and kept[0] is chart:
            _SPECS.move_to_end(key)
            return kept[1]
    from render import charts  # altair: only once a chart is drawn

    known = None if projector else charts.known_spec(chart)
    spec = dict(known) if known is not None else (_projected(chart) if projector else chart).to_dict(validate=False)
    datasets = spec.pop("datasets", {})
    with contextlib.suppress(ImportError, AttributeError):  # another Streamlit: send the rows, it converts them
        datasets = {name: _arrow_bytes(rows) for name, rows in datasets.items()}
    parts = (json.dumps(spec), datasets)
    with _SPECS_LOCK:
        _SPECS[key] = (chart, parts)
        if len(_SPECS) > 512:
            _SPECS.popitem(last=False)
    return parts


def _arrow_bytes(rows: list[dict[str, Any]]) -> bytes:
    """A dataset's rows as the Arrow IPC bytes st.vega_lite_chart sends: one column per key any row has, its
    type inferred over all rows (pyarrow straight from the rows, ~10x faster than Streamlit's own way through
    pandas, 0.17 vs 1.67 ms for a 20-row spectrum); rows pyarrow cannot type go Streamlit's way."""
    import pyarrow as pa
    from streamlit import dataframe_util  # what st.vega_lite_chart itself calls on rows

    if rows and all(isinstance(row, dict) for row in rows):
        try:
            columns = dict.fromkeys(key for row in rows for key in row)
            table = pa.table({key: [row.get(key) for row in rows] for key in columns})
            return dataframe_util.convert_arrow_table_to_arrow_bytes(table)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass
    return dataframe_util.convert_anything_to_arrow_bytes(rows)


def chart(figure: Figure, key: str, width: Any = "stretch") -> None:
    """An Altair chart figure (`altair`), and its "Download" popover under it."""
    altair(figure.chart, width)
    downloads(key, [figure])


def heatmap(figure: Figure, model_id: str, key: str, interactive: Any = None) -> None:
    """A heatmap of the model `model_id` (a matrix, render.figures.matrix, or a 28×28 pixel figure), with a colour
    bar, and its "Download" popover under it.

    An image by default, drawn once per model (ui.resources.heatmap) and shown at its own size, so Streamlit
    neither re-encodes nor resizes it: as a Vega chart, a 65×65 matrix is 4,225 marks (a 28×28 image 784)
    that the browser lays out and paints on every page switch. `interactive`, an Altair chart: that hoverable
    chart instead, for a student who asked for values under the mouse.
    """
    from ui import resources  # altair and pandas: see `model_badge`

    if interactive is not None:
        altair(interactive, "content")
    else:
        scale = PROJECTOR_SCALE if st.session_state.get("projector") else 1
        png = resources.heatmap(model_id, figure.name, scale, figure)
        st.image(png_url(png), caption=figure.title, alt=figure.description, width="content")
    downloads(key, [figure])


def downloads(key: str, figures: Sequence[Figure]) -> None:
    """A small "Download" popover offering each figure as PNG and as SVG, for a teacher's slides; each
    file carries a caption of the model's settings (render.figures) and its name says what it shows.

    Nothing is rendered on a page's run. The popover's buttons exist only while it is open (opening it
    reruns the page, `on_change="rerun"`), and each button's `data` is a callable that Streamlit calls
    when it is pressed, on a thread of its own; the server keeps the last exports
    (ui.resources.figure_exports), so a class downloading one figure renders it once. Widget keys:
    `download_<key>` (the popover), `download_<key>_<i>_<png|svg>` (the i-th figure's buttons).
    """
    from render.figures import MIME  # altair: see `model_badge`
    from ui import resources

    if not figures:
        return
    popover = st.popover(
        "Download figure" if len(figures) == 1 else f"Download these {len(figures)} figures",
        icon=":material/download:",
        type="tertiary",
        key=f"download_{key}",
        on_change="rerun",
        help="For slides: PNG, or SVG (vector graphics, sharp at any size), with a caption stating the "
        "model's settings.",
    )
    if not popover.open:
        return
    exports = resources.figure_exports()
    with popover:
        for i, figure in enumerate(figures):
            st.text(figure.title)  # plain text: an uploaded file's name is never interpreted
            with st.container(horizontal=True):
                for fmt, label in (("png", "PNG"), ("svg", "SVG")):
                    st.download_button(
                        label,
                        data=partial(exports.get, figure, fmt),
                        file_name=figure.file_name(fmt),
                        mime=MIME[fmt],
                        key=f"download_{key}_{i}_{fmt}",
                        on_click="ignore",
                        icon=":material/image:" if fmt == "png" else ":material/polyline:",
                        help=f"Saves `{figure.file_name(fmt)}`",
                    )


# Every term a page uses, defined once: the glossary on Home, and the tooltips (`term`) where a page first uses one.
TERMS = {
    "target": "The MNIST training image the labels are built from. The model never sees it.",
    "threshold τ": "An image is labelled true when its cosine similarity with the target is above τ.",
    "True − False": "The model's output logit(true) − logit(false): positive means it says true.",
    "interaction matrix": "The matrix B with output = x̃ᵀ W_e′ᵀ B W_e′ x̃, built from the weights alone.",
    "eigenvector": "A direction v with B v = λ v; drawn through the embedding, a 28×28 image. Top: largest λ.",
    "eigenvalue λ": "How strongly the output responds to its eigenvector: + pushes the output up, − down.",
    "bias-augmented": "The inputs get a constant 1 appended, so the biases become ordinary weights: B is then "
    "exactly the model.",
    "bias-free block": "B without the row and column of that constant 1: the quadratic part of the model alone.",
    "constant coordinate": "The appended 1; the biases live in its row and column of B.",
    "linear term": "What the biases add to the output: 2 · b · h, one weight per pixel (b = B[:-1, -1]).",
    "centred target": "The target minus its mean pixel, so that a uniform background does not count as a match.",
    "|cos|": "The absolute cosine between an eigenvector and the centred target: 1 the same pattern, 0 unrelated "
    "(the sign of an eigenvector is arbitrary).",
    "round-off bound": "The error a float64 computation can make by rounding alone: a check below it is exact.",
    "AdamW": "The optimiser: Adam's adaptive steps, with weight decay applied to the weights directly.",
    "weight decay": "Shrinks every weight a little at each step, so the model keeps only what it needs.",
    "cosine schedule": "The learning rate falls from its start to zero along half a cosine over the run.",
    "d_hidden": "The number of hidden units (the width of the bilinear layer).",
    "safetensors": "A file format for weights that holds numbers only, never code: safe to load from anyone.",
}
GLOSSARY = "\n".join(f"- **{word}**: {meaning}" for word, meaning in TERMS.items())


def terms(*words: str) -> str:
    """The definitions of `words` (keys of TERMS), as a tooltip's text for the element that first uses them."""
    return "  \n".join(f"**{word}**: {TERMS[word]}" for word in words)


DIVERGING = "red negative, white zero, blue positive"  # how every eigenvector image is coloured (alt texts)


def fraction_true(labels: Any) -> tuple[str, str]:
    """('39.8 %', '23 870 of 60 000 images') for 0/1 labels."""
    n_true, n = int(labels.sum()), len(labels)
    return f"{n_true / n:.1%}", f"{n_true:,} of {n:,} images"


def class_balance(labels: Any, problem: str | None) -> bool:
    """Show core.labels.class_balance_problem's message; True when training must be refused
    (one class is empty), a warning only when a class is merely rare."""
    if problem is None:
        return False
    refused = int(labels.sum()) in (0, len(labels))
    if refused:
        st.error(f"{problem} Training on these labels is refused.", icon=":material/block:")
    else:
        st.warning(problem, icon=":material/warning:")
    return refused


def _keep(state_key: str, widget_key: str) -> None:
    """on_change: copy a page's widget value into the state key it stands for."""
    st.session_state[state_key] = st.session_state[widget_key]


def direction_picker(label: str, key: str, widget_key: str | None = None) -> str:
    """A segmented control over core.directions.DIRECTIONS: short names, the full ones in its help.

    `key` holds the choice in st.session_state (and the URL). Pages that share one choice (Eigenvectors
    and Explain share "direction") each draw their own widget, `widget_key`, seeded from `key` on every
    run and copied back on change: two different widgets bound to one key lose its value when a session
    starts on one page and moves to the other.
    """
    widget_key = widget_key or f"{key}_picker"
    st.session_state[widget_key] = st.session_state[key]
    described = "; ".join(f"**{d.label}**: {d.description}" for d in DIRECTIONS.values())
    return st.segmented_control(
        label,
        list(DIRECTIONS),
        format_func=lambda name: DIRECTIONS[name].label,
        required=True,
        key=widget_key,
        on_change=_keep,
        args=(key, widget_key),
        help=f"Which output the quadratic form computes. {described}.",
    )


def view_picker(key: str) -> str:
    """A segmented control over core.directions.VIEWS: the bias-free block or the whole augmented matrix."""
    described = "; ".join(f"**{v.label}**: {v.description}" for v in VIEWS.values())
    return st.segmented_control(
        "View of the matrix",
        list(VIEWS),
        format_func=lambda name: VIEWS[name].label,
        required=True,
        key=key,
        persist_state="session",
        help=f"Which matrix the spectrum below decomposes. {described}.",
    )


def bounded_slider(label: str, low: int, high: int, key: str, **kwargs: Any) -> int:
    """An integer slider whose range follows the model on screen.

    The student's value (st.session_state[key]) is clamped into [low, high] first, so a smaller
    model never meets a value above its maximum; when the range is one value, a caption says so
    (a slider cannot have equal ends) and the value is kept as it is.
    """
    ss = st.session_state
    value = min(max(int(ss.get(key, low)), low), high)
    if low == high:
        st.caption(f"{label}: {low} (the only choice for this model)")
        return low
    ss[key] = value
    return st.slider(label, low, high, key=key, persist_state="session", **kwargs)


# --- readable on a projector, by every student -------------------------------------------------

# Captions default to the text colour at opacity 0.6, #787f89 on white (4.0:1); #475569 at full
# opacity is 7.6:1 on white and 6.9:1 on the sidebar's #f1f5f9 (WCAG 2.1 AA asks 4.5:1). A wide
# formula's KaTeX box scrolls sideways, a scroll region no keyboard can reach: it is shown whole
# instead, and so is a long line of code (wrapped).
STYLE = """
[data-testid="stCaptionContainer"] { color: #475569 !important; opacity: 1 !important; }
.katex-display { overflow: visible !important; }
pre { white-space: pre-wrap !important; overflow: visible !important; overflow-wrap: anywhere; }
[data-testid="stImage"] img[style*="px"] { image-rendering: pixelated; }
[data-testid="stImageContainer"] { max-width: 100%; }
[data-testid="stImage"] img { max-width: 100% !important; height: auto; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
[data-testid="stButtonGroup"] div { flex-wrap: wrap; }
[class*="st-key-formula_"] { container-type: inline-size; text-align: center; }
[class*="st-key-formula_"] .katex { font-size: min(1.15em, 4cqi); }
"""
# (Images and formulas never grow past their column: a 448 px image in a 238 px projector column covered the chart
# beside it; `latex` formulas scale with their column's width, a container query.)
# The pixelated rule: an image given a width in pixels is a 28×28 pixel figure sent at one PNG pixel per MNIST pixel
# (render.figures.Figure.screen_png), which the browser scales up with nearest neighbours, as render.charts would. A
# heatmap is shown at its own size (`width="content"`, a width in %), so the rule leaves it alone.
# Projector mode: larger type everywhere (Streamlit sizes text in rem), for the back row.
PROJECTOR_STYLE = """
html { font-size: 22px !important; }
[data-testid="stMainBlockContainer"] { padding-top: 2.75rem; }
"""
PROJECTOR_SCALE = 2  # images twice as large: a 28×28 eigenvector at 8 screen pixels per pixel or more


# On a phone the sidebar covers 300 of 390 px and Streamlit leaves it open after a tap on a page link: close it
# as a tap on its own close button would (installed once per browser tab; narrow screens only).
CLOSE_SIDEBAR_JS = """
if (!window.__closeSidebarAfterNavigation) {
  window.__closeSidebarAfterNavigation = true;
  document.addEventListener('click', (event) => {
    if (window.innerWidth >= 768) return;
    const link = event.target.closest('[data-testid="stSidebar"] a[href]');
    if (!link) return;
    setTimeout(() => {
      const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
      const sidebar = document.querySelector('[data-testid="stSidebar"]');
      if (close && sidebar && sidebar.getAttribute('aria-expanded') !== 'false') close.click();
    }, 50);
  }, true);
}
"""


def styles() -> None:
    """The app's style sheet (contrast fixes, and projector mode when on), once per script run."""
    css = STYLE + (PROJECTOR_STYLE if st.session_state.get("projector") else "")
    st.html(f"<style>{css}</style>")
    st.sidebar.html(f"<script>{CLOSE_SIDEBAR_JS}</script>", unsafe_allow_javascript=True)  # no gap in the page


def projector_toggle() -> None:
    """The sidebar switch for projector mode (kept in the URL as projector=true)."""
    st.sidebar.toggle(
        "Projector mode",
        key="projector",
        persist_state="session",
        help="Larger type, images twice the size and thicker chart lines, so the back row of a classroom can read "
        "a 28×28 eigenvector. Kept in the address, so a shared link opens in projector mode too.",
    )


def px(width: int) -> int:
    """An image width, doubled in projector mode."""
    return width * PROJECTOR_SCALE if st.session_state.get("projector") else width


def cells(n: int) -> list[Any]:
    """n side-by-side places for images: one row, or rows of two in projector mode (twice the width)."""
    if not st.session_state.get("projector"):
        return list(st.columns(n))
    return [cell for _ in range(0, n, 2) for cell in st.columns(2)][:n]


@st.cache_data(max_entries=256, show_spinner=False)
def _live_curve_spec(history: tuple[Any, ...], metric: str, projector: bool) -> dict[str, Any]:
    from render import charts  # altair: only once a run is drawn

    chart = charts.training_curve(history, metric)
    return (_projected(chart) if projector else chart).to_dict(validate=False)  # see `altair`


def live_curve(history: tuple[Any, ...], metric: str) -> None:
    """A training curve that is redrawn once a second while a run trains (app_pages/train.py's fragment): its
    Vega-Lite spec is built (unvalidated, see `altair`) once per epoch, not on every redraw, so the fragment stays
    light and the training thread keeps the interpreter (the GIL) to itself."""
    spec = _live_curve_spec(history, metric, bool(st.session_state.get("projector")))
    st.vega_lite_chart(spec, width="stretch")


def _projected(chart: Any) -> Any:
    """An Altair chart as drawn in projector mode: larger labels, thicker lines and points."""
    return (
        chart.configure_axis(labelFontSize=18, titleFontSize=20)
        .configure_legend(labelFontSize=18, titleFontSize=20)
        .configure_title(fontSize=22)
        .configure_line(strokeWidth=5)
        .configure_rule(strokeWidth=4)
        .configure_point(size=200)
        .configure_circle(size=200)
    )


def outages(where) -> None:
    """A warning for each outage of the model store or the room's database (ui.resources.outages): what is
    wrong and what will not survive it. Drawn after the page (torch is loaded by then), above it (`where`)."""
    from ui import resources  # torch loads with it: the page's text is on screen first

    for problem in resources.outages():
        where.warning(problem, icon=":material/cloud_off:")
