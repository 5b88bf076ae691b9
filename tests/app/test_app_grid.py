"""The instant grid sliders, the compare view and the lazily filled model registry (AppTest)."""

from __future__ import annotations

import re
import time

import pyarrow as pa
import pytest

from core.checkpoint import save_checkpoint
from core.config import Config
from core.grid import GRID_WEIGHT_DECAYS, grid_config, grid_name, load_index
from core.identity import TrainedModel, config_id
from tests.app.test_app import assert_clean, badge, open_page
from ui import resources

EIGEN = "app_pages/eigenvectors.py"


def top_cos(at) -> float:
    """|cos| of the bias-augmented True − False top eigenvector, from its image's caption."""
    caption = next(i.captions[0] for i in at.image if i.captions[0].startswith("Top of the bias-augmented"))
    return float(caption.split("|cos| ")[1])


def test_grid_sliders_switch_the_active_model():
    at = open_page(EIGEN)
    seed_cos = top_cos(at)
    at.select_slider(key="grid_weight_decay").set_value(0.0).run()
    assert_clean(at)
    active = at.session_state["active"]
    assert (active.origin, active.config) == ("grid", grid_config(0.4, 0.0))
    assert "Precomputed checkpoint: threshold 0.40, weight decay 0" in badge(at)
    assert top_cos(at) < seed_cos - 0.2, "without weight decay the top eigenvector is much less target-like"
    assert at.query_params["model"] == config_id(grid_config(0.4, 0.0))

    at.select_slider(key="grid_threshold").set_value(0.5).run()
    assert at.session_state["active"].config == grid_config(0.5, 0.0)
    assert at.session_state["active"] is resources.registry().get(grid_config(0.5, 0.0)), "shared, loaded once"
    row = load_index()[grid_name(0.5, 0.0)]
    assert top_cos(at) == pytest.approx(row["top_cos"]["true_minus_false"], abs=0.006)

    at.switch_page("app_pages/tensor.py").run()
    assert "threshold 0.50, weight decay 0" in badge(at), "the switch holds on every page"


def test_compare_view_shows_the_top_eigenvector_for_each_weight_decay():
    at = open_page(EIGEN)
    at.select_slider(key="grid_threshold").set_value(0.3).run()
    at.session_state["eig_tab"] = "Compare weight decays"  # the second tab
    at.run()
    assert_clean(at)
    free_row, row = [image for image in at.image if len(image.value) == len(GRID_WEIGHT_DECAYS)]
    index = load_index()
    for caption, weight_decay in zip(row.captions, GRID_WEIGHT_DECAYS, strict=True):
        assert caption.startswith(f"weight decay {weight_decay:g} · |cos| ")
        cos = float(caption.split("|cos| ")[1].split(" ")[0])
        assert cos == pytest.approx(index[grid_name(0.3, weight_decay)]["top_cos"]["true_minus_false"], abs=0.006), (
            "computed from the checkpoint, it matches what index.json recorded"
        )
    (line,) = at.get("vega_lite_chart")
    assert "weight decay" in line.proto.spec and "threshold" in line.proto.spec
    (dataset,) = line.proto.datasets
    grid = pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
    assert len(grid) == 2 * 15, "the whole grid, two measures per model"
    shown = grid[(grid["threshold"] == "τ = 0.30") & (grid["measure"] == "|cos| with the target")]
    free_cos = [float(c.split("|cos| ")[1].split(" ")[0]) for c in free_row.captions]
    assert list(shown["value"]) == pytest.approx(free_cos, abs=0.006), "the bias-free |cos| of each model, as pictured"
    assert at.query_params["tab"] == "compare"
    text = " ".join(m.value for m in at.markdown)
    first, last = (float(c.split("|cos| ")[1].split(" ")[0]) for c in (free_row.captions[0], free_row.captions[-1]))
    assert f"{first:.2f} → {last:.2f} in the bias-free block" in text, "the finding quotes the images' numbers"
    shares = [re.search(r"λ₀ (\d+)% of Σλ² · (\d+) for 90 %", c).groups() for c in free_row.captions]
    assert f"carries {shares[0][0]}% → {shares[-1][0]}% of Σλ²" in text, "the spectrum's concentration, as captioned"
    assert f"go {shares[0][1]} → {shares[-1][1]}" in text
    assert "weight decay concentrates the spectrum" in text, "τ 0.3: 6 eigenvectors for 90 % at wd 0, 1 at wd 2"


def test_a_student_model_is_off_the_grid_until_asked():
    at = open_page(EIGEN)
    seed = resources.seed_model()
    at.session_state["active"] = TrainedModel(seed.model, seed.config.replace(seed=3), seed.history, "trained")
    at.run()
    assert any(e.label == "Instant models: show a precomputed one" for e in at.expander), "sliders folded away"
    at.button(key="grid_show").click().run()
    assert_clean(at)
    assert at.session_state["active"].config == grid_config(0.4, 1.0), "the sliders' point: the seed's config"
    assert not [b for b in at.button if b.key == "grid_show"], "no button once a precomputed model is shown"


def test_an_on_grid_config_loads_at_once_on_the_train_page():
    at = open_page("app_pages/train.py")
    at.slider(key="weight_decay").set_value(0.5).run()
    assert "one of the 15 precomputed checkpoints" in at.info[0].value
    start = time.perf_counter()
    at.button(key="train_button").click().run()
    assert time.perf_counter() - start < 5, "loaded, not trained (100 epochs on full MNIST take minutes)"
    assert_clean(at)
    active = at.session_state["active"]
    assert (active.origin, active.config, active.epochs_done) == ("grid", grid_config(0.4, 0.5), 100)
    assert "precomputed checkpoint" in at.success[0].value


def test_the_registry_finds_grid_models_by_id_before_loading_them():
    seed = resources.seed_model()
    loads = []

    def loader(config: Config):
        loads.append(config)
        return resources.load_grid_model(config)

    config = grid_config(0.3, 2.0)
    registry = resources.ModelRegistry(seed, max_models=2, loader=loader, lazy_ids={config_id(config): config})
    assert registry.get(seed.config.replace(seed=9)) is None, "off the grid: train it"
    found = registry.by_id(config_id(config))
    assert found is not None and found.config == config and found.model_id == config_id(config)
    assert registry.by_id(config_id(config)) is found and len(loads) == 2, "loaded once, then registered"
    assert registry.by_id("0123456789ab") is None


def test_a_missing_checkpoint_says_so_and_keeps_the_model(monkeypatch, tmp_path):
    import core.grid

    at = open_page(EIGEN)
    monkeypatch.setattr(core.grid, "GRID_DIR", tmp_path)  # a server without the precomputed files
    resources._grid_model.clear()
    fresh = resources.ModelRegistry(resources.seed_model(), loader=resources.load_grid_model)
    monkeypatch.setattr(resources, "registry", lambda: fresh)
    at.select_slider(key="grid_weight_decay").set_value(0.5).run()
    assert not at.exception
    assert "checkpoint for threshold 0.4 and weight decay 0.5 is missing" in at.error[0].value
    assert at.session_state["active"].origin == "pretrained", "the current model is kept"
    resources._grid_model.clear()  # the next test reads the real files again


def test_an_upload_with_a_grid_config_is_not_taken_for_the_grid_model():
    seed = resources.seed_model()
    at = open_page(EIGEN)
    at.file_uploader(key="upload").upload("copy.safetensors", save_checkpoint(seed.model, seed.config)).run()
    assert at.session_state["active"].origin == "uploaded"
    assert at.button(key="grid_show"), "the sliders do not claim to show the uploaded weights"
