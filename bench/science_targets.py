"""Does the True − False top eigenvector find the target for every digit? One target image per digit 0–9.

The paper's Figure 6 (ICLR 2025 §4.3) shows one target, training image #6 (a 1). This script trains
the paper's settings (core.config.Config defaults: full MNIST, threshold 0.4 with the inverse image,
AdamW lr 1e-3 / weight decay 1, batch 2048, pixel noise 0.1, seed 42) for `--epochs` epochs on one
target per digit, one model at a time with torch.set_num_threads(1):

  digit 1     training image #6 (the paper's)
  digit d     the first training image whose MNIST label is d

For every model it records the positive fraction of the train labels, the last epoch's val acc, the
training time, and from core.eigen.decompose:

  True − False (B_1 − B_0)  augmented view: |cos| of eigenvector 0 (largest eigenvalue) with the
                            centred target, the best |cos| over all eigenvectors and its index, the
                            largest and smallest eigenvalues, |b| = |B[:-1, -1]| and c = B[-1, -1];
                            bias-free view: |cos| of eigenvector 0, eigenvalues 0 and 1
  True (B_1, class 1)       augmented view: |cos| of eigenvectors 0 and 1 (the authors' figure code
                            drops class 1's top eigenpair and plots the next one)

Each model is saved with core.checkpoint.save_checkpoint to OUT/digit{d}.safetensors and all numbers
to OUT/targets.json (records of digits not run this time are kept). `--reuse` loads an existing
checkpoint with the same config instead of training again. A markdown table is printed as each
model finishes, and once more at the end.

    .venv/bin/python bench/science_targets.py                       # 10 models, 30 epochs: ~10-30 min
    .venv/bin/python bench/science_targets.py --digits 1 7 --epochs 5 --out-dir /tmp/science-quick
    .venv/bin/python bench/science_targets.py --reuse               # only the numbers, from the checkpoints
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import Config
from core.data import MNIST, load_mnist
from core.eigen import cos_with_centered_target, decompose
from core.labels import Splits, make_splits
from core.model import BilinearMLP
from core.train import fit

PAPER_TARGET = {1: 6}  # digit -> training image; the paper's target is image #6, a 1

COLUMNS = [  # (header, record key, format)
    ("digit", "digit", "{}"),
    ("target", "target_index", "#{}"),
    ("pos frac", "positive_fraction", "{:.3f}"),
    ("val acc", "val_acc", "{:.4f}"),
    ("T−F aug top |cos|", "tmf_aug_top_cos", "{:.3f}"),
    ("T−F bias-free top |cos|", "tmf_bias_free_top_cos", "{:.3f}"),
    ("T−F aug best |cos| (idx)", "tmf_aug_best", "{}"),
    ("T−F aug λ max / min", "tmf_aug_lambda", "{}"),
    ("T−F bias-free λ0 / λ1", "tmf_bias_free_lambda", "{}"),
    ("class 1 aug |cos| v0 / v1", "true_aug_cos", "{}"),
    ("|b|", "tmf_b_norm", "{:.3f}"),
    ("c", "tmf_c", "{:.3f}"),
    ("train s", "train_seconds", "{:.0f}"),
]


def target_indices(mnist: MNIST, digits: list[int]) -> dict[int, int]:
    """digit -> training image index: #6 for a 1 (the paper's), else the first image of that digit."""
    out = {}
    for d in digits:
        if d in PAPER_TARGET:
            out[d] = PAPER_TARGET[d]
        else:
            out[d] = int((mnist.train_y == d).nonzero()[0, 0])
        assert int(mnist.train_y[out[d]]) == d, f"training image #{out[d]} is not a {d}"
    return out


def measure(model: BilinearMLP, target: torch.Tensor) -> dict:
    """The eigen numbers of one model for one uint8 (28, 28) target (see the module docstring)."""
    tmf = decompose(model, "true_minus_false", "augmented")
    tmf_cos = cos_with_centered_target(tmf.pixel_vectors, target)  # (H+1,)
    best = int(tmf_cos.argmax())
    free = decompose(model, "true_minus_false", "bias_free")
    free_cos = cos_with_centered_target(free.pixel_vectors[:1], target)
    true = decompose(model, "true", "augmented")
    true_cos = cos_with_centered_target(true.pixel_vectors[:2], target)
    return {
        "tmf_aug_top_cos": float(tmf_cos[0]),
        "tmf_aug_top_eigenvalue": float(tmf.eigenvalues[0]),
        "tmf_aug_best_cos": float(tmf_cos[best]),
        "tmf_aug_best_index": best,
        "tmf_aug_best_eigenvalue": float(tmf.eigenvalues[best]),
        "tmf_aug_lambda_max": float(tmf.eigenvalues[0]),
        "tmf_aug_lambda_min": float(tmf.eigenvalues[-1]),
        "tmf_bias_free_top_cos": float(free_cos[0]),
        "tmf_bias_free_lambda0": float(free.eigenvalues[0]),
        "tmf_bias_free_lambda1": float(free.eigenvalues[1]),
        "true_aug_cos_v0": float(true_cos[0]),
        "true_aug_cos_v1": float(true_cos[1]),
        "true_aug_lambda0": float(true.eigenvalues[0]),
        "true_aug_lambda1": float(true.eigenvalues[1]),
        "tmf_b_norm": float(tmf.bias_vector.norm()),
        "tmf_c": float(tmf.matrix[-1, -1]),
    }


def train_or_reuse(config: Config, splits: Splits, path: Path, reuse: bool) -> tuple[BilinearMLP, list, float, bool]:
    """(model, history, train seconds, reused?): load `path` if asked and its config matches, else train."""
    if reuse and path.is_file():
        model, saved_config, history = load_checkpoint(path.read_bytes())
        if saved_config == config and history:
            return model, history, history[-1].seconds, True
        print(f"  {path} holds another config; training again")
    start = time.perf_counter()
    model, history = fit(config, splits)
    seconds = time.perf_counter() - start
    path.write_bytes(save_checkpoint(model, config, history))
    return model, history, seconds, False


def cell(record: dict, key: str, fmt: str) -> str:
    if key == "tmf_aug_best":
        return f"{record['tmf_aug_best_cos']:.3f} ({record['tmf_aug_best_index']})"
    if key == "tmf_aug_lambda":
        return f"{record['tmf_aug_lambda_max']:.3g} / {record['tmf_aug_lambda_min']:.3g}"
    if key == "tmf_bias_free_lambda":
        return f"{record['tmf_bias_free_lambda0']:.3g} / {record['tmf_bias_free_lambda1']:.3g}"
    if key == "true_aug_cos":
        return f"{record['true_aug_cos_v0']:.3f} / {record['true_aug_cos_v1']:.3f}"
    return fmt.format(record[key])


def table_header() -> str:
    heads = [h.replace("|", "\\|") for h, _, _ in COLUMNS]  # a bare | would end the cell
    return "| " + " | ".join(heads) + " |\n|" + "|".join("---" for _ in heads) + "|"


def table_row(record: dict) -> str:
    return "| " + " | ".join(cell(record, key, fmt) for _, key, fmt in COLUMNS) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per model (default 30)")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/science"), help="checkpoints and targets.json")
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)), help="digits to run (default all)")
    parser.add_argument("--reuse", action="store_true", help="load OUT/digit{d}.safetensors if its config matches")
    args = parser.parse_args()
    if any(not 0 <= d <= 9 for d in args.digits):
        parser.error("digits must be between 0 and 9")

    torch.set_num_threads(1)  # one model at a time on a shared 2-core machine
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / "targets.json"
    mnist = load_mnist()
    targets = target_indices(mnist, args.digits)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    print(f"targets: {targets}; epochs {args.epochs}; out {args.out_dir}\n")

    old = json.loads(json_path.read_text()) if json_path.is_file() else {}
    records = {int(r["digit"]): r for r in old.get("records", [])}
    start = time.perf_counter()
    print(table_header(), flush=True)
    for d in args.digits:
        config = Config(target_index=targets[d], epochs=args.epochs)
        splits = make_splits(mnist, config)
        path = args.out_dir / f"digit{d}.safetensors"
        model, history, seconds, reused = train_or_reuse(config, splits, path, args.reuse)
        record = {
            "digit": d,
            "target_index": targets[d],
            "config": config.to_dict(),
            "checkpoint": str(path),
            "reused_checkpoint": reused,
            "positive_fraction": float(splits.train_y.double().mean()),
            "positive_fraction_test": float(splits.test_y.double().mean()),
            "val_acc": history[-1].val_acc,
            "val_loss": history[-1].val_loss,
            "train_acc": history[-1].train_acc,
            "train_seconds": seconds,
            **measure(model, mnist.train_x[targets[d]]),
        }
        records[d] = record
        json_path.write_text(json.dumps({"records": [records[k] for k in sorted(records)]}, indent=2))
        print(table_row(record), flush=True)

    total = time.perf_counter() - start
    print(f"\n{len(args.digits)} model(s) in {total:.0f} s; load average {os.getloadavg()}; wrote {json_path}\n")
    print(table_header())
    for d in sorted(records):
        print(table_row(records[d]))


if __name__ == "__main__":
    main()
