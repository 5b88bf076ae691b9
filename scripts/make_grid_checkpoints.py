"""Precompute the checkpoint grid behind the app's instant sliders (see core/grid.py).

    PYTHONPATH=. .venv/bin/python scripts/make_grid_checkpoints.py            # missing files only
    PYTHONPATH=. .venv/bin/python scripts/make_grid_checkpoints.py --force    # retrain everything
    PYTHONPATH=. .venv/bin/python scripts/make_grid_checkpoints.py --only 0.4,1.0

Each grid point is the default Config with one threshold and one weight decay, trained with
core.train.fit on full MNIST (about 25 s each on 2 CPU cores) and saved with
core.checkpoint.save_checkpoint to checkpoints/grid/<grid_name>. After every model the script
rewrites checkpoints/grid/index.json: one row per file with the final val accuracy, the
fraction of positive training labels, the top eigenvector's |cos| with the centred target for
each direction (core.reproduce.summarize) and the training time. Existing files are skipped
(their index row is kept, or rebuilt from the checkpoint) unless --force.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script too

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import Config
from core.data import MNIST, load_mnist
from core.grid import GRID_DIR, INDEX_NAME, grid_config, grid_name, grid_points, load_index
from core.labels import Splits, make_splits
from core.model import BilinearMLP
from core.reproduce import summarize
from core.train import EpochMetrics, fit


def summary_row(
    model: BilinearMLP, config: Config, history: list[EpochMetrics], splits: Splits, mnist: MNIST, seconds: float
) -> dict[str, Any]:
    """The index.json row for one trained grid model."""
    summary = summarize(model, mnist, config)
    return {
        "threshold": config.threshold,
        "weight_decay": config.weight_decay,
        "val_acc": history[-1].val_acc,
        "train_acc": history[-1].train_acc,
        "positive_fraction": splits.train_y.float().mean().item(),
        "top_cos": {name: d["top_cos_centered_target"] for name, d in summary["directions"].items()},
        "top_eigenvalue": {name: d["eigenvalues"][0] for name, d in summary["directions"].items()},
        "reconstruction_max_abs_err": summary["reconstruction_max_abs_err"],
        "epochs_trained": len(history),
        "seconds": seconds,
    }


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a killed run never leaves a half-written checkpoint behind


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true", help="retrain and overwrite existing checkpoints")
    p.add_argument("--out-dir", type=Path, default=GRID_DIR)
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="T,WD",
        help="train only this grid point (repeatable), e.g. --only 0.4,1.0",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    points = grid_points()
    if args.only:
        points = [tuple(float(v) for v in item.split(",")) for item in args.only]
        for t, wd in points:
            grid_name(t, wd)  # ValueError for an off-grid request
    args.out_dir.mkdir(parents=True, exist_ok=True)
    index = load_index(args.out_dir)
    mnist = load_mnist()
    splits_by_threshold: dict[float, Splits] = {}

    for i, (t, wd) in enumerate(points, 1):
        config = grid_config(t, wd)
        name = grid_name(t, wd)
        path = args.out_dir / name
        if config.threshold not in splits_by_threshold:
            splits_by_threshold[config.threshold] = make_splits(mnist, config)
        splits = splits_by_threshold[config.threshold]
        if path.is_file() and not args.force:
            if name not in index:  # file without a row: rebuild the row from the file
                model, saved_config, history = load_checkpoint(path.read_bytes())
                index[name] = summary_row(model, saved_config, history, splits, mnist, history[-1].seconds)
            print(f"[{i}/{len(points)}] {name}: exists, skipped", file=sys.stderr, flush=True)
        else:
            start = time.perf_counter()
            model, history = fit(config, splits)
            seconds = time.perf_counter() - start
            _write_atomic(path, save_checkpoint(model, config, history))
            index[name] = summary_row(model, config, history, splits, mnist, seconds)
            row = index[name]
            print(
                f"[{i}/{len(points)}] {name}: val acc {row['val_acc']:.4f}  "
                f"True-False top |cos| {row['top_cos']['true_minus_false']:.3f}  {seconds:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        ordered = {n: index[n] for n in sorted(index)}
        _write_atomic(args.out_dir / INDEX_NAME, (json.dumps(ordered, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
