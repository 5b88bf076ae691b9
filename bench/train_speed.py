"""Training speed of the project's loop against the published code's way of training.

Trains the seed config (core.config.Config() defaults: full MNIST, target image 6, threshold 0.4,
batch 2048, AdamW lr 1e-3 / wd 1.0, pixel noise std 0.1, d_hidden 64) for the same number of
epochs, in this process, four ways:

  fast       core.train.train with noise_sampler="fast" (ExactNoisyEmbed: the embedding and its
             gradient are sampled from their exact law with 64 draws per image)
  kornia     core.train.train with noise_sampler="kornia" (same loop, 784 kornia draws per image)
  readable   core.reference_train.train, the loop the Train page shows (autograd, torch's AdamW, explicit
             torch.randn noise; the same law as fast, tests/unit/test_reference_train.py)
  reference  a plain loop written here the way the published code trains (the paper's
             repository, image/model.py, Model.fit): a Dataset of float images (N, 1, 28, 28),
             a DataLoader(batch_size=2048, shuffle=True, drop_last=True) whose collate_fn stacks
             the items one by one and adds kornia RandomGaussianNoise(mean=0, std=0.1, p=1),
             AdamW, CosineAnnealingLR, per-batch loss.item() / acc.item(), and a full test-set
             evaluation (grad enabled, as published) after every epoch.

All four start from the same initial weights (core.train.new_model) and use a cosine schedule
over the epochs actually run, so their final validation accuracies are comparable; they differ
only by the randomness of shuffling and noise. Seconds per epoch include the per-epoch
evaluation and are the median over the epochs after the first (the first pays warm-up). A
second table times the noise draws alone for one 2048-image batch.

The machine is shared and noisy: read the ratios, not the third digit. The load average is
printed because with torch's default 2 intra-op threads on 2 cores, another busy process makes
every parallel region wait for a descheduled thread (the reference loop's thousands of tiny
per-item ops suffer most); `--threads 1` shows the loops without that effect.

    .venv/bin/python bench/train_speed.py                 # 8 epochs each; ~4 min if another process is busy
    .venv/bin/python bench/train_speed.py --epochs 10 --json artifacts/train_speed.json
    .venv/bin/python bench/train_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from kornia.augmentation import RandomGaussianNoise
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from core.config import Config
from core.data import load_mnist
from core.labels import Splits, make_splits
from core.model import BilinearMLP
from core.reference_train import train as readable_train
from core.train import ExactNoisyEmbed, new_model, train

# --------------------------------------------------------------------------- the loops


def run_project(splits: Splits, config: Config, loop: Callable = train) -> dict:
    """core.train.train as the app runs it (or another loop yielding EpochMetrics); per-epoch wall times and
    the final val accuracy."""
    model = new_model(config)
    times, last, history = [], 0.0, []
    for m in loop(model, splits, config):
        times.append(m.seconds - last)
        last = m.seconds
        history.append(m)
    return {"epoch_seconds": times, "val_acc": history[-1].val_acc, "val_loss": history[-1].val_loss}


class FloatImages(Dataset):
    """The published code's dataset: float images (N, 1, 28, 28) in [0, 1] and labels (N,)."""

    def __init__(self, x_uint8: torch.Tensor, y: torch.Tensor) -> None:
        self.x = x_uint8.float().unsqueeze(1) / 255.0  # (N, 1, 28, 28)
        self.y = y  # (N,)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]

    def __len__(self) -> int:
        return self.x.size(0)


def noisy_collate(transform: Callable[[torch.Tensor], torch.Tensor]):
    """Stack a list of (image, label) items, then add the noise (as the published `_collator`)."""

    def inner(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([item[0] for item in batch]).float()  # (B, 1, 28, 28)
        y = torch.stack([item[1] for item in batch])  # (B,)
        return transform(x), y

    return inner


def run_reference(splits: Splits, config: Config) -> dict:
    """The published training loop, with the project's model and initial weights."""
    model: BilinearMLP = new_model(config)
    train_set = FloatImages(splits.train_x, splits.train_y)
    test_set = FloatImages(splits.test_x, splits.test_y)
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    noise = RandomGaussianNoise(mean=0.0, std=config.noise_std, p=1.0)
    loader = DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, drop_last=True, collate_fn=noisy_collate(noise)
    )

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)  # (B, 2)
        return F.cross_entropy(logits, y), (logits.argmax(dim=-1) == y).float().mean()

    times, val_loss, val_acc = [], float("nan"), float("nan")
    for _ in range(config.epochs):
        start = time.perf_counter()
        epoch = []
        for x, y in loader:
            model.train()
            loss, acc = step(x, y)
            epoch.append((loss.item(), acc.item()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        v_loss, v_acc = step(test_set.x, test_set.y)  # grad enabled, as published
        val_loss, val_acc = v_loss.item(), v_acc.item()
        times.append(time.perf_counter() - start)
    return {"epoch_seconds": times, "val_acc": val_acc, "val_loss": val_loss}


# --------------------------------------------------------------------------- noise draws alone


def median_ms(fn: Callable[[], object], repeats: int = 50) -> float:
    """Median wall time of fn() in milliseconds, after a few warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def time_noise(config: Config) -> dict[str, float]:
    """Per-batch cost of each way of getting noise into one 2048-image batch."""
    B, D, H = config.batch_size, 784, config.d_hidden
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, 1, 28, 28, generator=g)  # (B, 1, 28, 28)
    flat = x.flatten(1)  # (B, 784)
    kornia_noise = RandomGaussianNoise(mean=0.0, std=config.noise_std, p=1.0)
    W = torch.randn(H, D, generator=g).div_(D**0.5).requires_grad_()  # (H, 784)
    delta = torch.randn(B, H, generator=g)  # (B, H) stands in for dL/dh

    def plain_embed() -> None:
        W.grad = None
        (flat @ W.T).backward(delta)

    def exact_embed() -> None:
        W.grad = None
        ExactNoisyEmbed.apply(flat, W, config.noise_std, g).backward(delta)

    return {
        "kornia RandomGaussianNoise, (B,1,28,28)": median_ms(lambda: kornia_noise(x)),
        "torch.randn (B,784) * std + x": median_ms(lambda: flat + config.noise_std * torch.randn(B, D, generator=g)),
        "fast draws: randn (B,64) + randn (64,784)": median_ms(
            lambda: (torch.randn(B, H, generator=g), torch.randn(H, D, generator=g))
        ),
        "embed fwd+bwd, no noise": median_ms(plain_embed),
        "embed fwd+bwd, ExactNoisyEmbed (all of it)": median_ms(exact_embed),
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (>= 2; default 8)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice, as the app runs)",
    )
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is warm-up and not timed)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    config = Config(epochs=args.epochs)  # the seed config; cosine schedule over these epochs
    mnist = load_mnist()
    splits = make_splits(mnist, config)
    n_batches = len(splits.train_x) // config.batch_size
    print(
        f"seed config, {args.epochs} epochs x {n_batches} batches of {config.batch_size}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load average {load_before[0]:.2f}",
        flush=True,
    )

    runs: dict[str, dict] = {}
    for name, fn in [
        ("fast", lambda: run_project(splits, config.replace(noise_sampler="fast"))),
        ("kornia", lambda: run_project(splits, config.replace(noise_sampler="kornia"))),
        ("readable", lambda: run_project(splits, config, loop=readable_train)),
        ("reference", lambda: run_reference(splits, config)),
    ]:
        start = time.perf_counter()
        runs[name] = fn()
        runs[name]["seconds_per_epoch"] = statistics.median(runs[name]["epoch_seconds"][1:])
        print(f"  {name:<10} done in {time.perf_counter() - start:6.1f} s", flush=True)

    noise = time_noise(config)
    load_after = os.getloadavg()
    ref = runs["reference"]["seconds_per_epoch"]
    ratios = {f"reference/{k}": ref / runs[k]["seconds_per_epoch"] for k in ("fast", "kornia", "readable")}

    print()
    print(f"{'loop':<34} {'s/epoch':>8} {'ref/this':>9} {'val acc':>8} {'val loss':>9}")
    labels = {
        "fast": "project loop, fast sampler",
        "kornia": "project loop, kornia noise",
        "readable": "readable loop (reference_train)",
        "reference": "reference (published-style) loop",
    }
    for name, r in runs.items():
        print(
            f"{labels[name]:<34} {r['seconds_per_epoch']:8.3f} "
            f"{ref / r['seconds_per_epoch']:8.2f}x {100 * r['val_acc']:7.2f}% {r['val_loss']:9.4f}"
        )
    accs = [100 * r["val_acc"] for r in runs.values()]
    print(
        f"val accuracy spread: {max(accs) - min(accs):.2f} pt; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(> 0 means other processes competed for the {os.cpu_count()} cores)"
    )
    print()
    print(f"noise for one batch of {config.batch_size} (median ms)")
    for label, ms in noise.items():
        print(f"  {label:<44} {ms:8.3f}")

    result = {
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "load_average": [load_before[0], load_after[0]],
        "runs": runs,
        "ratios": ratios,
        "noise_ms_per_batch": noise,
    }
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
