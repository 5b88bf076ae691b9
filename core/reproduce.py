"""Run the whole Figure 6 experiment headless: label, train, decompose, report.

    python -m core.reproduce                       # the seed's defaults, full MNIST
    python -m core.reproduce --preset quick        # the app's quick classroom preset
    python -m core.reproduce --epochs 10 --json out.json
    python -m core.reproduce --loop reference      # train with the readable loop (core.reference_train)
    python -m core.reproduce analyze model.safetensors --json out.json   # a saved model, no training

Every Config field is a flag (built from dataclasses.fields(Config), with the field's help text).
`analyze` writes what a training run's JSON holds for that model, plus truncation and every sentence
the pages would state about it, with the numbers behind it (core.analysis).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
from pathlib import Path
from typing import Any

import torch

from core.analysis import analyze, summarize
from core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from core.config import PRESETS, Config, preset
from core.data import MNIST, MNISTError, load_mnist
from core.labels import make_splits
from core.model import BilinearMLP
from core.reference_train import train as reference_loop
from core.snapshot import Snapshot, Watcher, epoch_ends, first_epoch_steps, kept_for_file
from core.train import EpochMetrics, TrainingDiverged, new_model, train

LOOPS = {"fast": train, "reference": reference_loop}  # the same law (tests/unit/test_reference_train.py)

__all__ = ["analyze_main", "main", "parse_args", "summarize"]


def fit_watched(
    config: Config, splits: Any, mnist: MNIST, on_epoch: Any = None, loop: Any = train
) -> tuple[BilinearMLP, list[EpochMetrics], list[Snapshot], float]:
    """Train `config` as core.train.fit does, taking the verdict's snapshot (core.snapshot) before the first
    step, in the first epoch and after every epoch, as the app's training pool does (here without a time
    budget: every one). Returns the model, its history, the snapshots and the seconds they took. The
    reference loop (core.reference_train) has no hook inside an epoch: its snapshots are at epochs' ends."""
    model = new_model(config)
    steps = max(1, len(splits.train_x) // config.batch_size)
    watcher = Watcher(mnist.train_x[config.target_index], steps, budget=None)
    snapshots = [watcher.look(model, 0)]
    history = []

    def watch(model: BilinearMLP, step: int) -> None:
        snapshots.append(watcher.look(model, step))

    inside = {"watch": watch, "watch_steps": first_epoch_steps(steps)} if loop is train else {}
    for metrics in loop(model, splits, config, **inside):
        history.append(metrics)
        snapshots.append(watcher.look(model, metrics.epoch * steps))
        if on_epoch is not None:
            on_epoch(metrics)
    model.eval()
    return model, history, snapshots, watcher.spent


def history_with_snapshots(history: list[EpochMetrics], snapshots: list[Snapshot]) -> list[dict[str, Any]]:
    """Each epoch's metrics with its end's snapshot numbers: |cos| and λ of the verdict's top eigenvector, its
    share of Σλ² and the eigenvectors that carry 90 % (`top_*`; the matrix under `top_matrix`)."""
    at_end = {round(s.epoch): s for s in epoch_ends(snapshots)}
    rows = []
    for m in history:
        row, s = m.to_dict(), at_end.get(m.epoch)
        if s is not None:
            row |= {
                "top_matrix": f"{s.direction}/{s.view}",
                "top_cos": s.cos,
                "top_eigenvalue": s.eigenvalue,
                "top_share": s.top_share,
                "eigenvectors_for_90pct": s.for_90pct,
            }
        rows.append(row)
    return rows


def _flag_settings(name: str) -> dict[str, Any]:
    """argparse settings for the Config field `name`, from its type: bool, int, float, Literal, X | None."""
    hint = typing.get_type_hints(Config)[name]
    if typing.get_origin(hint) is typing.Literal:
        return {"choices": typing.get_args(hint)}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    (base,) = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]  # int | None -> int
    return {"type": base}


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m core.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="start from this preset (default: paper)")
    for f in dataclasses.fields(Config):
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            default=None,
            help=f.metadata["help"],
            **_flag_settings(f.name),
        )
    p.add_argument(
        "--loop",
        choices=sorted(LOOPS),
        default="fast",
        help="training loop: the app's fast one (core.train) or the readable one (core.reference_train), "
        "which follow the same law (default: fast)",
    )
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--save", type=Path, default=None, help="save the trained model (safetensors)")
    args = p.parse_args(argv)
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    try:
        config = preset(args.preset, **changes)
    except ValueError as e:
        p.exit(2, f"error: {e}\n")
    return config, args


def analyze_main(argv: list[str]) -> int:
    """`analyze PATH [--json OUT]`: core.analysis.analyze of a saved model, without training."""
    p = argparse.ArgumentParser(
        prog="python -m core.reproduce analyze", description="Analyze a saved model (no training)."
    )
    p.add_argument("path", type=Path, help="a checkpoint saved by --save or the app (safetensors)")
    p.add_argument("--json", type=Path, default=None, help="write the analysis here (default: stdout)")
    args = p.parse_args(argv)
    try:
        model, config, history = load_checkpoint(args.path.read_bytes())
        result = analyze(model, config, history, load_mnist())
    except (OSError, CheckpointError, MNISTError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for finding in result["findings"]:
        for sentence in finding["sentences"]:
            print(f"[{finding['page']}/{finding['finding']}] {sentence}", file=sys.stderr)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text)
    else:
        print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["analyze"]:
        return analyze_main(argv[1:])
    config, args = parse_args(argv)
    start = time.perf_counter()
    try:
        mnist = load_mnist()
        splits = make_splits(mnist, config)

        def progress(m) -> None:
            print(
                f"epoch {m.epoch:>3}/{m.epochs}  train loss {m.train_loss:.3f} acc {m.train_acc:.3f}  "
                f"val loss {m.val_loss:.3f} acc {m.val_acc:.3f}  {m.seconds:6.1f}s",
                file=sys.stderr,
            )

        model, history, snapshots, snapshot_seconds = fit_watched(
            config, splits, mnist, on_epoch=progress, loop=LOOPS[args.loop]
        )
    except (MNISTError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = {
        "config": config.to_dict(),
        "preset": args.preset,
        "loop": args.loop,
        "val_acc": history[-1].val_acc,
        "train_acc": history[-1].train_acc,
        "positive_fraction": splits.train_y.float().mean().item(),
        "seconds": time.perf_counter() - start,  # everything: loading, labelling, training
        "train_seconds": history[-1].seconds,  # the training loop alone (incl. its per-epoch evaluation)
        **summarize(model, mnist, config),
        "history": history_with_snapshots(history, snapshots),
        "snapshots": [s.to_dict() for s in kept_for_file(snapshots)],
        "snapshot_seconds": snapshot_seconds,  # all the snapshots' decompositions and thumbnails together
    }
    tmf = result["directions"]["true_minus_false"]
    print(
        f"val acc {result['val_acc']:.4f}  reconstruction err {result['reconstruction_max_abs_err']:.2e}  "
        f"True-False top |cos| {tmf['top_cos_centered_target']:.3f} (bias-free "
        f"{tmf['bias_free']['top_cos_centered_target']:.3f})  "
        f"train {result['train_seconds']:.1f}s of {result['seconds']:.1f}s",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.save:
        args.save.write_bytes(save_checkpoint(model, config, history, tuple(snapshots)))
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    sys.exit(main())
