"""render.charts: the colour maths of the image renderers, and the data behind each Altair chart
(the Eigenvectors, Explain, Truncation and compare views too)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from core.findings import DecayRow
from core.train import EpochMetrics
from render import charts


def metrics(epoch: int, epochs: int = 10) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch,
        epochs=epochs,
        train_loss=1.0 / epoch,
        train_acc=0.9,
        val_loss=0.5 / epoch,
        val_acc=0.95,
        seconds=epoch * 0.1,
        lr=1e-3,
    )


def test_diverging_colours_are_centred_and_symmetric():
    rgb = charts.diverging_rgb(np.array([-2.0, 0.0, 2.0]))
    assert rgb.tolist() == [[103, 0, 31], [247, 247, 247], [5, 48, 97]], "dark red, white at 0, dark blue"
    anchors = np.arange(-5, 6) / 5  # with max|v| = 1 these land exactly on the 11 palette colours
    assert np.array_equal(charts.diverging_rgb(anchors), charts.RDBU.astype(np.uint8))
    assert np.array_equal(charts.diverging_rgb(np.array([-5.0, 0.25]), vmax=0.5)[0], [103, 0, 31]), "clipped"


def test_diverging_image_handles_zeros_nan_and_tensors_needing_grad():
    assert np.all(np.asarray(charts.diverging_image(np.zeros((28, 28)))) == 247)
    values = torch.randn(28, 28, requires_grad=True)
    image = charts.diverging_image(values, scale=3)
    assert image.size == (84, 84) and image.mode == "RGB"
    with_nan = np.ones((28, 28))
    with_nan[0, 0] = np.nan
    assert np.asarray(charts.diverging_image(with_nan, scale=1))[0, 0].tolist() == [247, 247, 247]


def test_digit_image_is_upscaled_with_nearest_neighbours():
    digit = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    image = np.asarray(charts.digit_image(torch.from_numpy(digit), scale=4))
    assert image.shape == (112, 112)
    assert np.array_equal(image[::4, ::4], digit) and np.array_equal(image[3::4, 3::4], digit)


def test_similarity_histogram_counts_every_image_and_marks_the_threshold():
    rng = np.random.default_rng(0)
    target, inverse = rng.uniform(0, 1, 5000), rng.uniform(0, 0.6, 5000)
    chart = charts.similarity_histogram(target, inverse, threshold=0.4, include_inverse=False)
    bars, rule = chart.layer[0].data, chart.layer[1].data
    assert bars.groupby("series")["images"].sum().tolist() == [5000, 5000]
    assert "cos(x, 1 − target) (ignored)" in set(bars["series"])
    assert rule["threshold"].tolist() == [0.4]
    chart.to_dict()  # a valid Vega-Lite spec


def test_training_curve_has_both_splits_per_epoch_and_spans_all_planned_epochs():
    history = [metrics(e) for e in (1, 2, 3)]
    chart = charts.training_curve(history, "loss")
    assert len(chart.data) == 6 and set(chart.data["split"]) == {"train (noisy inputs)", "validation (test set)"}
    assert chart.data["loss"].tolist()[:2] == [1.0, 0.5]
    assert chart.to_dict()["encoding"]["x"]["scale"]["domain"] == [1, 10]
    assert charts.training_curve(history, "accuracy").data["accuracy"].tolist()[:2] == [0.9, 0.95]


def test_matrix_heatmap_shows_every_entry_or_the_first_block_and_the_bias():
    small = charts.matrix_heatmap(np.eye(65), "B")
    assert len(small.data) == 65 * 65
    big = np.arange(1025 * 1025, dtype=float).reshape(1025, 1025)
    shown = charts.matrix_heatmap(big, "B").data
    assert len(shown) == 65 * 65 and shown["row"].max() == 1024 and 64 not in set(shown["row"])
    assert shown.loc[(shown["row"] == 1024) & (shown["col"] == 3), "value"].item() == big[1024, 3]
    spec = charts.matrix_heatmap(np.diag(np.r_[np.full(64, 0.1), 100.0]), "W_l′").to_dict()
    assert spec["encoding"]["color"]["scale"]["domain"][1] < 100, "the lone large entry is clipped"


def test_pixel_heatmap_has_one_hoverable_cell_per_pixel():
    chart = charts.pixel_heatmap(np.arange(784.0), "u₀")
    assert len(chart.data) == 784 and {"row", "column", "value"} <= set(chart.data)
    assert chart.data.loc[(chart.data["row"] == 1) & (chart.data["column"] == 2), "value"].item() == 30.0


@pytest.mark.parametrize("side, indices", [("top", [0, 1, 2]), ("bottom", [64, 63, 62])])
def test_eigenspectrum_highlights_the_k_extreme_eigenvalues(side, indices):
    eigenvalues = np.linspace(1.0, -1.0, 65)  # descending, as core.eigen.decompose returns them
    chart = charts.eigenspectrum(eigenvalues, k=3, side=side)
    data = chart.layer[2].data
    assert len(data) == 20
    assert data.loc[data["highlighted"], "index"].tolist() == indices
    assert data.loc[data["highlighted"], "eigenvalue"].tolist() == eigenvalues[indices].tolist()
    chart.to_dict()


def data(chart) -> list[dict]:
    """Rows of every dataset the chart's spec carries (a pandas frame per layer, or named datasets)."""
    return [row for rows in chart.to_dict()["datasets"].values() for row in rows]


def test_a_known_spec_is_what_the_chart_converts_to():
    values = np.array([3.0, -5.0, 0.5])
    chart = charts.contribution_bars([1, 0], values, values, values, rest=0.5, n_rest=1)
    assert charts.known_spec(chart) == chart.to_dict(validate=False)
    assert charts.known_spec(charts.eigenspectrum(torch.linspace(-1, 2, 40), 3, "top")) is None, "not kept: converted"


def test_contribution_bars_add_up_and_colour_by_sign():
    contributions = np.array([3.0, -5.0, 0.5, -0.25, 0.1])
    eigenvalues = np.array([2.0, 1.0, 0.5, -0.5, -2.0])
    projections = np.array([1.2, -2.0, 1.0, 0.7, 0.2])
    chart = charts.contribution_bars(
        [1, 0], contributions, eigenvalues, projections, rest=float(contributions[[2, 3, 4]].sum()), n_rest=3
    )
    bars = [row for row in data(chart) if "term" in row]
    assert [b["term"] for b in bars] == ["#1", "#0", "3 others"]
    assert [b["sign"] for b in bars] == ["negative", "positive", "others (sum)"]
    assert sum(b["contribution"] for b in bars) == pytest.approx(contributions.sum())
    assert bars[0]["eigenvalue"] == 1.0 and bars[0]["projection"] == -2.0
    spec = chart.to_dict()
    colours = spec["layer"][0]["encoding"]["color"]["scale"]["range"]
    assert colours == [charts.BLUE, charts.RED, charts.GREY]
    assert {t["field"] for t in spec["layer"][0]["encoding"]["tooltip"]} >= {"contribution", "eigenvalue", "projection"}


def test_contribution_bars_without_the_rest():
    chart = charts.contribution_bars([0], np.array([1.0]), np.array([1.0]), np.array([1.0]), rest=0.0, n_rest=0)
    assert [row["term"] for row in data(chart) if "term" in row] == ["#0"]


def test_truncation_curve_has_one_line_per_mode_and_the_reference():
    k = np.arange(4)
    chart = charts.truncation_curve(
        k, {"class_logits": [0.5, 0.5, 0.8, 0.9], "true_minus_false": [0.5, 0.5, 0.9, 0.9]}, full_model=0.9
    )
    rows = data(chart)
    lines = [row for row in rows if "mode" in row]
    assert len(lines) == 8 and {row["mode"] for row in lines} == set(charts.TRUNCATION_MODES.values())
    reference = next(row for row in rows if "full model" in row)
    assert reference["full model"] == 0.9 and reference["label"] == "full model 90.0%" and reference["k"] == 3


def decay_rows() -> list[tuple[float, DecayRow]]:
    """(threshold, row) pairs of a 3 × 5 grid with made-up numbers that tell the rows apart."""
    return [
        (t, DecayRow(wd, 0.5 + t / 10, 0.6 + t / 10 + wd / 100, 0.1, 0.95, 0.2 + wd / 10, 10 - 2 * i))
        for t in (0.3, 0.4, 0.5)
        for i, wd in enumerate((0.0, 0.1, 0.5, 1.0, 2.0))
    ]


def test_the_grid_chart_draws_each_models_cos_and_top_share():
    chart = charts.grid_concentration(decay_rows(), selected_threshold=0.3)
    df = chart.data
    assert len(df) == 2 * 15, "two measures per model"
    assert df["selected"].sum() == 2 * 5, "the chosen threshold's lines are drawn thicker"
    assert set(df["threshold"]) == {"τ = 0.30", "τ = 0.40", "τ = 0.50"}
    one = df[(df["threshold"] == "τ = 0.40") & (df["weight decay"] == 1.0)]
    by_measure = dict(zip(one["measure"], one["value"], strict=True))
    assert by_measure == {
        charts.GRID_MEASURES["bias_free_cos"]: pytest.approx(0.6 + 0.04 + 0.01),
        charts.GRID_MEASURES["top_share"]: pytest.approx(0.2 + 0.1),
    }, "the bias-free |cos| and the top share, not the augmented |cos|"
    assert set(one["eigenvectors for 90 %"]) == {4}


def every_chart() -> dict[str, object]:
    """One chart of every builder, with the data the pages give them."""
    history = [metrics(e) for e in range(1, 4)]
    values = np.linspace(3.0, -3.0, 65)
    point = {"weight decay": 1.0, "|cos|": 0.9, "threshold": 0.4, "who": "a", "when": "now", "settings": "s"}
    return {
        "similarity_histogram": charts.similarity_histogram(np.random.rand(100), np.random.rand(100), 0.4),
        "training_curve": charts.training_curve(history, "loss"),
        "matrix_heatmap": charts.matrix_heatmap(np.eye(65), "B"),
        "pixel_heatmap": charts.pixel_heatmap(np.arange(784.0), "u₀"),
        "eigenspectrum": charts.eigenspectrum(values, 3, "bottom"),
        "contribution_bars": charts.contribution_bars([0, 1], values, values, values, 0.5, 63),
        "truncation_curve": charts.truncation_curve([0, 1, 2], {"class_logits": [0.5, 0.8, 0.9]}, 0.9),
        "grid_concentration": charts.grid_concentration(decay_rows(), 0.4),
        "board_scatter": charts.board_scatter([{**point, "validation accuracy": 0.95, "kind": "precomputed grid"}]),
    }


@pytest.mark.parametrize("name", every_chart())
def test_every_chart_is_valid_vega_lite(name):
    """The pages send charts unvalidated (ui.widgets.altair: validation cost every run 20-40 ms a chart);
    here each builder's chart is validated against the Vega-Lite schema, as st.altair_chart did."""
    chart = every_chart()[name]
    spec = chart.to_dict(validate=True)  # raises on a spec Vega-Lite would reject
    assert spec == chart.to_dict(validate=False), "validation changes nothing that is sent"
    assert "config" not in spec, "no default view size (theme 'none', as Streamlit draws Altair charts)"


def test_a_chart_is_built_once_per_content_of_its_data():
    values = torch.linspace(-1, 2, 40)
    first = charts.eigenspectrum(values, 3, "top")
    assert charts.eigenspectrum(values.clone(), 3, "top") is first, "equal data: the same chart again"
    assert charts.eigenspectrum(values, 4, "top") is not first
    assert charts.eigenspectrum(values + 1e-6, 3, "top") is not first, "any change in the data: a new chart"
    assert charts.eigenspectrum(values.double(), 3, "top") is not first, "another dtype: a new chart"


def test_a_builder_with_an_argument_it_cannot_key_builds_afresh():
    built = []

    @charts.reused
    def builder(rows):
        built.append(rows)
        return object()

    assert builder([{"a": 1}]) is builder([{"a": 1}]), "dicts and lists are keyed by content"
    unhashable = [{1, 2}]  # a set inside: no content key
    assert builder(unhashable) is not builder(unhashable)
    assert len(built) == 3


def test_the_spec_sent_is_made_once_per_chart_and_projector_mode():
    from ui import widgets

    chart = charts.eigenspectrum(torch.linspace(-1, 2, 40), 3, "top")
    plain = widgets._spec_parts(chart, projector=False)
    assert widgets._spec_parts(chart, projector=False) is plain
    text, datasets = plain
    assert "datasets" not in text and datasets and all(isinstance(data, bytes) for data in datasets.values())
    spec = chart.to_dict(validate=False)
    assert json.loads(text) == {key: value for key, value in spec.items() if key != "datasets"}
    assert sorted(datasets) == sorted(spec["datasets"]), "every dataset, as Arrow bytes"
    for name, data in datasets.items():
        assert pa.ipc.open_stream(data).read_all().to_pylist() == spec["datasets"][name], "the same rows"
    projected, _ = widgets._spec_parts(chart, projector=True)
    assert projected != text and '"labelFontSize": 18' in projected


def test_a_dataset_becomes_arrow_column_by_column_over_every_row():
    from ui import widgets

    rows = [{"a": 1}, {"a": 1.5, "b": "x"}, {"b": None}]  # a key the first row lacks; ints and floats mixed
    table = pa.ipc.open_stream(widgets._arrow_bytes(rows)).read_all()
    assert table.column_names == ["a", "b"]
    assert table.to_pylist() == [{"a": 1.0, "b": None}, {"a": 1.5, "b": "x"}, {"a": None, "b": None}]
    assert str(table.schema.field("a").type) == "double"
    mixed = [{"a": 1}, {"a": "one"}]  # no single Arrow type: Streamlit's own conversion takes it
    assert pa.ipc.open_stream(widgets._arrow_bytes(mixed)).read_all().num_rows == 2
