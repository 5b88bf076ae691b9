"""Checkpoints in and out, from the sidebar on every page: each rejection says why and keeps the model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save as st_save

from core.checkpoint import FORMAT, MAX_BYTES, load_checkpoint, save_checkpoint
from tests.app.test_app import assert_clean, badge, open_page
from ui import models, resources

PAGES = [
    "app_pages/home.py",
    "app_pages/label.py",
    "app_pages/train.py",
    "app_pages/tensor.py",
    "app_pages/eigenvectors.py",
    "app_pages/explain.py",
    "app_pages/truncation.py",
]


def seed_tensors() -> dict[str, torch.Tensor]:
    return {name: t.detach().clone().contiguous() for name, t in resources.seed_model().model.state_dict().items()}


def checkpoint(tensors: dict[str, torch.Tensor] | None = None, **metadata: str) -> bytes:
    seed = resources.seed_model()
    meta = {"format": FORMAT, "config": json.dumps(seed.config.to_dict()), "history": "[]", **metadata}
    return st_save(tensors if tensors is not None else seed_tensors(), metadata=meta)


def with_nan() -> bytes:
    tensors = seed_tensors()
    tensors["head.weight"][0, 0] = float("nan")
    return checkpoint(tensors)


def wrong_shape() -> bytes:
    tensors = seed_tensors()
    tensors["embed.weight"] = tensors["embed.weight"][:, :700].contiguous()
    return checkpoint(tensors)


def float64() -> bytes:
    return checkpoint({name: t.double() for name, t in seed_tensors().items()})


REJECTED = {  # file -> what the message must say
    "pickle": (b"\x80\x04\x95" + bytes(64), "pickle"),
    "too short": (b"\x01\x02", "too short"),
    "not safetensors": (b"\xff" * 8 + b"{}", "header length"),
    "foreign safetensors": (st_save({"x": torch.zeros(2)}), "not a Bilinear Eigen Lab checkpoint"),
    "bad config": (checkpoint(config=json.dumps({"d_hidden": -4})), "config is invalid"),
    "wrong shape": (wrong_shape(), "has shape"),
    "float64": (float64(), "dtype"),
    "NaN": (with_nan(), "NaN"),
    "truncated": (checkpoint()[:-1000], "truncated"),
    "too large": (bytes(MAX_BYTES + 1), "MB"),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_has_the_model_section_in_the_sidebar(page):
    at = open_page(page)
    assert_clean(at)
    sidebar = at.sidebar
    assert sidebar.download_button(key="download_model") and sidebar.file_uploader(key="upload")
    assert any(f"`{at.session_state['active'].model_id}`" in c.value for c in sidebar.caption), "the model's id"


def test_the_download_is_the_active_model():
    at = open_page("app_pages/eigenvectors.py")
    at.select_slider(key="grid_weight_decay").set_value(0.1).run()
    active = at.session_state["active"]
    model, config, history = load_checkpoint(models.checkpoint_bytes(active))  # what the button sends
    assert config == active.config and len(history) == len(active.history)
    for name, tensor in active.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)
    assert models.file_stem(at.session_state["active"]).endswith("wd0.1_noise0.1_100ep_seed42")


def test_a_good_upload_becomes_the_active_model_everywhere():
    seed = resources.seed_model()
    at = open_page("app_pages/tensor.py")
    data = save_checkpoint(seed.model, seed.config.replace(seed=5), list(seed.history))
    at.file_uploader(key="upload").upload("mine.safetensors", data).run()
    assert_clean(at)
    assert "Loaded `mine.safetensors`" in at.success[0].value
    assert "Your uploaded model" in badge(at)
    at.switch_page("app_pages/truncation.py").run()
    assert_clean(at)
    assert "Your uploaded model" in badge(at)


@pytest.mark.parametrize("kind", REJECTED)
def test_a_bad_checkpoint_is_rejected_with_a_reason_and_the_model_is_kept(kind):
    data, reason = REJECTED[kind]
    at = open_page("app_pages/eigenvectors.py")
    at.select_slider(key="grid_weight_decay").set_value(2.0).run()
    before = at.session_state["active"]
    at.file_uploader(key="upload").upload(f"{kind}.safetensors", data).run()
    assert not at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert f"Could not load `{kind}.safetensors`" in message and reason in message and "is kept" in message
    assert at.session_state["active"] is before
    assert "weight decay 2" in badge(at)


def test_a_grid_slider_says_it_replaces_the_students_own_model():
    seed = resources.seed_model()
    at = open_page("app_pages/eigenvectors.py")
    at.select_slider(key="grid_weight_decay").set_value(2.0).run()
    assert not [i.value for i in at.info if "replaces" in i.value], "the pretrained model is nobody's own"
    data = save_checkpoint(seed.model, seed.config.replace(seed=6), list(seed.history))
    at.file_uploader(key="upload").upload("mine.safetensors", data).run()
    mine = at.session_state["active"]
    at.select_slider(key="grid_weight_decay").set_value(0.5).run()
    assert_clean(at)
    said = " ".join(i.value for i in at.info)
    assert f"It replaces your uploaded model `{mine.model_id}` on every page" in said, said
