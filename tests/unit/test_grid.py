"""core.grid lookups, the grid script's summary rows, and the shipped grid checkpoints."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from core.checkpoint import load_checkpoint
from core.config import Config
from core.grid import (
    GRID_DIR,
    GRID_THRESHOLDS,
    GRID_WEIGHT_DECAYS,
    INDEX_NAME,
    grid_checkpoint,
    grid_config,
    grid_name,
    grid_path,
    grid_points,
    is_on_grid,
    load_index,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_grid_checkpoints.py"


def load_script():
    spec = importlib.util.spec_from_file_location("make_grid_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_values():
    assert GRID_THRESHOLDS == (0.3, 0.4, 0.5)
    assert GRID_WEIGHT_DECAYS == (0.0, 0.1, 0.5, 1.0, 2.0)
    assert len(grid_points()) == 15 and len(set(grid_points())) == 15


def test_names_are_deterministic_and_distinct():
    assert grid_name(0.4, 1.0) == "t0.40_wd1.0.safetensors"
    assert grid_name(0.3, 0.0) == "t0.30_wd0.0.safetensors"
    assert grid_name(0.5, 0.1) == "t0.50_wd0.1.safetensors"
    names = {grid_name(t, wd) for t, wd in grid_points()}
    assert len(names) == 15


def test_slider_round_off_snaps_to_the_grid():
    t = 0.1 + 0.2  # 0.30000000000000004
    assert t != 0.3
    assert grid_name(t, 0.5) == "t0.30_wd0.5.safetensors"
    assert grid_config(t, 1.0).threshold == 0.3
    assert is_on_grid(Config(threshold=t, weight_decay=0.1 + 1e-12))


@pytest.mark.parametrize("t,wd", [(0.35, 1.0), (0.4, 0.2), (0.45, 3.0), (0.6, 1.0), (0.4, 1.001)])
def test_off_grid_values_raise(t, wd):
    with pytest.raises(ValueError, match="not on the grid"):
        grid_name(t, wd)
    with pytest.raises(ValueError):
        grid_path(t, wd)
    with pytest.raises(ValueError):
        grid_config(t, wd)


def test_paths():
    assert grid_path(0.4, 1.0) == GRID_DIR / "t0.40_wd1.0.safetensors"
    assert grid_path(0.4, 1.0, root=Path("/x")) == Path("/x/t0.40_wd1.0.safetensors")


def test_grid_config_is_the_default_with_two_changes():
    c = grid_config(0.5, 2.0)
    assert c == Config().replace(threshold=0.5, weight_decay=2.0)
    assert grid_config(0.4, 1.0) == Config()


@pytest.mark.parametrize(
    "config,expected",
    [
        (Config(), True),
        (Config(threshold=0.3, weight_decay=0.0), True),
        (Config(threshold=0.35), False),
        (Config(weight_decay=0.3), False),
        (Config(epochs=10), False),
        (Config(seed=1), False),
        (Config(n_train=30_000), False),
        (Config(noise_sampler="kornia"), False),
        (Config(include_inverse=False), False),
        (Config(threshold=0.5, weight_decay=2.0, lr=2e-3), False),
    ],
)
def test_is_on_grid(config, expected):
    assert is_on_grid(config) is expected


def test_grid_checkpoint_lookup(tmp_path):
    assert grid_checkpoint(Config(), root=tmp_path) is None  # on the grid, file not there
    path = tmp_path / "t0.40_wd1.0.safetensors"
    path.write_bytes(b"x")
    assert grid_checkpoint(Config(), root=tmp_path) == path
    assert grid_checkpoint(Config(epochs=5), root=tmp_path) is None  # off the grid


def test_load_index(tmp_path):
    assert load_index(tmp_path) == {}
    (tmp_path / INDEX_NAME).write_text(json.dumps({"a.safetensors": {"val_acc": 0.5}}))
    assert load_index(tmp_path) == {"a.safetensors": {"val_acc": 0.5}}


def test_script_rejects_off_grid_requests():
    with pytest.raises(ValueError, match="not on the grid"):
        load_script().main(["--only", "0.45,1.0"])


def test_summary_row(small_run, small_config, mnist):
    model, history, splits = small_run
    row = load_script().summary_row(model, small_config, history, splits, mnist, seconds=1.5)
    assert row["val_acc"] == history[-1].val_acc
    assert row["positive_fraction"] == pytest.approx(splits.train_y.float().mean().item())
    assert 0 < row["positive_fraction"] < 0.5
    assert set(row["top_cos"]) == {"true", "false", "true_minus_false"}
    assert all(0 <= v <= 1 for v in row["top_cos"].values())
    assert row["top_cos"]["true_minus_false"] > 0.3  # the small model already finds the target
    assert row["reconstruction_max_abs_err"] < 1e-9
    assert row["seconds"] == 1.5 and row["epochs_trained"] == small_config.epochs
    json.dumps(row)  # serialisable as-is


def test_shipped_grid_is_complete_and_consistent():
    """Every grid checkpoint exists, carries the config its name says, and has an index row."""
    index = load_index()
    assert set(index) == {grid_name(t, wd) for t, wd in grid_points()}
    for t, wd in grid_points():
        path = grid_path(t, wd)
        assert path.is_file(), f"missing {path}: run scripts/make_grid_checkpoints.py"
        _, config, history = load_checkpoint(path.read_bytes())
        assert config == grid_config(t, wd) and is_on_grid(config)
        assert grid_checkpoint(config) == path
        row = index[path.name]
        assert (row["threshold"], row["weight_decay"]) == (t, wd)
        assert row["val_acc"] == history[-1].val_acc
        assert len(history) == config.epochs
