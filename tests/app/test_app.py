"""The Streamlit app, driven headless with streamlit.testing.v1.AppTest.

Each test opens its own session (its own st.session_state); st.cache_resource (MNIST, the model
registry) is shared by all of them, as by the students of one class on one server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.checkpoint import save_checkpoint
from core.config import Config
from core.eigen import decompose, top_eigenvector
from core.grid import grid_config
from core.identity import TrainedModel, config_id
from core.tensor import DIRECTIONS, augment
from server import memory
from server.registry import Bounds
from ui import resources

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 120  # seconds per script run: the first one loads MNIST and torch
HOME = "app_pages/home.py"
PAGES = {  # page -> (widget kind, key) pairs it must show
    HOME: [("page_link", None)],
    "app_pages/label.py": [
        ("number_input", "target_index"),
        ("slider", "threshold"),
        ("toggle", "include_inverse"),
        ("selectbox", "random_digit"),
        ("button", "random_target"),
    ],
    "app_pages/train.py": [
        ("slider", "weight_decay"),
        ("slider", "noise_std"),
        ("number_input", "epochs"),
        ("select_slider", "d_hidden"),
        ("select_slider", "lr"),
        ("number_input", "batch_size"),
        ("number_input", "seed"),
        ("toggle", "use_slice"),
        ("number_input", "n_train"),
        ("number_input", "n_test"),
        ("button", "train_button"),
        ("button", "stop"),
        ("download_button", "download_metrics"),
    ],
    "app_pages/tensor.py": [("segmented_control", "tensor_direction_picker"), ("number_input", "proof_offset")],
    "app_pages/eigenvectors.py": [
        ("segmented_control", "eig_direction"),
        ("segmented_control", "eig_matrix"),
        ("slider", "top_k"),
        ("slider", "eig_index"),
        ("select_slider", "grid_threshold"),
        ("select_slider", "grid_weight_decay"),
    ],
    "app_pages/explain.py": [
        ("segmented_control", "explain_source"),
        ("number_input", "explain_index"),
        ("button", "explain_misclassified"),
        ("segmented_control", "explain_direction"),
        ("slider", "explain_top"),
    ],
    "app_pages/truncation.py": [("metric", None)],
    "app_pages/class_board.py": [("dataframe", None), ("button", f"board_use_{config_id(grid_config(0.3, 0.0))}")],
}
SIDEBAR = [("download_button", "download_model"), ("file_uploader", "upload")]  # on every page
SMALL_RUN = {"n_train": 4096, "n_test": 1000, "batch_size": 512, "epochs": 2}


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page != HOME:
        at.switch_page(page).run()
    return at


def badge(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "-badge[" in m.value)


def badge_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Labels:"))


def percentages(at: AppTest) -> list[float]:
    return [float(m.value.rstrip("%")) for m in at.metric]


def set_training(at: AppTest, **values) -> AppTest:
    """Switch on the slice option, then set the Train page's inputs (a run between, like a user)."""
    at.toggle(key="use_slice").set_value(True).run()
    for key, value in values.items():
        at.number_input(key=key).set_value(value)
    return at.run()


def press_train(at: AppTest, key: str = "train_button", timeout: float = 120) -> AppTest:
    """Press Train (or Train again) and, like a student watching the page, rerun once the server's run ends."""
    at.button(key=key).click().run()
    if "training_job" in at.session_state:  # AppTest's session state has no .get
        job = at.session_state["training_job"]
        assert job.done.wait(timeout), f"the training run did not end within {timeout} s"
        at.run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_its_widgets(page):
    at = open_page(page)
    assert_clean(at)
    assert at.title, "every page opens with a title"
    assert page == HOME or any(e.label == "Why?" for e in at.expander), "its derivation waits in a Why? expander"
    assert "Pretrained seed checkpoint" in badge(at)
    assert any(e.label == "Show the code this page ran" for e in at.expander)
    assert not [c for c in at.code if "def " in c.value] or page == "app_pages/tensor.py", "closed: no code sent"
    at.session_state["show_code"] = True  # a click on the expander, which reruns the page
    if page == "app_pages/class_board.py":
        at.session_state["board_backdrop"] = True  # the precomputed models, each with its Use button
    at.run()
    assert any("def " in c.value for c in at.code), "the expander shows real source code"
    for kind, key in PAGES[page]:
        assert getattr(at, kind)(key=key) if key else getattr(at, kind), f"{kind} {key!r} missing on {page}"
    for kind, key in SIDEBAR:
        assert getattr(at.sidebar, kind)(key=key), f"sidebar {kind} {key!r} missing on {page}"


def test_the_server_tunes_glibcs_malloc_at_start_up():
    open_page(HOME)
    assert memory.tune_once.cache_info().currsize == 1, "the entry file tuned malloc (server.memory), once"


def test_threshold_changes_the_positive_fraction():
    at = open_page("app_pages/label.py")
    before = percentages(at)
    assert before == pytest.approx([46.2, 48.8], abs=0.1)  # the seed's labels: target 6, τ 0.4, inverse on
    at.slider(key="threshold").set_value(0.6).run()
    after = percentages(at)
    assert after[0] < before[0] and after[1] < before[1]
    assert at.get("vega_lite_chart"), "the histogram is drawn"
    assert len(at.image) == 1 + 2, "target preview, then one row of true and one of false examples"


def test_random_target_of_a_digit():
    at = open_page("app_pages/label.py")
    at.selectbox(key="random_digit").set_value(3).run()
    at.button(key="random_target").click().run()
    assert_clean(at)
    index = at.number_input(key="target_index").value
    assert int(resources.mnist().train_y[index]) == 3
    assert f"#{index}, a handwritten 3" in at.image[0].captions[0]


def test_empty_class_is_refused():
    at = open_page("app_pages/label.py")
    at.slider(key="threshold").set_value(1.0).run()
    assert "No image is labelled true" in at.error[0].value
    at.switch_page("app_pages/train.py").run()
    assert "No image is labelled true" in at.error[0].value and "refused" in at.error[0].value
    assert at.button(key="train_button").disabled


def test_training_on_a_slice_becomes_the_active_model():
    at = open_page("app_pages/train.py")
    set_training(at, **SMALL_RUN, seed=7)
    at.button(key="train_button").click().run()
    job = at.session_state["training_job"]  # the server trains it; the page follows the run
    assert at.button(key="train_button").disabled and not at.button(key="stop").disabled
    assert at.slider(key="weight_decay").disabled, "the settings describe the run until it ends"
    assert at.query_params["training"] == config_id(job.config), "a reload follows the run again"
    assert job.done.wait(120)
    at.run()
    assert_clean(at)
    assert "training" not in at.query_params
    assert "Training finished" in at.success[0].value
    assert "Your trained model" in badge(at)
    trained = at.session_state["active"]
    assert (trained.origin, trained.epochs_done) == ("trained", 2)
    assert len(at.get("vega_lite_chart")) == 3, "the top eigenvector per snapshot, loss and accuracy curves"
    assert trained.snapshots and trained.snapshots[-1].step > 0, "the run's snapshots travel with the model"
    assert resources.registry().get(trained.config) is trained, "shared with every session"

    # a bad config afterwards: a clear message, and the model just trained stays active
    at.number_input(key="batch_size").set_value(8192).run()
    assert "batch size 8192 is larger than the 4096 training images" in at.error[0].value
    assert at.button(key="train_button").disabled
    assert at.session_state["active"] is trained
    assert "Your trained model" in badge(at)

    # another student with the same settings gets that model at once, without training
    other = open_page("app_pages/train.py")
    set_training(other, **SMALL_RUN, seed=7)
    assert "already trained on this server" in other.info[0].value
    press_train(other)
    assert other.session_state["active"] is trained
    assert "Your active model was trained with exactly these settings" in other.info[0].value, "says what Train does"

    # a teacher who wants to show the training itself trains it again: a real run, the same model
    press_train(other, "train_again")
    assert_clean(other)
    assert "Training finished" in other.success[0].value
    assert other.session_state["active"] is trained, "deterministic: the registry's model, shared"
    assert len(other.get("vega_lite_chart")) == 3, "its snapshots per epoch, loss and accuracy"


def test_bad_config_keeps_the_pretrained_model():
    at = open_page("app_pages/train.py")
    set_training(at, n_train=1000, batch_size=2048)
    assert "batch size 2048 is larger than the 1000 training images" in at.error[0].value
    assert at.button(key="train_button").disabled
    assert at.session_state["active"].origin == "pretrained"


def test_stop_keeps_the_model_of_the_last_finished_epoch(running_job):
    at = open_page("app_pages/train.py")
    job = running_job(Config(epochs=5, n_train=2048, n_test=500, batch_size=512, seed=11))
    at.session_state["_session_token"], at.session_state["training_job"] = "student", job  # as Train leaves them
    at.run()
    assert at.get("progress"), "the page follows the run"
    at.button(key="stop").click().run()
    assert job.stop_requested.is_set(), "nobody else follows it: the server stops training it"
    assert "Training stopped after epoch 1 of 5" in at.warning[0].value
    assert "stopped after epoch 1 of 5" in badge(at)
    kept = at.session_state["active"]
    assert (kept.origin, kept.history) == ("stopped", job.history)
    assert "training_job" not in at.session_state


def test_upload_a_checkpoint_and_reject_garbage():
    at = open_page("app_pages/train.py")
    seed = resources.seed_model()
    data = save_checkpoint(seed.model, seed.config.replace(seed=5), list(seed.history))
    at.file_uploader(key="upload").upload("mine.safetensors", data).run()
    assert "Loaded `mine.safetensors`" in at.success[0].value
    assert "Your uploaded model" in badge(at) and "seed 5" in badge_caption(at)
    at.file_uploader(key="upload").clear().upload("bad.safetensors", b"\x80\x04 not a checkpoint").run()
    assert "Could not load `bad.safetensors`" in at.error[0].value
    assert at.session_state["active"].origin == "uploaded", "the previous model is kept"


def test_tensor_page_proves_the_identity():
    at = open_page("app_pages/tensor.py")
    assert_clean(at)
    error = float(at.metric[0].value)
    assert error < 1e-9, "x̃ᵀBx̃ reproduces logit + 1 to float64 round-off"
    table = at.dataframe[0].value
    assert len(table) == 6 and table["max |difference|"].max() < 1e-9


def heatmaps(at) -> dict[str, str]:
    """{caption: alt text} of the Tensor page's heatmap images (its test digits are captioned "test #…")."""
    return {img.caption: img.alt for element in at.image for img in element.proto.imgs if img.alt.startswith("Heat")}


def test_tensor_heatmaps_are_images_that_say_what_they_show_and_can_be_hovered():
    at = open_page("app_pages/tensor.py")
    assert not at.get("vega_lite_chart"), "images: a 65×65 Vega heatmap is 4,225 marks for the browser to lay out"
    shown = heatmaps(at)
    assert list(shown) == ["W_l′ (last column: b_l)", "W_r′ (last column: b_r)", f"B: {DIRECTIONS['true'].description}"]
    W_l = augment(resources.seed_model().model).W_l
    largest = W_l.flatten()[W_l.abs().argmax()].item()
    alt = shown["W_l′ (last column: b_l)"]
    assert "left weights W_l′, whose last column is b_l, 65×65" in alt and "red negative" in alt
    assert f"Largest entry {largest:+.3g}" in alt, "the numbers a student would hover for"
    at.segmented_control(key="tensor_direction_picker").set_value("true_minus_false").run()
    assert_clean(at)
    assert f"B: {DIRECTIONS['true_minus_false'].description}" in heatmaps(at), "the picker redraws B"
    at.toggle(key="tensor_hover").set_value(True).run()
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 3 and not heatmaps(at), "hoverable charts of W_l', W_r' and B instead"
    assert (
        json.loads(at.get("vega_lite_chart")[2].proto.spec)["title"]
        == f"B: {DIRECTIONS['true_minus_false'].description}"
    )


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_eigenvectors_page_shows_images_for_each_direction(direction):
    at = open_page("app_pages/eigenvectors.py")
    at.segmented_control(key="eig_direction").set_value(direction).run()
    assert_clean(at)
    k = at.slider(key="top_k").value
    rows = [image for image in at.image if len(image.value) > 1]
    assert [len(image.value) for image in rows] == [k, k], "top-k positive and negative eigenvectors"
    singles = [image.captions[0] for image in at.image if len(image.value) == 1]
    headline = direction == "true_minus_false"  # the punchline shows its bias-free top: the section does not repeat it
    assert singles[0] == "Target: image #6 (a 1)" and singles[1].startswith("Top eigenvector · λ"), "punchline first"
    assert len(singles) == 2 + (2 if headline else 3) + 2 * (direction == "true") + 1, (
        "the punchline (target, headline top), the section's tops and linear term (+ class 1's pair), the browsed one"
    )
    assert singles[-1].startswith("Eigenvector #0 of the bias-free block"), "browsing: an image with a colour bar"
    assert len(at.get("vega_lite_chart")) == 2, "two spectrum panels"
    seed = resources.seed_model()
    target = resources.mnist().train_x[seed.config.target_index]
    text = " ".join(m.value for m in at.markdown)
    for view, where in (("bias_free", "Top of the bias-free block"), ("augmented", "Top of the bias-augmented B")):
        exact = top_eigenvector(decompose(seed.model, direction, view), target).cos
        caption = next((c for c in singles if c.startswith(where)), None)
        if caption is None:  # the punchline's image: its number is in the verdict
            assert headline and view == "bias_free", f"{view}: no image"
            assert f"|cos| **{exact:.2f}**" in text, "the verdict quotes the headline's number"
        else:
            assert caption.endswith(f"|cos| {exact:.2f}"), view
        assert f"|cos| {exact:.2f}" in text, f"{view}: the finding quotes the number under the image"
        if direction == "true_minus_false":
            assert exact > 0.8, "Figure 6: the top True − False eigenvector is the target (0.85-0.92 for the seed)"


def test_browsing_an_eigenvector_index():
    at = open_page("app_pages/eigenvectors.py")
    assert at.slider(key="eig_index").max == 63, "the bias-free block (the default view) has 64 eigenvectors"
    at.segmented_control(key="eig_matrix").set_value("augmented").run()
    at.slider(key="eig_index").set_value(64).run()
    assert_clean(at)
    assert float(at.metric[0].value) < 0, "index 64 is the most negative eigenvalue"
    browsed = at.image[-1].proto.imgs[0]
    assert browsed.caption.startswith("Eigenvector #64 of the bias-augmented") and at.metric[0].value in browsed.alt
    at.toggle(key="eig_hover").set_value(True).run()
    assert_clean(at)
    assert len(at.get("vega_lite_chart")) == 3 and not at.image[-1].proto.imgs[0].caption.startswith("Eigenvector #")
    assert re.search(r"Eigenvector #64", str(at.get("vega_lite_chart")[-1].proto.spec)), "hover: the chart instead"
    at.segmented_control(key="eig_matrix").set_value("bias_free").run()
    assert_clean(at)
    assert at.slider(key="eig_index").value == 63, "clamped to the smaller view"


def test_registry_shares_the_first_model_and_keeps_the_pinned_one():
    seed = resources.seed_model()
    registry = resources.ModelRegistry(seed, max_models=2, bounds=Bounds(recent=0))  # size alone decides
    first = TrainedModel(seed.model, seed.config.replace(seed=1), seed.history, "trained")
    again = TrainedModel(seed.model, seed.config.replace(seed=1), seed.history, "trained")
    assert registry.add(first) is first and registry.add(again) is first, "the first finished model wins"
    newer = TrainedModel(seed.model, seed.config.replace(seed=2), seed.history, "trained")
    registry.add(newer)
    assert len(registry) == 2 and registry.get(seed.config) is seed and registry.get(first.config) is None
    assert not any(p.requires_grad for p in seed.model.parameters()), "shared models are read-only"


def test_the_same_settings_at_the_same_time_are_trained_once(training_gate):
    """A second student who presses Train on settings another student is training right now
    follows that run and gets its model: the server does not train it twice."""
    first, second = open_page("app_pages/train.py"), open_page("app_pages/train.py")
    for at in (first, second):
        set_training(at, **SMALL_RUN, seed=31)
        at.button(key="train_button").click().run()  # the first run is held before its first batch
    job = first.session_state["training_job"]
    assert second.session_state["training_job"] is job and job.config == Config(**SMALL_RUN, seed=31)
    assert job.followers == {first.session_state["_session_token"], second.session_state["_session_token"]}
    assert "shared with 1 other student" in second.get("progress")[0].proto.text
    training_gate.release.set()
    assert job.done.wait(120)
    for at in (first, second):
        at.run()
        assert_clean(at)
        assert "Training finished" in at.success[0].value
    assert first.session_state["active"] is second.session_state["active"] is job.result


def test_each_models_decomposition_is_computed_once_for_the_server(monkeypatch):
    """Eigenvectors and Explain show the same decomposition: the server computes it once per model,
    direction and view (ui.resources.eigen), for every session."""
    calls = []
    real = resources.decompose
    monkeypatch.setattr(resources, "decompose", lambda *args: calls.append(args[1:]) or real(*args))
    resources.eigen_cache().clear()
    for page in ("app_pages/eigenvectors.py", "app_pages/explain.py", "app_pages/eigenvectors.py"):
        assert_clean(open_page(page))  # a new session each time, as another student
    assert sorted(calls) == [("true_minus_false", "augmented"), ("true_minus_false", "bias_free")]


def test_train_trains_the_quick_preset_until_a_setting_changes():
    """Issue 24: the classroom path is the default. At the paper's settings (the pretrained model's) the primary
    button trains the quick preset and says how long; once the student changes a setting it trains those."""
    at = open_page("app_pages/train.py")
    label = at.button(key="train_button").label
    assert "quick preset" in label and " s)" in label, label
    at.slider(key="weight_decay").set_value(2.5).run()
    label = at.button(key="train_button").label
    assert "quick preset" not in label and label.startswith("Train ("), label
