"""Figures for the app: Altair charts with tooltips, and fast numpy -> PIL renderers for images.

No Streamlit here either: every function takes arrays (numpy, or CPU torch tensors) or core records
and returns an `alt.Chart` or a `PIL.Image`; the Streamlit pages only place them. Diverging colours
follow the seed's plotly "RdBu" centred at 0: negative red, positive blue, limits ±max|v|.
Vega's "redblue" scheme is the same ColorBrewer palette, so images and Altair heatmaps agree.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import altair as alt
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from PIL import Image

if TYPE_CHECKING:
    from core.findings import DecayRow
    from core.lesson import Tally
    from core.train import EpochMetrics

# ColorBrewer RdBu, 11 classes, from the most negative (dark red) to the most positive (dark blue)
RDBU = np.array(
    [
        (103, 0, 31),
        (178, 24, 43),
        (214, 96, 77),
        (244, 165, 130),
        (253, 219, 199),
        (247, 247, 247),
        (209, 229, 240),
        (146, 197, 222),
        (67, 147, 195),
        (33, 102, 172),
        (5, 48, 97),
    ],
    dtype=np.float64,
)
# Altair's default theme only sets a 300 × 300 default view size, which Streamlit switches off (theme "none")
# while it converts a chart; ui.widgets.altair converts charts itself (without validation), and exports set
# their sizes (render.figures.chart_spec), so "none" everywhere draws exactly what st.altair_chart drew.
alt.theme.enable("none")
BLUE, RED, GREY = "#2166ac", "#b2182b", "#9aa5b1"
Builder = TypeVar("Builder", bound=Callable[..., Any])


def _content_key(value: Any) -> Hashable:
    """A hashable stand-in for a builder's argument, equal for equal contents (arrays by their bytes)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, dict):
        return ("dict", tuple((k, _content_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_content_key(v) for v in value))
    hash(value)  # anything else must be hashable itself (TypeError otherwise)
    return value


def reused(builder: Builder) -> Builder:
    """Build a chart once per content of its arguments and hand the same chart out again (an LRU of 256
    per builder: a chart is 20-35 KB here, so at most ~9 MB each).

    Building an Altair chart and turning it into Vega-Lite took 30-100 ms of a page's script, on every run
    of every page that shows one (issue 14: 30 students switching pages at once share one interpreter);
    ui.widgets.altair keeps each chart's spec, so a chart seen before costs neither. Callers must not
    change a chart in place (Altair's methods return new charts).
    """
    cache: OrderedDict[Hashable, Any] = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (_content_key(args), _content_key(tuple(sorted(kwargs.items()))))
        except TypeError:  # an argument without a content key: build it afresh
            return builder(*args, **kwargs)
        with lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        chart = builder(*args, **kwargs)
        with lock:
            cache[key] = chart
            if len(cache) > 256:
                cache.popitem(last=False)
        return chart

    return build  # type: ignore[return-value]


TARGET_COLOR, INVERSE_COLOR = "#2166ac", "#e08214"


def _array(values: ArrayLike) -> np.ndarray:
    """float64 numpy array from numpy or torch input (detached, so tensors needing grad work too)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
    return np.asarray(values, dtype=np.float64)


# --- images: the fast path for many small pictures ---------------------------------------


def symmetric_limit(values: ArrayLike) -> float:
    """max |v| (at least a tiny positive number, so an all-zero array still renders)."""
    return max(float(np.nanmax(np.abs(_array(values)))), 1e-12)


def diverging_rgb(values: ArrayLike, vmax: float | None = None) -> np.ndarray:
    """(..., 3) uint8 RdBu colours for `values`, white at 0, full colour at ±vmax (default max|v|)."""
    v = np.nan_to_num(_array(values))
    vmax = symmetric_limit(v) if vmax is None else vmax
    t = np.clip((v / vmax + 1) / 2, 0, 1) * (len(RDBU) - 1)  # 0 -> -vmax, len-1 -> +vmax
    i = np.minimum(t.astype(int), len(RDBU) - 2)
    f = (t - i)[..., None]
    return (RDBU[i] * (1 - f) + RDBU[i + 1] * f).round().astype(np.uint8)


def _upscale(pixels: np.ndarray, scale: int) -> Image.Image:
    return Image.fromarray(pixels.repeat(scale, axis=0).repeat(scale, axis=1))


def diverging_image(values: ArrayLike, vmax: float | None = None, scale: int = 4) -> Image.Image:
    """A 2-D array as an RdBu image centred at 0 (limits ±vmax), upscaled with nearest neighbours."""
    return _upscale(diverging_rgb(values, vmax), scale)


def digit_image(image: ArrayLike, scale: int = 4) -> Image.Image:
    """A uint8 MNIST digit (28, 28) as a grayscale image (white ink on black), upscaled."""
    return _upscale(np.asarray(image, dtype=np.uint8), scale)


# --- Altair charts ------------------------------------------------------------------------


@reused
def similarity_histogram(
    to_target: ArrayLike, to_inverse: ArrayLike, threshold: float, include_inverse: bool = True, bins: int = 100
) -> alt.LayerChart:
    """Histogram of cos(x, target) and cos(x, 1 - target) over [0, 1], with the threshold marked."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    inverse_name = "cos(x, 1 − target)" if include_inverse else "cos(x, 1 − target) (ignored)"
    frames = []
    for name, sims in (("cos(x, target)", to_target), (inverse_name, to_inverse)):
        counts, _ = np.histogram(_array(sims), bins=edges)
        frames.append(pd.DataFrame({"series": name, "start": edges[:-1], "end": edges[1:], "images": counts}))
    df = pd.concat(frames, ignore_index=True)
    bars = (
        alt.Chart(df)
        .mark_bar(opacity=0.6, binSpacing=0)
        .encode(
            x=alt.X("start:Q", title="cosine similarity", scale=alt.Scale(domain=[0, 1])),
            x2=alt.X2("end"),
            y=alt.Y("images:Q", title="number of images", stack=None),
            y2=alt.Y2Datum(0),
            color=alt.Color(
                "series:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(
                    domain=["cos(x, target)", inverse_name],
                    range=[TARGET_COLOR, INVERSE_COLOR if include_inverse else GREY],
                ),
            ),
            tooltip=[
                alt.Tooltip("series:N"),
                alt.Tooltip("start:Q", title="from", format=".2f"),
                alt.Tooltip("end:Q", title="to", format=".2f"),
                alt.Tooltip("images:Q"),
            ],
        )
    )
    marker = pd.DataFrame({"threshold": [threshold], "label": [f"threshold {threshold:.2f} → labelled true"]})
    rule = (
        alt.Chart(marker)
        .mark_rule(color="black", strokeDash=[5, 3], size=2)
        .encode(x=alt.X("threshold:Q"), tooltip=[alt.Tooltip("threshold:Q", format=".2f")])
    )
    text = (
        alt.Chart(marker)
        .mark_text(align="left", dx=5, dy=-6, baseline="top", fontWeight="bold")
        .encode(x=alt.X("threshold:Q"), y=alt.YValue(0), text=alt.Text("label:N"))
    )
    return alt.layer(bars, rule, text).properties(height=260)


@reused
def training_curve(
    history: Sequence[EpochMetrics], metric: Literal["loss", "accuracy"], epochs: int | None = None
) -> alt.Chart:
    """Train and validation loss (or accuracy) per epoch; the x axis spans all `epochs` planned."""
    rows = [
        (m.epoch, split, getattr(m, f"{prefix}_{'loss' if metric == 'loss' else 'acc'}"))
        for m in history
        for split, prefix in (("train (noisy inputs)", "train"), ("validation (test set)", "val"))
    ]
    df = pd.DataFrame(rows, columns=["epoch", "split", metric])
    epochs = epochs or (history[-1].epochs if history else 1)
    return (
        alt.Chart(df)
        .mark_line(point=len(history) <= 30)
        .encode(
            x=alt.X(
                "epoch:Q",
                title="epoch",
                scale=alt.Scale(domain=[1, max(epochs, 2)]),
                axis=alt.Axis(tickMinStep=1, format="d"),  # whole epochs: no 0.5 ticks
            ),
            y=alt.Y(
                f"{metric}:Q",
                title="cross-entropy loss" if metric == "loss" else "accuracy",
                scale=alt.Scale(zero=False),
            ),
            color=alt.Color(
                "split:N", title=None, legend=alt.Legend(orient="top"), scale=alt.Scale(range=[GREY, BLUE])
            ),
            tooltip=["epoch:Q", "split:N", alt.Tooltip(f"{metric}:Q", format=".4f")],
        )
        .properties(height=260)
    )  # no title: with a top legend, Streamlit's theme squeezes the plot


SNAPSHOT_SERIES = {"cos": "|cos| with the target", "top_share": "λ₀'s share of Σλ²"}


@reused
def snapshot_curves(rows: Sequence[tuple[float, float, float, float, int]], epochs: int) -> alt.Chart:
    """The verdict's top eigenvector while the model trains (core.snapshot): per snapshot `rows` of (epoch, |cos|,
    top share of Σλ², λ_0, eigenvectors for 90 %), two lines on one [0, 1] axis: does the top eigenvector look
    like the target, and is it alone in the spectrum (weight decay 3: one spike; 0: many features)."""
    records = [
        {
            "epoch": epoch,
            "series": SNAPSHOT_SERIES[name],
            "value": value,
            "cos": cos,
            "share": share,
            "eigenvalue": eigenvalue,
            "for_90pct": for_90pct,
        }
        for epoch, cos, share, eigenvalue, for_90pct in rows
        for name, value in (("cos", cos), ("top_share", share))
    ]
    return (
        alt.Chart(alt.Data(values=records))
        .mark_line(point=len(rows) <= 30)
        .encode(
            x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domain=[0, max(epochs, 1)])),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "series:N",
                title=None,
                legend=alt.Legend(orient="top", labelLimit=0),
                scale=alt.Scale(domain=list(SNAPSHOT_SERIES.values()), range=[BLUE, "#e08214"]),
            ),
            tooltip=[
                alt.Tooltip("epoch:Q", format=".2f"),
                alt.Tooltip("cos:Q", title="|cos| with the target", format=".3f"),
                alt.Tooltip("eigenvalue:Q", title="top eigenvalue λ₀", format="+.4f"),
                alt.Tooltip("share:Q", title="λ₀² / Σλ²", format=".1%"),
                alt.Tooltip("for_90pct:Q", title="eigenvectors for 90 % of Σλ²"),
            ],
        )
        .properties(height=240)
    )


def _shown_indices(n: int, max_size: int) -> np.ndarray:
    """All of 0..n-1, or the first max_size - 1 and the last (the bias row/column) if n is larger."""
    return np.arange(n) if n <= max_size else np.r_[np.arange(max_size - 1), n - 1]


MATRIX_MAX_SIZE, CLIP_QUANTILE = 65, 0.99  # every heatmap of a matrix, as an image or a chart


def shown_block(matrix: ArrayLike, max_size: int = MATRIX_MAX_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row indices, column indices, values) of what a heatmap shows: the whole matrix, or, larger than
    max_size, its first block and its last row and column (the bias), so a d_hidden of 1024 still draws."""
    m = _array(matrix)
    rows, cols = _shown_indices(m.shape[0], max_size), _shown_indices(m.shape[1], max_size)
    return rows, cols, m[np.ix_(rows, cols)]


def clip_limit(values: ArrayLike, quantile: float = CLIP_QUANTILE) -> float:
    """The colour limit of a heatmap: a quantile of |values|, so a few large entries (the constant 1, the
    bias row) do not wash out the rest."""
    return max(float(np.quantile(np.abs(_array(values)), quantile)), 1e-12)


def matrix_heatmap(
    matrix: ArrayLike,
    title: str,
    row_title: str = "row",
    col_title: str = "column",
    max_size: int = MATRIX_MAX_SIZE,
    clip_quantile: float = CLIP_QUANTILE,
    size: int = 340,
) -> alt.Chart:
    """A square RdBu heatmap centred at 0 with tooltips, colours clipped at a quantile of |values|
    (`clip_limit`); matrices larger than max_size show `shown_block`."""
    m = _array(matrix)
    rows, cols, block = shown_block(m, max_size)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    df = pd.DataFrame({"row": r.ravel(), "col": c.ravel(), "value": block.ravel()})
    limit = clip_limit(block, clip_quantile)
    if len(rows) < m.shape[0] or len(cols) < m.shape[1]:
        title += f" (first {len(rows) - 1} and last row/column of {m.shape[0]}×{m.shape[1]})"
    every, last = max(1, len(cols) // 8), int(cols[-1])
    axis = alt.Axis(
        labelExpr=f"datum.value % {every} == 0 || datum.value == {last} ? datum.label : ''", ticks=False, labelAngle=0
    )
    legend = alt.Legend(title=f"±{limit:.2g} (clipped)" if limit < symmetric_limit(m) else None)
    return (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("col:O", title=col_title, axis=axis),
            y=alt.Y("row:O", title=row_title, axis=axis),
            color=alt.Color(
                "value:Q", legend=legend, scale=alt.Scale(scheme="redblue", domain=[-limit, limit], clamp=True)
            ),
            tooltip=[
                alt.Tooltip("row:O", title=row_title),
                alt.Tooltip("col:O", title=col_title),
                alt.Tooltip("value:Q", format=".4f"),
            ],
        )
        .properties(title=title, width=size, height=size)
    )


def pixel_heatmap(values: ArrayLike, title: str, size: int = 320) -> alt.Chart:
    """A (28, 28) pixel map as a hoverable RdBu heatmap centred at 0 (tooltip: row, column, value)."""
    v = _array(values).reshape(28, 28)
    r, c = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    df = pd.DataFrame({"row": r.ravel(), "column": c.ravel(), "value": v.ravel()})
    vmax = symmetric_limit(v)
    hidden = alt.Axis(labels=False, ticks=False, title=None, domain=False)
    return (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("column:O", axis=hidden),
            y=alt.Y("row:O", axis=hidden),
            color=alt.Color("value:Q", title=None, scale=alt.Scale(scheme="redblue", domain=[-vmax, vmax])),
            tooltip=["row:O", "column:O", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(title=title, width=size, height=size)
    )


@reused
def eigenspectrum(eigenvalues: ArrayLike, k: int, side: Literal["top", "bottom"], n: int = 20) -> alt.LayerChart:
    """The n largest (top) or most negative (bottom) eigenvalues, the k extreme ones highlighted."""
    # The layout of the seed's plot_eigenspectrum; tooltips give the index used by the browser slider.
    values = _array(eigenvalues)  # descending
    count = min(n, len(values))
    index = np.arange(count) if side == "top" else len(values) - 1 - np.arange(count)
    df = pd.DataFrame(
        {"rank": np.arange(count), "index": index, "eigenvalue": values[index], "highlighted": np.arange(count) < k}
    )
    color = BLUE if side == "top" else RED
    x = alt.X(
        "rank:Q", title="rank from the top" if side == "top" else "rank from the bottom", axis=alt.Axis(tickMinStep=1)
    )
    y = alt.Y("eigenvalue:Q", title="eigenvalue λ")
    tooltip = [alt.Tooltip("index:Q", title="eigenvector #"), alt.Tooltip("eigenvalue:Q", format=".4f")]
    line = alt.Chart(df).mark_line(color=GREY).encode(x=x, y=y)
    points = (
        alt.Chart(df)
        .mark_circle(opacity=1)
        .encode(
            x=x,
            y=y,
            tooltip=tooltip,
            color=alt.ColorValue(GREY, condition={"test": "datum.highlighted", "value": color}),
            size=alt.SizeValue(30, condition={"test": "datum.highlighted", "value": 110}),
        )
    )
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#cbd2d9").encode(y="y:Q")
    title = "Largest eigenvalues" if side == "top" else "Most negative eigenvalues"
    return alt.layer(zero, line, points).properties(title=title, height=220)


@reused
def contribution_bars(
    indices: Sequence[int],
    contributions: ArrayLike,
    eigenvalues: ArrayLike,
    projections: ArrayLike,
    rest: float,
    n_rest: int,
) -> alt.LayerChart:
    """Horizontal bars of the largest eigenvector contributions lambda_i (v_i . x~)^2, blue > 0 > red.

    `indices` are eigenvector indices (largest |contribution| first); `contributions`,
    `eigenvalues` and `projections` are the full (H+1,) arrays from core.explain. The last bar,
    in grey, sums the `n_rest` other eigenvectors (`rest`), so the bars add up to the output.

    Every digit a student explains is a new chart, and right after training every student's first one
    is too, all at once: so the chart is a template per number of bars (`_contribution_template`, built
    once) given the rows as its named datasets, and its spec is that template's with the rows
    (`known_spec`), not a fresh Altair conversion (~40 ms here).
    """
    c, lam, p = _array(contributions), _array(eigenvalues), _array(projections)
    rows: list[dict[str, Any]] = [
        {
            "term": f"#{i}",
            "contribution": float(c[i]),
            "eigenvalue": float(lam[i]),
            "projection": float(p[i]),
            "sign": "positive" if c[i] >= 0 else "negative",
            "order": rank,
        }
        for rank, i in enumerate(int(i) for i in indices)
    ]
    if n_rest:
        rows.append(
            {
                "term": f"{n_rest} others",
                "contribution": float(rest),
                "eigenvalue": None,
                "projection": None,
                "sign": "others (sum)",
                "order": len(rows),
            }
        )
    template, template_spec = _contribution_template(len(rows))
    datasets = {"contributions": rows, "zero": [{"x": 0.0}]}
    chart = template.properties(datasets=datasets)
    _remember_spec(chart, {**template_spec, "datasets": datasets})
    return chart


@functools.lru_cache(maxsize=64)
def _contribution_template(n_bars: int) -> tuple[alt.LayerChart, dict[str, Any]]:
    """contribution_bars' chart for `n_bars` bars, its data named, not given; and its spec."""
    y = alt.Y(
        "term:N", title="eigenvector", sort=alt.SortField("order"), axis=alt.Axis(labelOverlap=False, labelLimit=90)
    )
    bars = (
        alt.Chart(alt.NamedData(name="contributions"))
        .mark_bar()
        .encode(
            x=alt.X("contribution:Q", title="contribution λᵢ (vᵢ·h̃)² to the output"),
            y=y,
            color=alt.Color(
                "sign:N",
                title=None,
                legend=alt.Legend(orient="top", labelLimit=0),
                scale=alt.Scale(domain=["positive", "negative", "others (sum)"], range=[BLUE, RED, GREY]),
            ),
            tooltip=[
                alt.Tooltip("term:N", title="eigenvector"),
                alt.Tooltip("contribution:Q", format=".4f"),
                alt.Tooltip("eigenvalue:Q", title="eigenvalue λᵢ", format=".4f"),
                alt.Tooltip("projection:Q", title="projection vᵢ·x̃", format=".4f"),
            ],
        )
    )
    zero = alt.Chart(alt.NamedData(name="zero")).mark_rule(color="#52606d").encode(x="x:Q")
    chart = alt.layer(bars, zero).properties(height=30 * n_bars + 90)  # autosize "fit": axes and legend inside
    return chart, chart.to_dict(validate=False)


_KNOWN_SPECS: OrderedDict[int, tuple[Any, dict[str, Any]]] = OrderedDict()  # id(chart) -> (chart, spec)
_KNOWN_SPECS_LOCK = threading.Lock()


def _remember_spec(chart: Any, spec: dict[str, Any]) -> None:
    """Keep a chart's Vega-Lite spec, made without converting the chart (the last 256 charts)."""
    with _KNOWN_SPECS_LOCK:
        _KNOWN_SPECS[id(chart)] = (chart, spec)
        if len(_KNOWN_SPECS) > 256:
            _KNOWN_SPECS.popitem(last=False)


def known_spec(chart: Any) -> dict[str, Any] | None:
    """The spec `_remember_spec` kept for this very chart (what chart.to_dict(validate=False) gives), or None."""
    with _KNOWN_SPECS_LOCK:
        kept = _KNOWN_SPECS.get(id(chart))
    return kept[1] if kept is not None and kept[0] is chart else None


TRUNCATION_MODES = {
    "class_logits": "each class logit keeps its top-k",
    "true_minus_false": "True − False keeps its top-k",
}


@reused
def truncation_curve(k: ArrayLike, accuracies: dict[str, ArrayLike], full_model: float) -> alt.LayerChart:
    """Accuracy against the number k of eigenvectors kept (largest |λ| first), one line per mode
    (keys of TRUNCATION_MODES), with the untruncated model's accuracy as a dashed reference line."""
    ks = _array(k).astype(int)
    df = pd.concat(
        [
            pd.DataFrame({"k": ks, "accuracy": _array(acc), "mode": TRUNCATION_MODES[mode]})
            for mode, acc in accuracies.items()
        ],
        ignore_index=True,
    )
    x = alt.X("k:Q", title="eigenvectors kept, largest |λ| first", scale=alt.Scale(domain=[0, int(ks.max())]))
    lines = (
        alt.Chart(df)
        .mark_line(point=alt.OverlayMarkDef(size=25))
        .encode(
            x=x,
            y=alt.Y("accuracy:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False)),
            color=alt.Color(
                "mode:N",
                title=None,
                legend=alt.Legend(orient="top", labelLimit=0),
                scale=alt.Scale(
                    domain=[TRUNCATION_MODES[m] for m in accuracies], range=[BLUE, INVERSE_COLOR][: len(accuracies)]
                ),
            ),
            tooltip=[
                alt.Tooltip("k:Q", title="eigenvectors kept"),
                alt.Tooltip("mode:N"),
                alt.Tooltip("accuracy:Q", format=".2%"),
            ],
        )
    )
    reference = pd.DataFrame(
        {"full model": [full_model], "label": [f"full model {full_model:.1%}"], "k": [int(ks.max())]}
    )
    rule = (
        alt.Chart(reference)
        .mark_rule(color="black", strokeDash=[5, 3], size=2)
        .encode(y="full model:Q", tooltip=[alt.Tooltip("full model:Q", format=".2%")])
    )
    text = (
        alt.Chart(reference)
        .mark_text(align="right", dy=-8, fontWeight="bold")
        .encode(x="k:Q", y="full model:Q", text="label:N")
    )
    return alt.layer(lines, rule, text).properties(height=320)


GRID_MEASURES = {"bias_free_cos": "|cos| with the target", "top_share": "λ₀'s share of Σλ²"}


@reused
def grid_concentration(rows: Sequence[tuple[float, DecayRow]], selected_threshold: float | None = None) -> alt.Chart:
    """The precomputed grid, from its models (core.findings.DecayRow, the bias-free True − False block): against
    weight decay, |cos| of the top eigenvector with the centred target (solid) and that eigenvalue's share of Σλ²
    (dashed), one colour per threshold; `rows` are (threshold, row) pairs."""
    df = pd.DataFrame(
        [
            {
                "threshold": f"τ = {threshold:.2f}",
                "weight decay": row.weight_decay,
                "measure": label,
                "value": getattr(row, name),
                "eigenvectors for 90 %": row.n_90,
                "validation accuracy": row.val_acc,
                "selected": selected_threshold is not None and abs(threshold - selected_threshold) < 1e-9,
            }
            for threshold, row in rows
            for name, label in GRID_MEASURES.items()
        ]
    ).sort_values(["threshold", "measure", "weight decay"])
    return (
        alt.Chart(df)
        .mark_line(point=alt.OverlayMarkDef(size=70))
        .encode(
            x=alt.X(
                "weight decay:Q", title="weight decay", scale=alt.Scale(domain=[0, float(df["weight decay"].max())])
            ),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "threshold:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(range=[TARGET_COLOR, INVERSE_COLOR, "#1b7837"]),
            ),
            strokeDash=alt.StrokeDash(  # named in the page's sentence above the chart and in the tooltip
                "measure:N", legend=None, scale=alt.Scale(domain=list(GRID_MEASURES.values()), range=[[1, 0], [6, 3]])
            ),
            detail="measure:N",
            strokeWidth=alt.StrokeWidthValue(1.5, condition={"test": "datum.selected", "value": 4}),
            tooltip=[
                "threshold:N",
                alt.Tooltip("weight decay:Q", format="g"),
                alt.Tooltip("measure:N"),
                alt.Tooltip("value:Q", format=".3f"),
                alt.Tooltip("eigenvectors for 90 %:Q"),
                alt.Tooltip("validation accuracy:Q", format=".1%"),
            ],
        )
        .properties(height=340)
    )


def board_scatter(points: Sequence[dict]) -> alt.LayerChart:
    """The class board: every model's |cos| against its weight decay, coloured by its threshold; points
    are core.board.points records, the class's models as dots, the precomputed grid as hollow squares."""
    base = alt.Chart(pd.DataFrame(points)).encode(
        x=alt.X("weight decay:Q", title="weight decay", scale=alt.Scale(zero=True)),
        y=alt.Y("|cos|:Q", title="|cos(u₀, target − mean)|", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color(
            "threshold:Q",
            title="threshold τ",
            scale=alt.Scale(range=[TARGET_COLOR, "#1b7837", INVERSE_COLOR]),
            legend=alt.Legend(orient="top", format=".2f"),
        ),
        tooltip=[
            alt.Tooltip("who:N"),
            alt.Tooltip("when:N"),
            alt.Tooltip("threshold:Q", title="threshold τ", format=".2f"),
            alt.Tooltip("weight decay:Q", format="g"),
            alt.Tooltip("|cos|:Q", format=".3f"),
            alt.Tooltip("validation accuracy:Q", format=".1%"),
            alt.Tooltip("settings:N"),
        ],
    )
    # aria=False: a layer with no point yet (nobody has trained) leaves an empty, unnamed graphics-symbol
    # group that axe flags; the chart's description names it, and the table above lists every point.
    grid = base.transform_filter("datum.kind == 'precomputed grid'").mark_square(
        size=90, filled=False, strokeWidth=2, aria=False
    )
    trained = base.transform_filter("datum.kind == 'trained in class'").mark_circle(size=130, opacity=0.9, aria=False)
    return alt.layer(grid, trained).properties(
        height=300,
        description="Scatter of every model on the board: weight decay against |cos| of its top eigenvector with "
        "the target, coloured by threshold; the same numbers are in the table above.",
    )


def lesson_tally(tally: Tally, answers: bool) -> alt.Chart:
    """Lesson mode on the class board: how many students predicted each choice of one step. With `answers`,
    a second bar per choice counts the students for whom it was the right answer (it depends on their screen)."""
    rows = [
        {"choice": choice, "order": i, "count": count, "what": "predicted"}
        for i, (choice, count) in enumerate(zip(tally.step.choices, tally.predicted, strict=True))
    ]
    if answers:
        rows += [
            {"choice": choice, "order": i, "count": count, "what": "right answer"}
            for i, (choice, count) in enumerate(zip(tally.step.choices, tally.right_for, strict=True))
        ]
    order = list(tally.step.choices)
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="students", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("choice:N", title=None, sort=order, axis=alt.Axis(labelLimit=360)),
            yOffset=alt.YOffset("what:N", sort=["predicted", "right answer"]),
            color=alt.Color(
                "what:N",
                title=None,
                scale=alt.Scale(domain=["predicted", "right answer"], range=[TARGET_COLOR, INVERSE_COLOR]),
                legend=alt.Legend(orient="top") if answers else None,
            ),
            tooltip=[alt.Tooltip("choice:N"), alt.Tooltip("what:N"), alt.Tooltip("count:Q", title="students")],
        )
        .properties(
            height=36 * len(order) * (2 if answers else 1),
            description=f"Bar chart of the room's predictions for “{tally.step.summary}”: "
            + "; ".join(f"{c}: {k}" for c, k in zip(tally.step.choices, tally.predicted, strict=True))
            + (
                ". Right answer on the students' screens: "
                + "; ".join(f"{c}: {k}" for c, k in zip(tally.step.choices, tally.right_for, strict=True))
                if answers
                else ""
            ),
        )
    )
