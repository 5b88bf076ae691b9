"""Run the whole Figure 6 experiment headless: label, train, decompose, report.

python -m core.reproduce                       # the seed's defaults, full MNIST
python -m core.reproduce --epochs 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from core.checkpoint import save_checkpoint
from core.config import Config
from core.data import MNIST, MNISTError, load_mnist, to_float
from core.eigen import cos_with_centered_target, decompose
from core.labels import make_splits
from core.model import BilinearMLP
from core.tensor import DIRECTIONS, augment, direction_matrix, interaction_matrices, reconstruction_error
from core.train import TrainingDiverged, fit


def summarize(model: BilinearMLP, mnist: MNIST, config: Config, n_check: int = 1000) -> dict:
    """Reconstruction error on test images and, per direction, eigenvalues and top-vector |cos|."""
    aug = augment(model)
    B = interaction_matrices(aug)
    target = mnist.train_x[config.target_index]
    directions = {}
    for name in DIRECTIONS:
        eig = decompose(direction_matrix(B, name), aug.W_e)
        directions[name] = {
            "eigenvalues": eig.eigenvalues.tolist(),
            "top_cos_centered_target": cos_with_centered_target(eig.pixel_vectors[:1], target).item(),
        }
    return {
        "reconstruction_max_abs_err": reconstruction_error(model, to_float(mnist.test_x[:n_check])),
        "directions": directions,
    }


def parse_args(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    d = Config()
    p = argparse.ArgumentParser(prog="python -m core.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("--target-index", type=int, default=d.target_index)
    p.add_argument("--threshold", type=float, default=d.threshold)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--noise-std", type=float, default=d.noise_std)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--d-hidden", type=int, default=d.d_hidden)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--noise-sampler", choices=["fast", "kornia"], default=d.noise_sampler)
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--n-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--save", type=Path, default=None, help="save the trained model (safetensors)")
    args = p.parse_args(argv)
    try:
        config = Config(
            target_index=args.target_index,
            threshold=args.threshold,
            weight_decay=args.weight_decay,
            noise_std=args.noise_std,
            epochs=args.epochs,
            d_hidden=args.d_hidden,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            noise_sampler=args.noise_sampler,
            n_train=args.n_train,
            n_test=args.n_test,
        )
    except ValueError as e:
        p.exit(2, f"error: {e}\n")
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    start = time.perf_counter()
    try:
        mnist = load_mnist()
        splits = make_splits(
            mnist, config.target_index, config.threshold, config.include_inverse, config.n_train, config.n_test
        )

        def progress(m) -> None:
            print(
                f"epoch {m.epoch:>3}/{m.epochs}  train loss {m.train_loss:.3f} acc {m.train_acc:.3f}  "
                f"val loss {m.val_loss:.3f} acc {m.val_acc:.3f}  {m.seconds:6.1f}s",
                file=sys.stderr,
            )

        model, history = fit(config, splits, on_epoch=progress)
    except (MNISTError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = {
        "config": config.to_dict(),
        "val_acc": history[-1].val_acc,
        "train_acc": history[-1].train_acc,
        "positive_fraction": splits.train_y.float().mean().item(),
        "seconds": time.perf_counter() - start,
        **summarize(model, mnist, config),
        "history": [m.to_dict() for m in history],
    }
    tmf = result["directions"]["true_minus_false"]
    print(
        f"val acc {result['val_acc']:.4f}  reconstruction err {result['reconstruction_max_abs_err']:.2e}  "
        f"True-False top |cos| {tmf['top_cos_centered_target']:.3f}  ({result['seconds']:.1f}s)",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.save:
        args.save.write_bytes(save_checkpoint(model, config, history))
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    sys.exit(main())
