"""How long one figure for slides takes to export (render.figures), and what the server's cache saves.

For the pretrained model: a pixel image (the top True − False eigenvector), the 65×65 matrix B as the
Tensor page's heatmap image, and two Altair charts (the eigenspectrum, and B as the hoverable heatmap
chart, the largest chart the app draws), each as
PNG and SVG. "first" is the process's first export of that kind (for charts it includes starting
vl-convert's JavaScript engine), then the median of `--repeat` fresh renders, then the median of
requests the cache answers (ExportCache.get for another session's Figure of content already
exported: its digest only, which for a chart means building its Vega-Lite JSON).

    .venv/bin/python bench/figure_export.py
    .venv/bin/python bench/figure_export.py --repeat 9 --json artifacts/figure_export.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from core.checkpoint import load_checkpoint
from core.eigen import decompose
from core.identity import TrainedModel
from core.tensor import interaction_tensor
from render import charts, figures
from ui.resources import SEED_CHECKPOINT


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    model, config, history = load_checkpoint(SEED_CHECKPOINT.read_bytes())
    trained = TrainedModel(model, config, tuple(history), "pretrained")
    settings = figures.Settings.of(trained)
    eigen = decompose(model, "true_minus_false", "bias_free")
    image = eigen.images()[0]
    shown = {
        "pixel image": figures.pixels(image, "eigenvector0", "#0", "Eigenvector 0 of True − False", settings),
        "eigenspectrum chart": figures.chart(
            charts.eigenspectrum(eigen.eigenvalues, 3, "top"), "spectrum", "Largest eigenvalues", settings
        ),
        "matrix heatmap image": figures.matrix(  # what the Tensor page draws and exports
            interaction_tensor(model).direction("true_minus_false"), "B", "B", "B", settings, ("unit", "unit"), 7
        ),
        "matrix heatmap chart": figures.chart(  # the Tensor page's "Hover for values" chart
            charts.matrix_heatmap(interaction_tensor(model).direction("true_minus_false"), "B", "unit", "unit"),
            "B",
            None,
            settings,
        ),
    }
    result = {}
    for name, figure in shown.items():
        for fmt in ("svg", "png"):
            first = seconds(lambda figure=figure, fmt=fmt: figures.render(figure, fmt))
            again = [seconds(lambda figure=figure, fmt=fmt: figures.render(figure, fmt)) for _ in range(args.repeat)]
            size = len(figures.render(figure, fmt))
            cache = figures.ExportCache()
            cache.get(figure, fmt)
            hits = [  # other sessions' Figures of the same content: each a hit, after its digest
                seconds(lambda fmt=fmt, cache=cache, f=figure: cache.get(dataclasses.replace(f), fmt))
                for _ in range(args.repeat)
            ]
            hit = statistics.median(hits)
            result[f"{name} {fmt}"] = {"first": first, "median": statistics.median(again), "hit": hit, "bytes": size}
            print(
                f"{name:20s} {fmt}: first {first * 1000:6.0f} ms, then {statistics.median(again) * 1000:5.0f} ms "
                f"(median of {args.repeat}), from the cache {hit * 1000:5.1f} ms; {size / 1000:.0f} kB"
            )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
