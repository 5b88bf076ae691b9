"""core.charts' figures for the Explain, Truncation and compare views: the data behind each chart."""

from __future__ import annotations

import numpy as np
import pytest

from core import charts
from core.grid import load_index


def data(chart) -> list[dict]:
    """Rows of every layer's inline data (Altair keeps a pandas frame per layer)."""
    layers = getattr(chart, "layer", None) or [chart]
    rows = []
    for layer in layers:
        rows += layer.data.to_dict("records")
    return rows


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


def test_cos_vs_weight_decay_reads_the_grid_index():
    rows = list(load_index().values())
    chart = charts.cos_vs_weight_decay(rows, selected_threshold=0.3)
    df = chart.data
    assert len(df) == len(rows) == 15
    assert df["selected"].sum() == 5, "the chosen threshold's line is drawn thicker"
    assert set(df["threshold"]) == {"τ = 0.30", "τ = 0.40", "τ = 0.50"}
    seed_row = df[(df["threshold"] == "τ = 0.40") & (df["weight decay"] == 1.0)].iloc[0]
    seed_entry = next(r for r in rows if r["threshold"] == 0.4 and r["weight_decay"] == 1.0)
    assert seed_row["|cos|"] == pytest.approx(seed_entry["top_cos"]["true_minus_false"])
    assert seed_row["|cos|"] >= 0.8, "Figure 6: the seed's top True − False eigenvector is the target"
