"""Bad inputs, one test each: a clear message, the student's model and settings kept, the app still usable.

One test per row of docs/bad_inputs.md. Each checks (a) what the student sees, (b) that the active
model is the same object as before (also by the id the sidebar shows), (c) that every widget
setting is what it was (or what the student just typed, never silently reset) and (d) that a
normal action works afterwards. Where a widget's bounds make an input impossible to enter
(number_input min/max, the learning-rate options), the test checks that the bound is there and
that the layer below (Config, core) rejects the value with a clear message.

AppTest shares st.cache_resource with the whole process, as students share one server: the tests
that take a resource away (the shipped checkpoint, MNIST) clear those caches and put them back.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import core.data
from core.checkpoint import MAX_BYTES, CheckpointError, load_checkpoint, save_checkpoint
from core.config import N_TRAIN_MNIST, Config
from core.grid import grid_config
from core.identity import config_id
from core.labels import make_splits
from core.train import TrainingDiverged, new_model, train
from tests.app.test_app import (
    APP,
    SMALL_RUN,
    TIMEOUT,
    assert_clean,
    badge,
    open_page,
    percentages,
    press_train,
    set_training,
)
from tests.app.test_app_links import open_link, warnings
from ui import resources, state

HOME, LABEL, TRAIN = "app_pages/home.py", "app_pages/label.py", "app_pages/train.py"
TENSOR, EIGEN, EXPLAIN, TRUNCATION = (
    "app_pages/tensor.py",
    "app_pages/eigenvectors.py",
    "app_pages/explain.py",
    "app_pages/truncation.py",
)
SETTINGS = tuple(state.WIDGET_DEFAULTS)  # every setting a student makes, on any page


# --- what every test checks ----------------------------------------------------------------


def settings(at) -> dict:
    return {key: at.session_state[key] for key in SETTINGS}


def active_model(at):
    """The session's active model, checked against the id the sidebar shows."""
    trained = at.session_state["active"]
    shown = [c.value for c in at.sidebar.caption if c.value.startswith("Model id")]
    assert shown and f"`{trained.model_id}`" in shown[0], "the sidebar names the active model"
    return trained


def assert_eigenvectors_work(at) -> None:
    """A normal action afterwards: the Eigenvectors page draws its images for the active model."""
    at.switch_page(EIGEN).run()
    assert_clean(at)
    assert eigen_page_drawn(at)


def eigen_page_drawn(at) -> bool:
    """The Eigenvectors page drew its rows of top and bottom eigenvectors, and the target beside both tops."""
    rows = [image for image in at.image if len(image.value) > 1]
    singles = [image.captions[0] for image in at.image if len(image.value) == 1]
    return len(rows) == 2 and len(singles) >= 4 and singles[0].startswith("Target")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def on_grid_model(at, weight_decay: float = 2.0):
    """Make a precomputed model active and move a setting off its default, so that 'kept' cannot mean 'reset'."""
    at.switch_page(EIGEN).run()
    at.select_slider(key="grid_weight_decay").set_value(weight_decay).run()
    at.slider(key="top_k").set_value(5).run()
    assert f"weight decay {weight_decay:g}" in badge(at) and at.session_state["top_k"] == 5
    return at


# --- 1 · labels -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold, empty", [(1.0, "true"), (0.0, "false")])
def test_threshold_that_empties_a_class(threshold, empty):
    at = on_grid_model(open_page(HOME))
    at.switch_page(LABEL).run()
    model, before = active_model(at), settings(at)

    at.slider(key="threshold").set_value(threshold).run()
    assert not at.exception
    assert len(at.error) == 1 and f"No image is labelled {empty}" in at.error[0].value
    assert "Move the threshold" in at.error[0].value, "the message says how to fix it"
    at.switch_page(TRAIN).run()
    assert not at.exception
    assert f"No image is labelled {empty}" in at.error[0].value and "refused" in at.error[0].value
    assert at.button(key="train_button").disabled, "training on one class is refused"
    assert active_model(at) is model
    assert settings(at) == {**before, "threshold": threshold}, "only the threshold moved, and it stays"

    at.switch_page(LABEL).run()
    at.slider(key="threshold").set_value(0.4).run()
    assert_clean(at)
    at.switch_page(TRAIN).run()
    assert_clean(at)
    assert not at.button(key="train_button").disabled
    assert_eigenvectors_work(at)
    assert active_model(at) is model


def test_target_index_out_of_range():
    at = open_page(LABEL)
    field = at.number_input(key="target_index")
    assert (field.min, field.max) == (0, N_TRAIN_MNIST - 1), "the widget cannot take an index out of range"
    for bad in (-1, N_TRAIN_MNIST):
        with pytest.raises(ValueError, match=f"target index must be between 0 and {N_TRAIN_MNIST - 1}, got {bad}"):
            Config(target_index=bad)

    # the one way in is a link: its bad target is ignored, with a notice, and the rest of the link applies
    grid = grid_config(0.5, 0.1)
    at = open_link({"target": str(N_TRAIN_MNIST), "threshold": "0.3", "model": config_id(grid)}, LABEL)
    assert not at.exception and not at.error
    assert any(
        f"`target={N_TRAIN_MNIST}` was ignored: target must be between 0 and {N_TRAIN_MNIST - 1}. "
        "Using the default 6 instead." in w
        for w in warnings(at)
    )
    assert active_model(at).config == grid, "the link's model is kept"
    assert settings(at) == {**state.WIDGET_DEFAULTS, "threshold": 0.3}, "the link's valid setting is kept"
    assert at.image[0].captions[0].startswith("Training image #6"), "the page works with the default target"
    assert percentages(at), "and labels the images"
    assert_eigenvectors_work(at)


# --- 2 · training ---------------------------------------------------------------------------


def test_epochs_zero_or_absurd():
    at = open_page(TRAIN)
    field = at.number_input(key="epochs")
    assert (field.min, field.max) == (1, 1000), "the widget cannot take 0 or more than 1000 epochs"
    for bad in (0, -5, 10**6):
        with pytest.raises(ValueError, match=f"epochs must be between 1 and 1000, got {bad}"):
            Config(epochs=bad)

    # within every widget's bounds, an absurd combination: batches larger than the slice of data
    at = on_grid_model(at)
    at.switch_page(TRAIN).run()
    set_training(at, epochs=1000, n_train=1000, batch_size=N_TRAIN_MNIST)
    model, before = active_model(at), settings(at)
    assert not at.exception
    assert len(at.error) == 1
    assert (
        f"These settings can't be trained: batch size {N_TRAIN_MNIST} is larger than the 1000 training "
        "images: no full batch to train on. Your current model is kept."
    ) == at.error[0].value
    assert at.button(key="train_button").disabled
    at.switch_page(TENSOR).run()
    at.switch_page(TRAIN).run()
    assert settings(at) == before, "the values typed stay, to be corrected"
    assert active_model(at) is model

    at.number_input(key="batch_size").set_value(250).run()
    assert_clean(at)
    assert not at.button(key="train_button").disabled
    assert active_model(at) is model


def test_learning_rate_that_makes_the_loss_non_finite(mnist):
    # core: lr >= 1e5 overflows float32 in the first epoch, and says what to change
    config = Config(lr=1e5, epochs=2, n_train=2048, n_test=500, batch_size=512)
    splits = make_splits(mnist, config)
    with pytest.raises(
        TrainingDiverged,
        match=r"diverged in epoch 1: the loss became (nan|inf)\. "
        r"Try a smaller learning rate than 100000\.",
    ):
        list(train(new_model(config), splits, config))

    # the app offers at most lr 1, but lr 1 with weight decay 5 diverges too (AdamW multiplies every
    # weight by 1 - lr * wd = -4 per step): a divergence a student can reach
    at = on_grid_model(open_page(HOME))
    at.switch_page(TRAIN).run()
    assert max(float(option) for option in at.select_slider(key="lr").options) == 1.0
    set_training(at, n_train=4096, n_test=1000, batch_size=128, epochs=3)
    at.select_slider(key="lr").set_value(1.0)
    at.slider(key="weight_decay").set_value(5.0).run()
    model, before = active_model(at), settings(at)
    press_train(at)
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert re.fullmatch(
        r"training diverged in epoch 1: the loss became (nan|inf)\. Try a smaller learning rate "
        r"than 1\. Your previous model is kept\.",
        message,
    ), message
    assert active_model(at) is model
    assert settings(at) == before
    assert "training_job" not in at.session_state, "the failed run is gone"
    assert_eigenvectors_work(at)
    assert active_model(at) is model


@pytest.mark.parametrize("stop_in_epoch", [1, 3])
def test_stop_pressed_mid_epoch(training_gate, stop_in_epoch):
    """The server's run is held in the middle of epoch `stop_in_epoch` (batch 2 of 4) when the
    student presses Stop: the student keeps the model of the last finished epoch, the run stops."""
    at = on_grid_model(open_page(HOME))
    at.switch_page(TRAIN).run()
    seed = 43 + stop_in_epoch  # a config no other test trains, so the last step trains it for real
    set_training(at, n_train=2048, n_test=500, batch_size=512, epochs=5, seed=seed)
    model, before = active_model(at), settings(at)
    training_gate.hold_at = (stop_in_epoch - 1) * 4 + 2
    at.button(key="train_button").click().run()
    job = at.session_state["training_job"]
    assert training_gate.held.wait(120)
    at.button(key="stop").click().run()
    assert job.stop_requested.is_set()
    training_gate.release.set()
    assert job.done.wait(60) and job.state == "stopped" and job.result is None
    assert not at.exception and not at.error
    assert "training_job" not in at.session_state
    if stop_in_epoch == 1:
        assert at.info[0].value == "Training stopped before the first epoch finished; your previous model is kept."
        assert active_model(at) is model
    else:
        assert at.warning[0].value.startswith(
            f"Training stopped after epoch {stop_in_epoch - 1} of 5. Your model is the one at the end of that epoch"
        )
        kept = active_model(at)
        assert (kept.origin, kept.epochs_done, kept.history) == ("stopped", stop_in_epoch - 1, job.history)
        assert f"stopped after epoch {stop_in_epoch - 1} of 5" in badge(at)
    assert settings(at) == before

    press_train(at)  # the same settings train to the end afterwards
    assert_clean(at)
    assert "Training finished" in at.success[0].value
    assert active_model(at).origin == "trained" and active_model(at).epochs_done == 5


def test_a_model_loaded_during_training_wins_with_one_message(running_job):
    """Uploading a checkpoint while the student's run trains: the upload is the active model, the
    student stops following the run, and one message says both."""
    at = on_grid_model(open_page(HOME))
    at.switch_page(TRAIN).run()
    before = active_model(at)
    job = running_job(Config(n_train=2048, n_test=500, batch_size=512, epochs=5, seed=61))
    at.session_state["_session_token"], at.session_state["training_job"] = "student", job
    at.sidebar.file_uploader(key="upload").upload("mine.safetensors", good_checkpoint()).run()
    assert_clean(at)
    kept = active_model(at)
    assert kept.origin == "uploaded" and kept is not before
    assert [s.value for s in at.success] == [
        "Loaded `mine.safetensors`: it is now your active model, on every page. You no longer follow the "
        "training run you started (it stops unless another student follows it)."
    ]
    assert not at.warning and not [i for i in at.info if "raining" in i.value], "no second outcome announced"
    assert "training_job" not in at.session_state and job.stop_requested.is_set()


# --- 3 · no model, no data ----------------------------------------------------------------


@pytest.fixture(params=["missing", "truncated"])
def no_shipped_checkpoint(request, tmp_path, monkeypatch):
    """A server whose checkpoints/seed-default.safetensors is missing or truncated, from its start:
    the cached seed model and registry (and the model store) are dropped, and rebuilt afterwards."""
    monkeypatch.setenv("BILINEAR_LAB_MODEL_STORE", str(tmp_path / "model-store"))  # a new server, a new disk
    resources.model_store.clear()
    path = tmp_path / "seed-default.safetensors"
    if request.param == "truncated":
        data = resources.SEED_CHECKPOINT.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    original = resources.SEED_CHECKPOINT
    resources.SEED_CHECKPOINT = path
    # A new server has a new registry, pool, slots and room too: the pool adds to the registry it was built with and
    # the room lists what this server trains into a store that goes with tmp_path. Without them a later test's model
    # lands in a registry nobody reads, and the board looks for this fixture's models forever (test_app_board after
    # this file: 6 failures).
    servers = (resources.seed_model, resources.registry, resources.slots, resources.training_pool, resources.room)
    for cache in servers:
        cache.clear()
    try:
        yield request.param
    finally:
        resources.SEED_CHECKPOINT = original
        monkeypatch.undo()
        for cache in (*servers, resources.model_store):
            cache.clear()


def test_page_opened_before_any_model_exists(no_shipped_checkpoint):
    at = open_page(HOME)
    assert_clean(at)
    assert any(i.value.startswith("No model yet: the pretrained checkpoint could not be loaded") for i in at.info)
    assert any("No model yet" in c.value for c in at.sidebar.caption)
    assert at.sidebar.file_uploader(key="upload"), "a saved model can still be loaded"
    at.switch_page(LABEL).run()
    at.slider(key="threshold").set_value(0.35).run()
    assert_clean(at)
    assert percentages(at), "step 1 works without a model"
    before = settings(at)

    for page in (TENSOR, EIGEN, EXPLAIN, TRUNCATION):
        at.switch_page(page).run()
        assert not at.exception and not at.error, (page, [e.value for e in at.error])
        assert len(at.warning) == 1, page
        message = at.warning[0].value
        assert message.startswith("No model yet: the pretrained checkpoint could not be loaded on this server")
        assert "Train one in step 2" in message and "load a .safetensors model you saved" in message
        assert "active" not in at.session_state, "no model is made up"
        assert settings(at) == before

    at.switch_page(TRAIN).run()
    assert_clean(at)
    assert not at.button(key="train_button").disabled, "step 2 works without a model"
    set_training(at, **SMALL_RUN, seed=47)
    press_train(at)
    assert_clean(at)
    assert "Training finished" in at.success[0].value
    assert active_model(at).origin == "trained" and active_model(at).config.threshold == 0.35
    assert_eigenvectors_work(at)  # steps 3 to 6 show the new model


def test_bundled_data_missing_while_offline(monkeypatch, tmp_path):
    at = on_grid_model(open_page(HOME))
    at.switch_page(LABEL).run()
    at.slider(key="threshold").set_value(0.3).run()
    model, before = active_model(at), settings(at)

    def offline(cache_dir):
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("BILINEAR_LAB_MNIST_DIR", str(tmp_path))  # an empty folder: the data is gone
    monkeypatch.setattr(core.data, "_download_with_torchvision", offline)
    resources._mnist.clear()
    try:
        for page in (LABEL, TRAIN):
            at.switch_page(page).run()
            assert not at.exception and not at.error, (page, [e.value for e in at.error])
            message = at.warning[0].value
            assert message.startswith("The MNIST images are not available on this server, so this step cannot run.")
            assert f"MNIST not found: {tmp_path} lacks train-images-idx3-ubyte.gz" in message, "what it looked for"
            assert "ConnectionError: [Errno -3] Temporary failure in name resolution" in message
            assert "Fix: copy the four MNIST .gz files" in message and "BILINEAR_LAB_MNIST_DIR" in message
            assert active_model(at) is model
            assert settings(at) == before
        at.switch_page(HOME).run()
        assert_clean(at)
        assert "weight decay 2" in badge(at), "pages without MNIST still work"
    finally:
        monkeypatch.undo()
        resources._mnist.clear()

    at.switch_page(LABEL).run()  # the data is back: no restart needed, nothing was cached
    assert_clean(at)
    assert percentages(at) and at.slider(key="threshold").value == 0.3
    assert active_model(at) is model


# --- 4 · links ------------------------------------------------------------------------------


def test_query_parameters_that_are_garbage():
    grid = grid_config(0.5, 0.1)
    query = {
        "model": config_id(grid),
        "threshold": "0.3",  # what the student's link really carries
        "direction": "x" * 500,
        "k": "999",
        "eig": "-3",
        "view": "<script>alert(1)</script>",
        "inverse": "maybe",
        "target": "1e9",
        "grid_wd": "nan",
        "image": "",
        "`" * 3 + "y" * 300: "1",
    }
    at = open_link(query, EIGEN)
    assert not at.exception and not at.error
    text = warnings(at)
    assert len(text) == 9, text
    for name in ("direction", "k", "eig", "view", "inverse", "target", "grid_wd", "image"):
        assert any(f"`{name}=" in w and "was ignored" in w for w in text), name
    assert all(len(w) < 300 for w in text), "untrusted text is clipped in the notice"
    assert any("parameter" in w and "is unknown and was ignored" in w for w in text)
    assert active_model(at).config == grid, "the link's model is kept"
    assert "threshold 0.50, weight decay 0.1" in badge(at)
    assert settings(at) == {
        **state.WIDGET_DEFAULTS,
        "threshold": 0.3,
        "grid_threshold": 0.5,
        "grid_weight_decay": 0.1,
    }, "valid values applied, every bad one at its default"
    assert eigen_page_drawn(at), "the page works"
    assert dict(at.query_params) == {"model": config_id(grid), "threshold": "0.3", "grid_t": "0.5", "grid_wd": "0.1"}
    at.segmented_control(key="eig_direction").set_value("true").run()
    assert_clean(at)
    assert at.query_params["direction"] == "true"


# --- 5 · uploads ----------------------------------------------------------------------------


def good_checkpoint() -> bytes:
    seed = resources.seed_model()
    return save_checkpoint(seed.model, seed.config.replace(seed=5), list(seed.history))


def safetensors_header(header: dict | bytes) -> bytes:
    """A file that is only a safetensors header (its metadata is checked before any tensor is read)."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


def huge_weights() -> bytes:
    seed = resources.seed_model()
    model = new_model(seed.config)
    model.load_state_dict(seed.model.state_dict())
    with torch.no_grad():
        model.embed.weight[0, 0] = 3e38
    return save_checkpoint(model, seed.config.replace(seed=5), list(seed.history))


BAD_CHECKPOINTS = {  # file -> what the message must say
    "corrupt bytes": (lambda: bytes(range(256)) * 64, "not a safetensors file: its header length runs past the end"),
    "corrupt header": (
        lambda: (lambda d: d[:8] + b"\xff" * 16 + d[24:])(good_checkpoint()),
        "not a safetensors file: its header is not JSON",
    ),
    "truncated": (lambda: good_checkpoint()[:-1000], "corrupt or truncated safetensors file"),
    "oversized": (lambda: good_checkpoint() + bytes(MAX_BYTES), "MB; a checkpoint is at most 20 MB"),
    "a png renamed": (lambda: png(np.zeros((28, 28), np.uint8)), "not a safetensors file"),
    "deeply nested JSON": (
        lambda: safetensors_header(b'{"__metadata__": {}, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "its header nests JSON too deeply to read",
    ),
    "no config": (
        lambda: safetensors_header({"__metadata__": {"format": "bilinear-eigen-lab/1", "history": "[]"}}),
        "the checkpoint has no config (the settings it was trained with)",
    ),
    "weights of 3e38": (huge_weights, "embed.weight holds a weight of magnitude 3e+38"),
}


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_bad_checkpoint_upload(kind):
    data, reason = BAD_CHECKPOINTS[kind]
    data = data()
    with pytest.raises(CheckpointError, match=re.escape(reason)):
        load_checkpoint(data)
    at = on_grid_model(open_page(HOME))
    at.segmented_control(key="eig_direction").set_value("true").run()
    assert not at.sidebar.file_uploader(key="upload").allowed_type, "any type: a wrong one gets the app's reason"
    model, before = active_model(at), settings(at)

    at.sidebar.file_uploader(key="upload").upload("mine.safetensors", data).run()
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert message.startswith("Could not load `mine.safetensors`: ") and reason in message
    assert message.endswith("Your current model is kept.")
    assert active_model(at) is model
    assert settings(at) == before
    assert_eigenvectors_work(at)
    assert active_model(at) is model

    assert at.sidebar.file_uploader[0].value is None, "the rejected file is not listed as if it were loaded"
    at.sidebar.file_uploader[0].upload("good.safetensors", good_checkpoint()).run()
    assert "Loaded `good.safetensors`" in at.success[0].value, "a good file is still accepted afterwards"


TRIPPED: list[str] = []


def trip(*args) -> None:
    TRIPPED.append("unpickled")


class Payload:
    """A pickle that records it was loaded: loading an upload must never unpickle it."""

    def __reduce__(self):
        return trip, ()


PICKLES = [("torch.save", "model.pt"), ("torch.save", "model.safetensors"), ("pickle", "model.safetensors")]


@pytest.mark.parametrize(("writer", "name"), PICKLES)
def test_checkpoint_that_is_a_pickle(writer, name, tmp_path):
    seed = resources.seed_model()
    buffer = io.BytesIO()
    payload = {"state_dict": seed.model.state_dict(), "hook": Payload()}
    if writer == "torch.save":
        torch.save(payload, buffer)
    else:
        pickle.dump(payload, buffer, protocol=4)
    data = buffer.getvalue()
    at = on_grid_model(open_page(HOME))
    model, before = active_model(at), settings(at)

    at.sidebar.file_uploader(key="upload").upload(name, data).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value == (
        f"Could not load `{name}`: this is a pickle / torch.save file; only "
        ".safetensors checkpoints are accepted, because unpickling an uploaded file can "
        "run arbitrary code. Your current model is kept."
    )
    assert TRIPPED == [], "nothing was unpickled"
    assert active_model(at) is model
    assert settings(at) == before
    assert_eigenvectors_work(at)
    if writer == "pickle":
        pickle.loads(data)
    else:
        torch.load(io.BytesIO(data), weights_only=False)
    assert TRIPPED == ["unpickled"], "the payload does trip when unpickled: the check above can fail"
    TRIPPED.clear()


BAD_IMAGES = {  # file -> (bytes, what the message must say)
    "not a png": (b"GIF89a these are not the pixels you are looking for", "not a PNG image"),
    "colour": (
        png(np.dstack([np.full((28, 28), 200, np.uint8), np.zeros((28, 28, 2), np.uint8)])),
        "the image is in colour (mode RGB); it must be grayscale",
    ),
    "wrong size": (
        png(np.zeros((30, 40), np.uint8)),
        "image is 40x30 pixels; it must be 28x28 like MNIST (or tick 'resize'",
    ),
    "over 1 MB": (b"\x89PNG\r\n\x1a\n" + bytes(1_100_000), "file is 1.10 MB; at most 1 MB"),
    "truncated": (
        png(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8))[:400],
        "the PNG file is damaged and could not be decoded",
    ),
}


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_bad_image_upload(kind):
    data, reason = BAD_IMAGES[kind]
    at = on_grid_model(open_page(HOME))
    at.switch_page(EXPLAIN).run()
    at.number_input(key="explain_index").set_value(42).run()
    at.segmented_control(key="explain_direction").set_value("true").run()
    at.segmented_control(key="explain_source").set_value("upload").run()
    assert at.file_uploader(key="explain_upload").allowed_type == [".png"]
    model, before = active_model(at), settings(at)

    at.file_uploader(key="explain_upload").upload(f"{kind}.png", data, "image/png").run()
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    assert at.error[0].value.startswith(f"Can't use `{kind}.png`: ") and reason in at.error[0].value
    assert not at.metric, "no explanation of an unusable image"
    assert active_model(at) is model
    assert settings(at) == before

    at.segmented_control(key="explain_source").set_value("test").run()  # the other inputs still work
    assert_clean(at)
    assert at.metric and any("Test image #42" in (i.captions or [""])[0] for i in at.image)
    assert active_model(at) is model


# --- issue 25: the small ones --------------------------------------------------------------------


def test_a_repeated_link_parameter_is_named_and_none_of_its_values_taken():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["target"] = ["1", "2"]  # ?target=1&target=2
    at.query_params["threshold"] = "0.3"
    at.run()
    assert not at.exception and not at.error
    (warning,) = warnings(at)
    assert "The link gives `target` 2 times (`1, 2`)" in warning and "Using the default 6 instead" in warning
    assert at.session_state["target_index"] == 6 and at.session_state["threshold"] == 0.3


def test_a_nul_in_a_link_is_shown_as_what_it_is():
    at = open_link({"target": "1\x00"}, LABEL)
    assert not at.exception and not at.error
    (warning,) = warnings(at)
    assert "`target=1\\x00` was ignored: target contains a control character" in warning, warning
    assert at.session_state["target_index"] == 6


def test_minus_zero_is_zero_in_ids_and_links():
    assert config_id(Config(weight_decay=-0.0)) == config_id(Config(weight_decay=0.0))
    at = open_link({"wd": "-0"}, TRAIN)
    assert not at.exception and not warnings(at)
    assert at.query_params["wd"] == "0", "the link writes 0, not -0"
    assert str(at.session_state["weight_decay"]) == "0.0"


@pytest.mark.parametrize("picked", ["label-\u00b3", "label-" + "9" * 5000])
def test_a_picked_value_that_is_no_ascii_number_is_refused_in_the_apps_words(picked):
    at = open_link({"lesson": "true", "picked": picked}, LABEL)
    assert not at.exception and not at.error
    (warning,) = [w for w in warnings(at) if "picked=" in w]
    assert "invalid literal" not in warning and "digits" not in warning.split("was ignored")[1]
    assert "must give step label a choice" in warning or "longer than" in warning, warning


def test_training_settings_past_the_cap_get_the_nearest_that_fit():
    at = open_link({"epochs": "1000", "width": "1024", "batch": "1"}, TRAIN)
    assert not at.exception
    (warning,) = [w for w in warnings(at) if "training settings" in w]
    assert "days on this server" in warning and "at most 2 min here" in warning, warning
    assert "Nearest settings that fit: the quick preset (about" in warning
    (error,) = [e.value for e in at.error]
    assert "These settings can't be trained" in error
    assert at.button(key="train_button").disabled, "Train is refused"
    at.button(key="nearest_0").click().run()
    assert not at.error and not at.button(key="train_button").disabled, "the nearest settings train"
    assert at.session_state["epochs"] == 8 and at.session_state["batch_size"] == 1024


def test_a_link_to_settings_the_server_already_has_is_not_called_past_the_cap(fresh_room):
    """A link's settings past the teacher's cap that the server already holds (a precomputed model, `wd=2` with the
    paper's 100 epochs) load at once: no warning says they "can't be trained" beside an enabled Train (instant)."""
    resources.room().set_max_run_seconds(1.0)  # a cap no 100-epoch run on full MNIST fits, on any CPU
    at = open_link({"wd": "2"}, TRAIN)
    assert not at.exception and not at.error
    assert not [w for w in warnings(at) if "can't be trained" in w], warnings(at)
    assert not at.button(key="train_button").disabled and "instant" in at.button(key="train_button").label
    other = open_link({"wd": "2.5"}, TRAIN)  # the same past the cap, but not on this server: the link says so
    assert [w for w in warnings(other) if "The link's training settings: These settings can't be trained" in w]
