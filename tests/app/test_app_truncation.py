"""Step 6 · Truncation, driven with AppTest: the accuracy curve and its full-model reference."""

from __future__ import annotations

import pyarrow as pa
import pytest

from core.explain import misclassified_indices
from tests.app.test_app import assert_clean, open_page
from ui import resources

TRUNCATION = "app_pages/truncation.py"


def chart_data(chart) -> dict[str, list[dict]]:
    """The named datasets behind an Altair chart (sent as Arrow tables), as rows."""
    return {
        dataset.name: pa.ipc.open_stream(dataset.data.data).read_pandas().to_dict("records")
        for dataset in chart.proto.datasets
    }


def test_the_curve_and_the_full_model_reference():
    at = open_page(TRUNCATION)
    assert_clean(at)
    seed, data = resources.seed_model(), resources.mnist()
    test_labels = resources.labels(seed.config)[1]
    accuracy = 1 - len(misclassified_indices(seed.model, data.test_x, test_labels)) / len(test_labels)
    assert accuracy == pytest.approx(seed.history[-1].val_acc, abs=1e-9), "the badge's accuracy, too"

    full = next(m for m in at.metric if m.label.startswith("Full model"))
    assert full.value == f"{accuracy:.2%}"
    (chart,) = at.get("vega_lite_chart")
    rows = [row for table in chart_data(chart).values() for row in table]
    reference = [row["full model"] for row in rows if "full model" in row]
    assert reference == [pytest.approx(accuracy, abs=1e-9)], "the dashed line is the model's own accuracy"

    curve = [row for row in rows if "accuracy" in row]
    ks = sorted({row["k"] for row in curve})
    assert ks == list(range(seed.config.d_hidden + 2)), "k = 0 … all 65 eigenvectors"
    modes = {row["mode"] for row in curve}
    assert len(modes) == 2
    for mode in modes:
        by_k = {row["k"]: row["accuracy"] for row in curve if row["mode"] == mode}
        assert by_k[ks[-1]] == pytest.approx(accuracy, abs=1e-9), f"{mode}: keeping all eigenvectors is the model"
        assert max(by_k[k] for k in range(1, 9)) > accuracy - 0.01, "a handful of eigenvectors carry the model"
    share_true = float(test_labels.double().mean())
    k1 = next(row["accuracy"] for row in curve if row["k"] == 1 and row["mode"].startswith("True"))
    assert min(abs(k1 - share_true), abs(k1 - (1 - share_true))) < 1e-9, "k = 1: one constant answer for all"
    needed = [m.value for m in at.metric if m.label.startswith("Eigenvectors needed")]
    assert len(needed) == 2 and all(int(v.split()[0]) <= 8 for v in needed)
    text = " ".join(m.value for m in at.markdown)
    answer = "false" if abs(k1 - (1 - share_true)) < 1e-9 else "true"
    assert f"answers {answer} for every image" in text, "k = 1 is explained, from the numbers"
    curves = resources.truncation(seed.model_id, seed)
    top_only = next(m for m in at.metric if m.label.startswith("Top eigenvector alone"))
    assert top_only.value == f"{curves.top_only_calibrated:.2%}", "the threshold refit on the training images"
    constant = next(m for m in at.metric if m.label.startswith("Constant answer"))
    majority = int(resources.labels(seed.config)[0].double().mean() > 0.5)
    assert constant.label.endswith("true" if majority else "false")
    assert constant.value == f"{float((test_labels == majority).double().mean()):.2%}", "beside every accuracy"


def test_curves_are_cached_per_model(monkeypatch):
    at = open_page(TRUNCATION)
    calls = []
    original = resources.truncation_curves
    monkeypatch.setattr(resources, "truncation_curves", lambda *a, **k: calls.append(1) or original(*a, **k))
    at.run()
    assert calls == [], "the seed's curves come from the cache"
    at.switch_page("app_pages/eigenvectors.py").run()
    at.select_slider(key="grid_weight_decay").set_value(0.5).run()
    at.switch_page(TRUNCATION).run()
    assert_clean(at)
    full = next(m for m in at.metric if m.label.startswith("Full model"))
    assert full.value == f"{at.session_state['active'].history[-1].val_acc:.2%}"
