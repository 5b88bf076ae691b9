"""What the live eigenvector costs a training (issue 27: under 5 % of the training time).

    .venv/bin/python bench/live_eigenvector.py                # quick preset, 2 rounds, 1 thread
    .venv/bin/python bench/live_eigenvector.py --rounds 3 --threads 2 --weight-decay 0

In one process, alternately: the quick preset trained plainly (core.train.train, the baseline) and trained as
the server's pool trains it (server.jobs.TrainingPool with a target: a snapshot of the initial weights, three
in the first epoch, one after every epoch, core.snapshot.Watcher), here without the time budget so every
snapshot is taken and counted. Printed per round: both trainings' seconds, the snapshots' own seconds (measured
around each), per snapshot, and their share of the watched training; then the medians, the ratio watched /
baseline, the PNG each snapshot becomes on screen (render.figures, once per content for the server), and a
snapshot's cost at larger d_hidden (where the watcher's budget drops snapshots instead). The machine is shared:
the load average is printed before and after, and the ratio is only read within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core.config import preset
from core.data import load_mnist
from core.labels import make_splits
from core.snapshot import take
from core.train import new_model, train
from render import figures
from server.jobs import TrainingPool


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def baseline(config, splits) -> float:
    model = new_model(config)
    start = time.perf_counter()
    for _ in train(model, splits, config):
        pass
    return time.perf_counter() - start


def watched(config, splits, target) -> tuple[float, list[float], int]:
    """The pool's training with snapshots; (seconds from submit to published, each snapshot's seconds, count)."""
    costs: list[float] = []
    import core.snapshot as snapshot_module  # to time each snapshot where the pool takes it

    real_take = snapshot_module.take

    def timed_take(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real_take(*args, **kwargs)
        finally:
            costs.append(time.perf_counter() - start)

    done = threading.Event()
    snapshot_module.take = timed_take
    import server.jobs as jobs_module

    jobs_module.take = timed_take  # submit's first snapshot
    try:
        pool = TrainingPool(
            train,
            lambda trained: (done.set(), trained)[1],
            workers=1,
            threads_alone=torch.get_num_threads(),
            nice=0,
            target=lambda config: target,
            snapshot_budget=None,
        )
        start = time.perf_counter()
        job = pool.submit(config, splits, "bench")
        assert done.wait(600), "the watched training finished"
        seconds = time.perf_counter() - start
    finally:
        snapshot_module.take = real_take
        jobs_module.take = real_take
    return seconds, costs, len(job.snapshots)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the pool's one beside another job)")
    p.add_argument("--weight-decay", type=float, default=None, help="change the quick preset's weight decay")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    changes = {} if args.weight_decay is None else {"weight_decay": args.weight_decay}
    config = preset("quick", **changes)
    mnist = load_mnist()
    splits = make_splits(mnist, config)
    target = mnist.train_x[config.target_index]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, {args.threads} thread(s)")
    print(f"config: quick preset{f', weight decay {args.weight_decay:g}' if changes else ''}: {config}")
    print(f"load average at start: {os.getloadavg()}")
    take(new_model(config), target, 0, 1)  # warm up eigh and friends once
    plain, seen, shares = [], [], []
    for r in range(args.rounds):
        b = baseline(config, splits)
        w, costs, n = watched(config, splits, target)
        plain.append(b)
        seen.append(w)
        shares.append(sum(costs) / w)
        print(
            f"round {r + 1}: baseline {b:.2f} s | watched {w:.2f} s, {n} snapshots taking {sum(costs) * 1000:.1f} ms "
            f"({statistics.median(costs) * 1000:.2f} ms median, {max(costs) * 1000:.2f} ms max) = "
            f"{sum(costs) / w:.2%} of the watched training | watched / baseline {w / b:.3f}"
        )
    per_epoch = statistics.median(shares) * statistics.median(seen) / config.epochs
    print(
        f"medians: baseline {statistics.median(plain):.2f} s, watched {statistics.median(seen):.2f} s, "
        f"ratio {statistics.median(seen) / statistics.median(plain):.3f}; snapshots' own share "
        f"{statistics.median(shares):.2%} (goal < 5 %); per epoch {per_epoch * 1000:.1f} ms "
        f"of snapshots against {statistics.median(seen) / config.epochs:.2f} s of training"
    )
    for seed in (1, 2):  # the first PNG pays Pillow's first use
        image = take(new_model(preset("quick", seed=seed)), target, 0, 1).image()
        figure = figures.pixels(image, "live", "live", "", figures.Settings(config))
        start = time.perf_counter()
        figure.screen_png()
    print(f"one snapshot's PNG on screen: {(time.perf_counter() - start) * 1000:.2f} ms (once per content per server)")
    for width in (256, 1024):
        wide = new_model(preset("quick", d_hidden=width))
        start = time.perf_counter()
        take(wide, target, 0, 1)
        print(
            f"one snapshot at d_hidden {width}: {time.perf_counter() - start:.3f} s (the watcher's budget thins them)"
        )
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
