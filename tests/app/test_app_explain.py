"""Step 5 · Explain, driven with AppTest: test images, misclassified ones, uploads, the drawing canvas."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from core.explain import explain, misclassified_indices
from tests.app.test_app import assert_clean, open_page
from ui import resources

EXPLAIN = "app_pages/explain.py"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def metrics(at) -> dict[str, float]:
    return {m.label: float(m.value) for m in at.metric}


def model_output(at) -> float:
    return next(v for k, v in metrics(at).items() if k.startswith("Model's forward pass"))


def assert_exact_split(at) -> None:
    values = metrics(at)
    total = next(v for k, v in values.items() if k.startswith("Σ over all"))
    assert total == pytest.approx(model_output(at), abs=1e-3)
    assert abs(values["Difference: Σ − model"]) < 1e-9, "the eigenvector terms add up to the logit"
    assert abs(values["Difference: parts − model"]) < 1e-9, "so do quadratic + linear + constant"


def bar_chart_spec(at) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("vega_lite_chart") if "contribution" in c.proto.spec)


def upload(at, name: str, data: bytes):
    at.segmented_control(key="explain_source").set_value("upload").run()
    return at.file_uploader(key="explain_upload").clear().upload(name, data, "image/png").run()


def test_a_test_image_is_explained_exactly():
    at = open_page(EXPLAIN)
    assert_clean(at)
    at.number_input(key="explain_index").set_value(0).run()
    seed = resources.seed_model()
    expected = explain(seed.model, resources.mnist().test_x[0], "true_minus_false")
    assert model_output(at) == pytest.approx(expected.model_output, abs=1e-4)
    assert_exact_split(at)
    spec = bar_chart_spec(at)
    assert "tooltip" in json.dumps(spec) and "#b2182b" in json.dumps(spec), "tooltips, red for negative terms"
    shown = at.slider(key="explain_top").value
    row = next(i for i in at.image if len(i.value) == shown + 1)
    assert row.captions[0] == "the input" and row.captions[1].startswith("#"), "the input beside its eigenvectors"
    assert any("Large contributions cancel" in i.value for i in at.info)
    assert any("are the biases' ± pair, the model's affine part" in i.value for i in at.info), "named for what it is"

    at.segmented_control(key="explain_direction").set_value("true").run()
    assert model_output(at) == pytest.approx(
        explain(seed.model, resources.mnist().test_x[0], "true").model_output, abs=1e-4
    )
    assert any("logit₁ + 1" in m.label for m in at.metric)


def test_random_misclassified_picks_a_mistake():
    at = open_page(EXPLAIN)
    at.button(key="explain_misclassified").click().run()
    assert_clean(at)
    index = at.number_input(key="explain_index").value
    seed, data = resources.seed_model(), resources.mnist()
    wrong = misclassified_indices(seed.model, data.test_x, resources.labels(seed.config)[1])
    assert index in wrong
    assert any("a mistake" in m.value for m in at.markdown)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("wide.png", png(np.zeros((30, 40), np.uint8)), "it must be 28x28"),
        ("notes.png", b"these are not the pixels you are looking for", "not a PNG image"),
        ("red.png", png(np.dstack([np.full((28, 28), 200, np.uint8), np.zeros((28, 28, 2), np.uint8)])), "colour"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(1_100_000), "at most 1 MB"),
    ],
    ids=["wrong size", "not an image", "colour", "over 1 MB"],
)
def test_a_bad_upload_gets_a_clear_message(name, data, message):
    at = upload(open_page(EXPLAIN), name, data)
    assert not at.exception
    assert len(at.error) == 1 and f"Can't use `{name}`" in at.error[0].value and message in at.error[0].value
    assert not at.metric, "no explanation of an unusable image"


def test_a_good_upload_is_explained_and_resizing_is_opt_in():
    digit = resources.mnist().test_x[7].numpy()
    at = upload(open_page(EXPLAIN), "seven.png", png(digit))
    assert_clean(at)
    expected = explain(resources.seed_model().model, digit, "true_minus_false")
    assert model_output(at) == pytest.approx(expected.model_output, abs=1e-4), "28×28 pixels are used as they are"
    assert_exact_split(at)

    big = np.zeros((120, 90), np.uint8)
    big[20:100, 40:52] = 255  # a thick "1", four times MNIST's size
    at = upload(at, "one.png", png(big))
    assert "it must be 28x28" in at.error[0].value and "resize" in at.error[0].value
    at.checkbox(key="explain_resize").check().run()
    assert_clean(at)
    assert_exact_split(at)
    assert any("one.png (resized like MNIST)" in (i.captions or [""])[0] for i in at.image)

    at.switch_page("app_pages/tensor.py").run()
    at.switch_page(EXPLAIN).run()
    assert_clean(at)
    assert at.segmented_control(key="explain_source").value == "upload"
    assert any("one.png" in (i.captions or [""])[0] for i in at.image), "the upload outlives a page switch"


def test_the_drawing_canvas_is_offered_or_its_absence_explained(monkeypatch):
    at = open_page(EXPLAIN)
    at.segmented_control(key="explain_source").set_value("draw").run()
    assert_clean(at)
    assert [c.proto.component_name for c in at.get("bidi_component")] == [
        "streamlit-drawable-canvas.streamlit_drawable_canvas"
    ], "the drawing canvas is on the page"
    assert any("Draw a digit" in i.value for i in at.info)

    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", None)  # as if it failed to import
    at.run()
    assert_clean(at)
    assert any("streamlit-drawable-canvas" in i.value and "upload a PNG instead" in i.value for i in at.info)
    at.segmented_control(key="explain_source").set_value("test").run()
    assert_clean(at)
    assert at.metric, "the other inputs still work"
