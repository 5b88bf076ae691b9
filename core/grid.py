"""The precomputed checkpoint grid behind the app's "instant sliders".

Fifteen models are trained ahead of time (scripts/make_grid_checkpoints.py), one per pair

    threshold    in GRID_THRESHOLDS     = (0.3, 0.4, 0.5)
    weight_decay in GRID_WEIGHT_DECAYS  = (0.0, 0.1, 0.5, 1.0, 2.0)

with every other Config field at its default (full MNIST, 100 epochs, seed 42). A Config is
"on the grid" when its threshold and weight decay are grid values (up to float round-off from
a slider) and all its other fields equal the defaults; the app can then load the checkpoint
instead of training. Files are named from the two values only: `t0.40_wd1.0.safetensors`.
checkpoints/grid/index.json holds one summary row per file (see `load_index`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from core.config import Config

GRID_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5)
GRID_WEIGHT_DECAYS: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0, 2.0)
GRID_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "grid"
INDEX_NAME = "index.json"
_TOL = 1e-9  # slider values like 0.30000000000000004 still count as 0.3


def _snap(value: float, grid: tuple[float, ...]) -> float | None:
    """The grid value equal to `value` up to round-off, or None."""
    for g in grid:
        if math.isclose(value, g, rel_tol=0.0, abs_tol=_TOL):
            return g
    return None


def grid_name(threshold: float, weight_decay: float) -> str:
    """File name for a grid point, e.g. (0.4, 1.0) -> 't0.40_wd1.0.safetensors'.

    Raises ValueError if either value is not a grid value.
    """
    t, wd = _snap(threshold, GRID_THRESHOLDS), _snap(weight_decay, GRID_WEIGHT_DECAYS)
    if t is None:
        raise ValueError(f"threshold {threshold:g} is not on the grid {list(GRID_THRESHOLDS)}")
    if wd is None:
        raise ValueError(f"weight decay {weight_decay:g} is not on the grid {list(GRID_WEIGHT_DECAYS)}")
    return f"t{t:.2f}_wd{wd:.1f}.safetensors"


def grid_path(threshold: float, weight_decay: float, root: Path | None = None) -> Path:
    """Where the checkpoint for (threshold, weight_decay) lives (it may not exist yet)."""
    return (root or GRID_DIR) / grid_name(threshold, weight_decay)


def grid_config(threshold: float, weight_decay: float) -> Config:
    """The default Config with the grid's two values (snapped to the exact grid floats)."""
    grid_name(threshold, weight_decay)  # validates both
    return Config(threshold=_snap(threshold, GRID_THRESHOLDS), weight_decay=_snap(weight_decay, GRID_WEIGHT_DECAYS))


def grid_points() -> list[tuple[float, float]]:
    """Every (threshold, weight_decay) pair, thresholds outermost."""
    return [(t, wd) for t in GRID_THRESHOLDS for wd in GRID_WEIGHT_DECAYS]


def is_on_grid(config: Config) -> bool:
    """True if a grid checkpoint was trained with exactly this config (up to slider round-off)."""
    if _snap(config.threshold, GRID_THRESHOLDS) is None:
        return False
    if _snap(config.weight_decay, GRID_WEIGHT_DECAYS) is None:
        return False
    default = Config()
    return all(
        getattr(config, f.name) == getattr(default, f.name)
        for f in dataclasses.fields(Config)
        if f.name not in ("threshold", "weight_decay")
    )


def grid_checkpoint(config: Config, root: Path | None = None) -> Path | None:
    """The existing checkpoint file for an on-grid config, else None (train it instead)."""
    if not is_on_grid(config):
        return None
    path = grid_path(config.threshold, config.weight_decay, root)
    return path if path.is_file() else None


def load_index(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """index.json as {file name: summary row}; {} if it does not exist yet."""
    path = (root or GRID_DIR) / INDEX_NAME
    if not path.is_file():
        return {}
    return json.loads(path.read_text())
