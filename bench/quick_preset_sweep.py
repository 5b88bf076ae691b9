"""Sweep candidate quick-training presets: train seconds, val acc, True - False top-eigenvector |cos|.

Issue 13, goal 1: a preset that trains in <= 5 s (training loop only) on this 2-core machine and
still shows the paper's result: True - False top eigenvector |cos| with the centred target
>= 0.85 median over seeds 0-4 (min >= 0.80) and val acc >= 0.95.

One process: MNIST is loaded once, labels are built once per (n_train, n_test) slice, and every
candidate is trained over the seeds one after the other (never in parallel). The time reported is
`core.train.fit` alone (the training loop, including its per-epoch evaluation on the test split, as
the app runs it), measured with time.perf_counter. |cos| is computed exactly as
`core.reproduce.summarize` does for "true_minus_false".

    .venv/bin/python bench/quick_preset_sweep.py                      # every candidate below, 1 thread
    .venv/bin/python bench/quick_preset_sweep.py --only full-e4-b1024-wd5 full-e10-b1024-wd3 --threads 2
    .venv/bin/python bench/quick_preset_sweep.py --extra '{"epochs": 8, "weight_decay": 3}'
    .venv/bin/python bench/quick_preset_sweep.py --list
    .venv/bin/python bench/quick_preset_sweep.py --only app-quick --pool  # the app's preset, trained as the app does
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `import core` work from any directory
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core.config import PRESETS, Config
from core.data import load_mnist
from core.eigen import cos_with_centered_target, decompose
from core.labels import make_splits
from core.train import fit, train

# Everything not listed keeps core.config.Config's default (target 6, threshold 0.4, inverse on,
# d_hidden 64, noise 0.1, fast sampler). Names are for --only.
SLICE = {"n_train": 12_000, "n_test": 2_000}
FULL = {"n_train": None, "n_test": None}
FULL_E4 = {**FULL, "epochs": 4, "batch_size": 1024, "lr": 3e-3}
CANDIDATES: dict[str, dict] = {
    # the app's earlier quick preset (weight decay 1) and two variants on that slice
    "slice-e15-b512-wd1 (earlier preset)": {**SLICE, "epochs": 15, "batch_size": 512, "lr": 3e-3, "weight_decay": 1.0},
    "slice-e15-b512-wd5": {**SLICE, "epochs": 15, "batch_size": 512, "lr": 3e-3, "weight_decay": 5.0},
    "slice-e15-b512-wd5-lr1e-2": {**SLICE, "epochs": 15, "batch_size": 512, "lr": 1e-2, "weight_decay": 5.0},
    # full MNIST, 4 epochs (about the 5 s budget on one thread): weight decay, learning rate, batch size
    "full-e4-b1024-wd4": {**FULL, "epochs": 4, "batch_size": 1024, "lr": 3e-3, "weight_decay": 4.0},
    "full-e4-b1024-wd5": {**FULL, "epochs": 4, "batch_size": 1024, "lr": 3e-3, "weight_decay": 5.0},
    "full-e4-b1024-wd1-lr1e-2": {**FULL, "epochs": 4, "batch_size": 1024, "lr": 1e-2, "weight_decay": 1.0},
    "full-e4-b1024-wd2-lr1e-2": {**FULL, "epochs": 4, "batch_size": 1024, "lr": 1e-2, "weight_decay": 2.0},
    "full-e4-b1024-wd5-lr1e-2": {**FULL, "epochs": 4, "batch_size": 1024, "lr": 1e-2, "weight_decay": 5.0},
    "full-e4-b512-wd3": {**FULL, "epochs": 4, "batch_size": 512, "lr": 3e-3, "weight_decay": 3.0},
    "full-e4-b512-wd5": {**FULL, "epochs": 4, "batch_size": 512, "lr": 3e-3, "weight_decay": 5.0},
    "full-e4-b512-wd3-lr1e-2": {**FULL, "epochs": 4, "batch_size": 512, "lr": 1e-2, "weight_decay": 3.0},
    # input noise sigma (paper: 0.1), on full MNIST, 4 epochs, batch 1024, lr 3e-3
    "full-e4-b1024-wd4-noise0": {**FULL_E4, "weight_decay": 4.0, "noise_std": 0.0},
    "full-e4-b1024-wd5-noise0": {**FULL_E4, "weight_decay": 5.0, "noise_std": 0.0},
    "full-e4-b1024-wd3-noise0.2": {**FULL_E4, "weight_decay": 3.0, "noise_std": 0.2},
    "full-e4-b1024-wd5-noise0.2": {**FULL_E4, "weight_decay": 5.0, "noise_std": 0.2},
    "full-e4-b1024-wd2-noise0.3": {**FULL_E4, "weight_decay": 2.0, "noise_std": 0.3},
    "full-e4-b1024-wd3-noise0.3": {**FULL_E4, "weight_decay": 3.0, "noise_std": 0.3},
    "full-e4-b1024-wd4-noise0.3": {**FULL_E4, "weight_decay": 4.0, "noise_std": 0.3},
    "full-e4-b1024-wd2-noise0.5": {**FULL_E4, "weight_decay": 2.0, "noise_std": 0.5},
    # more epochs (over the budget on one thread)
    "full-e5-b1024-wd4": {**FULL, "epochs": 5, "batch_size": 1024, "lr": 3e-3, "weight_decay": 4.0},
    "full-e5-b1024-wd5": {**FULL, "epochs": 5, "batch_size": 1024, "lr": 3e-3, "weight_decay": 5.0},
    "full-e6-b2048-wd5": {**FULL, "epochs": 6, "batch_size": 2048, "lr": 3e-3, "weight_decay": 5.0},
    "full-e6-b1024-wd4": {**FULL, "epochs": 6, "batch_size": 1024, "lr": 3e-3, "weight_decay": 4.0},
    "full-e10-b1024-wd3": {**FULL, "epochs": 10, "batch_size": 1024, "lr": 3e-3, "weight_decay": 3.0},
    # third round (after the faster loop): 7-8 epochs, lr 3.5e-3 to 4.5e-3, weight decay 2.5 to 3.3
    **{
        f"full-e{e}-b1024-wd{wd:g}-lr{lr:g}": {**FULL, "epochs": e, "batch_size": 1024, "lr": lr, "weight_decay": wd}
        for e, wd, lr in [
            (8, 3.0, 3.5e-3),
            (8, 3.0, 4e-3),
            (8, 3.0, 4.5e-3),
            (8, 2.5, 4e-3),
            (8, 2.8, 4e-3),
            (8, 3.2, 3.5e-3),
            (8, 3.3, 4e-3),
            (7, 3.0, 3.5e-3),
            (7, 3.0, 4e-3),
            (7, 3.0, 4.5e-3),
            (7, 3.3, 4e-3),
        ]
    },
    "full-e8-b1024-wd3-noise0.15": {
        **FULL,
        "epochs": 8,
        "batch_size": 1024,
        "lr": 3e-3,
        "weight_decay": 3.0,
        "noise_std": 0.15,
    },
    "app-quick": {**FULL, **PRESETS["quick"]},  # the app's quick preset, whatever it is now
}

GOAL_SECONDS, GOAL_MEDIAN_COS, GOAL_MIN_COS, GOAL_ACC = 5.0, 0.85, 0.80, 0.95


def top_cos_true_minus_false(model, mnist, config: Config) -> float:
    """core.reproduce.summarize's directions.true_minus_false.top_cos_centered_target (augmented view)."""
    eig = decompose(model, "true_minus_false")
    return cos_with_centered_target(eig.pixel_vectors[:1], mnist.train_x[config.target_index]).item()


def fit_in_pool(config: Config, splits) -> tuple:
    """Train as the app does: a job in server.jobs.TrainingPool (one thread by default; a lone training
    measures a few batches on every core and keeps the faster). Returns (model, history)."""
    from server.jobs import TrainingPool  # the app's glue: only on this path

    pool = TrainingPool(train, lambda trained: trained)
    job = pool.submit(config, splits, follower="bench")
    job.done.wait()
    if job.state != "finished":
        raise RuntimeError(f"the pool's training ended {job.state}: {job.error}")
    return job.result.model, list(job.history)


def run_candidate(name: str, overrides: dict, mnist, splits_cache: dict, seeds: list[int], pool: bool = False) -> dict:
    base = Config().replace(**overrides)
    key = (base.target_index, base.threshold, base.include_inverse, base.n_train, base.n_test)
    if key not in splits_cache:
        splits_cache[key] = make_splits(mnist, base)
    splits = splits_cache[key]
    runs = []
    for seed in seeds:
        config = base.replace(seed=seed)
        start = time.perf_counter()
        model, history = fit_in_pool(config, splits) if pool else fit(config, splits)
        seconds = time.perf_counter() - start
        cos = top_cos_true_minus_false(model, mnist, config)
        runs.append({"seed": seed, "seconds": seconds, "val_acc": history[-1].val_acc, "cos": cos})
        print(
            f"  {name} seed {seed}: {seconds:.2f} s  val acc {history[-1].val_acc:.4f}  |cos| {cos:.3f}",
            file=sys.stderr,
            flush=True,
        )
    secs = [r["seconds"] for r in runs]
    accs = [r["val_acc"] for r in runs]
    coss = [r["cos"] for r in runs]
    row = {
        "name": name,
        "overrides": overrides,
        "threads": "pool" if pool else torch.get_num_threads(),
        "seconds_median": statistics.median(secs),
        "seconds_max": max(secs),
        "acc_median": statistics.median(accs),
        "acc_min": min(accs),
        "cos_median": statistics.median(coss),
        "cos_min": min(coss),
        "runs": runs,
    }
    row["meets_goal"] = (
        row["seconds_median"] <= GOAL_SECONDS
        and row["cos_median"] >= GOAL_MEDIAN_COS
        and row["cos_min"] >= GOAL_MIN_COS
        and row["acc_median"] >= GOAL_ACC
    )
    return row


def settings_text(overrides: dict) -> str:
    short = {
        "n_train": "n_train",
        "n_test": "n_test",
        "epochs": "ep",
        "batch_size": "bs",
        "lr": "lr",
        "weight_decay": "wd",
        "noise_std": "σ",
    }
    parts = []
    for k, v in overrides.items():
        if k == "n_test":
            continue
        if k == "n_train":
            parts.append("full MNIST" if v is None else f"{v // 1000}k/{(overrides.get('n_test') or 10_000) // 1000}k")
        else:
            parts.append(f"{short.get(k, k)} {v:g}" if isinstance(v, float) else f"{short.get(k, k)} {v}")
    return ", ".join(parts)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| name | settings | threads | train s (median / max) | val acc (median / min) "
        "| \\|cos\\| median / min | \\|cos\\| per seed | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seeds = " ".join(f"{x['cos']:.3f}" for x in r["runs"])
        lines.append(
            f"| {r['name']} | {settings_text(r['overrides'])} | {r['threads']} | {r['seconds_median']:.2f} / "
            f"{r['seconds_max']:.2f} | {r['acc_median']:.4f} / {r['acc_min']:.4f} | {r['cos_median']:.3f} / "
            f"{r['cos_min']:.3f} | {seeds} | {'yes' if r['meets_goal'] else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these candidates (names from --list)")
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="JSON",
        help="an extra candidate as a JSON dict of Config overrides, e.g. '{\"epochs\": 8}' (repeatable)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1, as the app)")
    p.add_argument(
        "--pool", action="store_true", help="train each run as the app does, as a job of server.jobs.TrainingPool"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--json", type=Path, default=None, help="also write every run here")
    p.add_argument("--list", action="store_true", help="list the candidates and exit")
    args = p.parse_args(argv)

    candidates = dict(CANDIDATES)
    for text in args.extra:
        overrides = json.loads(text)
        candidates[f"extra: {settings_text(overrides)}"] = overrides
    if args.list:
        for name, overrides in candidates.items():
            print(f"{name}: {overrides}")
        return 0
    names = list(candidates)
    if args.only:
        unknown = set(args.only) - set(candidates)
        if unknown:
            p.error(f"unknown candidates {sorted(unknown)}; see --list")
        names = args.only
    if args.extra and not args.only:
        names = [n for n in names if n.startswith("extra: ")]

    torch.set_num_threads(args.threads)
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cores, "
        f"load average before: {' '.join(load_before)}",
        file=sys.stderr,
        flush=True,
    )
    mnist = load_mnist()
    splits_cache: dict = {}
    rows = []
    sweep_start = time.perf_counter()
    for name in names:
        rows.append(run_candidate(name, candidates[name], mnist, splits_cache, args.seeds, pool=args.pool))
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    print(markdown(rows))
    print(
        f"\nload average before {' '.join(load_before)}, after {' '.join(load_after)}; "
        f"sweep took {time.perf_counter() - sweep_start:.0f} s"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"threads": args.threads, "load_before": load_before, "load_after": load_after, "rows": rows}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
