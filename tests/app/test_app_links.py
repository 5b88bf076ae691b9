"""Shareable state: the URL opens the same view, and a reload (a new session) keeps the model.

AppTest gives every test a new session, while st.cache_resource (the registry, the slots) is
shared by the whole process, exactly as a reload on one server: a second AppTest carrying the
first one's URL is that reload.
"""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.checkpoint import save_checkpoint
from core.config import Config
from core.grid import grid_config
from core.identity import config_id
from tests.app.test_app import APP, SMALL_RUN, TIMEOUT, assert_clean, badge, open_page, press_train, set_training
from ui import models, resources


def open_link(query: dict[str, str], page: str | None = None) -> AppTest:
    """A new session opened from a link (or a reload): the page's URL with its query string."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page:
        at.switch_page(page)
    at.query_params.update(query)
    return at.run()


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_a_link_opens_the_same_view():
    query = {
        "direction": "true",
        "k": "5",
        "eig": "7",
        "grid_t": "0.5",
        "grid_wd": "0.1",
        "model": config_id(grid_config(0.5, 0.1)),
    }
    at = open_link(query, "app_pages/eigenvectors.py")
    assert_clean(at)
    assert not warnings(at)
    assert at.segmented_control(key="eig_direction").value == "true"
    assert (at.slider(key="top_k").value, at.slider(key="eig_index").value) == (5, 7)
    assert (at.select_slider(key="grid_threshold").value, at.select_slider(key="grid_weight_decay").value) == (0.5, 0.1)
    assert at.session_state["active"].config == grid_config(0.5, 0.1)
    assert "threshold 0.50, weight decay 0.1" in badge(at)
    assert dict(at.query_params) == query, "the URL keeps describing the view"

    label = open_link({"target": "17", "threshold": "0.55", "inverse": "false"}, "app_pages/label.py")
    assert_clean(label)
    assert label.number_input(key="target_index").value == 17
    assert label.slider(key="threshold").value == 0.55 and label.toggle(key="include_inverse").value is False

    explain = open_link({"image": "42"}, "app_pages/explain.py")
    assert explain.number_input(key="explain_index").value == 42


def test_the_url_follows_the_settings_across_pages():
    at = open_page("app_pages/label.py")
    assert dict(at.query_params) == {}, "defaults stay out of the URL"
    at.slider(key="threshold").set_value(0.3).run()
    assert at.query_params["threshold"] == "0.3"
    at.switch_page("app_pages/eigenvectors.py").run()  # a page switch clears the URL; the app writes it back
    at.segmented_control(key="eig_direction").set_value("false").run()
    assert dict(at.query_params) == {"threshold": "0.3", "direction": "false"}


def test_garbage_falls_back_to_defaults_with_a_notice_naming_each_parameter():
    at = open_link(
        {
            "threshold": "lots",
            "direction": "sideways",
            "eig": "-3",
            "grid_wd": "0.7",
            "target": "1e9",
            "utm_source": "mail",
            "model": "../../etc/passwd",
        },
        "app_pages/eigenvectors.py",
    )
    assert_clean(at)
    text = " ".join(warnings(at))
    for name in (
        "threshold=lots",
        "direction=sideways",
        "eig=-3",
        "grid_wd=0.7",
        "target=1e9",
        "`utm_source`",
        "model=",
    ):
        assert name in text, f"the notice names {name}"
    assert "Using the default 0.4" in text and "Using the pretrained model" in text
    assert at.segmented_control(key="eig_direction").value == "true_minus_false"
    assert at.slider(key="eig_index").value == 0
    assert at.session_state["threshold"] == 0.4 and at.session_state["target_index"] == 6
    assert "Pretrained seed checkpoint" in badge(at)
    assert dict(at.query_params) == {}, "the bad values are gone from the URL"


def test_an_unknown_model_id_falls_back_to_the_pretrained_model():
    at = open_link({"model": "0123456789ab"}, "app_pages/tensor.py")
    assert_clean(at)
    assert "This server has no model" in warnings(at)[0] and "`model=0123456789ab`" in warnings(at)[0]
    assert at.session_state["active"].origin == "pretrained"


def test_a_reload_keeps_the_trained_model():
    at = open_page("app_pages/train.py")
    set_training(at, **SMALL_RUN, seed=23)
    press_train(at)
    trained = at.session_state["active"]
    assert trained.origin == "trained" and at.query_params["model"] == trained.model_id == config_id(trained.config)

    reloaded = open_link(dict(at.query_params), "app_pages/eigenvectors.py")  # a new session, same URL
    assert_clean(reloaded)
    assert not warnings(reloaded)
    assert reloaded.session_state["active"] is trained
    assert "Your trained model" in badge(reloaded)
    reloaded.switch_page("app_pages/train.py").run()
    assert reloaded.toggle(key="use_slice").value is True, "the run's settings are back on the Train page"
    assert [reloaded.number_input(key=k).value for k in ("epochs", "seed", "n_train", "batch_size")] == [
        SMALL_RUN["epochs"],
        23,
        SMALL_RUN["n_train"],
        SMALL_RUN["batch_size"],
    ]
    assert "Your active model was trained with exactly these settings" in reloaded.info[0].value


def test_a_reload_keeps_a_stopped_run(running_job):
    at = open_page("app_pages/train.py")
    config = Config(epochs=4, n_train=2048, n_test=500, batch_size=512, seed=29)
    at.session_state["_session_token"], at.session_state["training_job"] = "student", running_job(config)
    at.run()
    at.button(key="stop").click().run()
    stopped = at.session_state["active"]
    assert stopped.origin == "stopped" and stopped.model_id.startswith("p-")
    assert at.query_params["model"] == stopped.model_id
    assert resources.registry().get(config) is None, "a partial run is not the model its config trains to"

    reloaded = open_link({"model": stopped.model_id}, "app_pages/tensor.py")
    assert reloaded.session_state["active"] is stopped
    assert "stopped after epoch 1 of 4" in badge(reloaded)
    assert models.file_stem(stopped).endswith("_1ep_seed29"), "a download names the epochs it has, not the plan"


def test_a_reload_follows_the_training_run_again(training_gate):
    """Training belongs to the server: a reload (a new session, the same URL) follows the run again,
    with its settings on the Train page, and gets its model when it ends."""
    at = open_page("app_pages/train.py")
    set_training(at, **SMALL_RUN, seed=37)
    at.slider(key="weight_decay").set_value(2.5).run()
    at.button(key="train_button").click().run()
    job = at.session_state["training_job"]
    link = dict(at.query_params)
    assert link["training"] == config_id(job.config) and link["wd"] == "2.5" and link["seed"] == "37"

    reloaded = open_link(link, "app_pages/eigenvectors.py")  # the student reloads on another page
    assert_clean(reloaded)
    assert reloaded.session_state["training_job"] is job
    assert reloaded.sidebar.get("progress"), "a progress badge in the sidebar"
    reloaded.switch_page("app_pages/train.py").run()
    assert reloaded.slider(key="weight_decay").value == 2.5 and reloaded.number_input(key="seed").value == 37
    assert reloaded.button(key="train_button").disabled and not reloaded.button(key="stop").disabled

    training_gate.release.set()
    assert job.done.wait(120)
    reloaded.run()
    assert_clean(reloaded)
    assert "Training finished" in reloaded.success[0].value
    assert reloaded.session_state["active"] is job.result and "training" not in reloaded.query_params

    # the run is over: the same link now opens the model it became
    late = open_link(link, "app_pages/tensor.py")
    assert late.session_state["active"] is job.result
    assert "finished while the page was away" in late.success[0].value


def test_training_settings_in_a_link_come_back_and_bad_ones_are_named():
    at = open_link({"wd": "3", "epochs": "10", "lr": "0.003", "batch": "1024", "width": "7"}, "app_pages/train.py")
    assert at.slider(key="weight_decay").value == 3.0 and at.number_input(key="epochs").value == 10
    assert at.select_slider(key="lr").value == 0.003 and at.number_input(key="batch_size").value == 1024
    assert at.select_slider(key="d_hidden").value == 64, "width=7 is not offered: the default stays"
    assert any("width=7" in w and "must be one of" in w for w in warnings(at))


def test_a_reload_keeps_an_uploaded_model_in_its_own_slot():
    seed = resources.seed_model()
    at = open_page("app_pages/home.py")
    data = save_checkpoint(seed.model, seed.config, list(seed.history))  # claims to be the seed's config
    at.file_uploader(key="upload").upload("claims-to-be-the-seed.safetensors", data).run()
    uploaded = at.session_state["active"]
    assert uploaded.origin == "uploaded" and uploaded.model_id.startswith("u-")
    assert at.query_params["model"] == uploaded.model_id
    assert resources.registry().get(seed.config) is seed, "an untrusted upload never replaces a canonical model"

    reloaded = open_link({"model": uploaded.model_id}, "app_pages/eigenvectors.py")
    assert reloaded.session_state["active"] is uploaded
    assert "Your uploaded model" in badge(reloaded)


def test_links_are_read_once_per_session():
    at = open_link({"direction": "false"}, "app_pages/eigenvectors.py")
    at.segmented_control(key="eig_direction").set_value("true").run()
    at.run()
    assert at.segmented_control(key="eig_direction").value == "true", "the student's later choice wins"
    assert at.query_params["direction"] == "true"


@pytest.fixture
def restart(monkeypatch, tmp_path):
    """Simulate a server restart: every in-memory cache of models goes; `restart(wipe_store=True)` also
    starts with an empty model store (a new container)."""

    def forget_everything(wipe_store: bool = False) -> None:
        if wipe_store:
            monkeypatch.setenv("BILINEAR_LAB_MODEL_STORE", str(tmp_path / "fresh-store"))
        for cache in (resources.registry, resources.slots, resources.training_pool, resources.model_store):
            cache.clear()

    yield forget_everything
    monkeypatch.undo()
    for cache in (resources.registry, resources.slots, resources.training_pool, resources.model_store):
        cache.clear()


def test_a_trained_and_a_stopped_model_survive_a_restart(restart, running_job):
    at = open_page("app_pages/train.py")
    set_training(at, **SMALL_RUN, seed=53)
    press_train(at)
    trained, trained_link = at.session_state["active"], dict(at.query_params)
    at.session_state["_session_token"] = "student"
    at.session_state["training_job"] = running_job(Config(epochs=4, n_train=2048, n_test=500, batch_size=512, seed=57))
    at.run()
    at.button(key="stop").click().run()
    stopped, stopped_link = at.session_state["active"], dict(at.query_params)
    assert stopped.origin == "stopped"

    restart()
    for before, link in ((trained, trained_link), (stopped, stopped_link)):
        reloaded = open_link(link, "app_pages/eigenvectors.py")
        assert_clean(reloaded)
        assert not warnings(reloaded)
        found = reloaded.session_state["active"]
        assert found is not before, "read back from the store, not from memory"
        assert (found.model_id, found.origin, found.history) == (before.model_id, before.origin, before.history)
        for name, tensor in before.model.state_dict().items():
            assert torch.equal(found.model.state_dict()[name], tensor), name
    assert resources.registry().get(trained.config).model_id == trained.model_id, "Train loads it at once"


def test_a_link_whose_model_is_gone_offers_to_retrain_it(restart):
    at = open_page("app_pages/train.py")
    set_training(at, **SMALL_RUN, seed=59)
    at.slider(key="weight_decay").set_value(1.5).run()
    press_train(at)
    link = dict(at.query_params)

    restart(wipe_store=True)
    reloaded = open_link(link, "app_pages/home.py")
    assert not reloaded.exception
    assert "is not on this server any more" in warnings(reloaded)[0] and "Retrain it" in warnings(reloaded)[0]
    assert reloaded.session_state["active"].origin == "pretrained"
    assert reloaded.button(key="retrain").label.startswith("Retrain it (about ")
    press_train(reloaded, "retrain")
    assert_clean(reloaded)
    assert "Training finished" in reloaded.success[0].value
    assert reloaded.session_state["active"].model_id == link["model"], "deterministic: the same model again"
    assert reloaded.query_params["model"] == link["model"]
    assert not [b for b in reloaded.button if b.key == "retrain"], "the offer is gone once the model is back"
