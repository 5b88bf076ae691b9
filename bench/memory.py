"""Where the server's memory goes: import floors, the dataset, training, and one session's main path.

Every number is the resident set (RSS, psutil) of a fresh process, so nothing measured earlier
skews it; USS (pages only this process holds) is shown beside it where it differs, because most of
the CUDA build's RSS is shared library code. "Peak" is the kernel's high-water mark (VmHWM),
reset (/proc/PID/clear_refs) just before the step it belongs to.

  imports   `python -c "import X"` for the app's dependencies, one subprocess each: the floor the
            server cannot go below (`import torch`), and what each other package adds on top of it.
            `--cpu-python PATH` also measures `import torch` under another interpreter (e.g. a
            throwaway venv holding the CPU build of torch) for the CUDA-vs-CPU comparison.
  steps     one subprocess doing the server's work step by step with the app's own functions:
            import torch -> load_mnist (uint8) -> a float copy of it (what the app must never hold)
            -> similarities -> the shipped checkpoint -> AdamW() (imports torch._dynamo) -> one
            quick-preset training -> the Eigenvectors computation.
  pages     AppTest in a subprocess: the RSS after the first run of each page, and which heavy
            modules are in sys.modules by then (imported at start-up or not).
  server    `streamlit run` headless, idle, then one chromium session taking the main path
            (Home -> Label -> Train with the quick preset and --epochs -> Tensor -> Eigenvectors, then
            every other page): the server's RSS after each page and the peak over the whole path,
            against the bare `import torch` floor.

    .venv/bin/python bench/memory.py
    .venv/bin/python bench/memory.py --cpu-python /tmp/torchcpu/bin/python --json artifacts/memory.json
    MALLOC_MMAP_THRESHOLD_=131072 .venv/bin/python bench/memory.py   # every subprocess and the server inherit it
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from harness.browser import ROOT, go_to, launch_chromium, streamlit_server, wait_idle

MB = 2**20
HEAVY = [
    "torch",
    "torch._dynamo",
    "torch._inductor",
    "sympy",
    "numpy",
    "pandas",
    "pyarrow",
    "altair",
    "narwhals",
    "PIL",
    "einops",
    "safetensors",
    "kornia",
    "torchvision",
    "scipy",
    "matplotlib",
]

# Runs first in every probe subprocess: mem() reads this process's memory, step() measures one step.
PRELUDE = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {root!r})
    os.chdir({root!r})
    import psutil
    _p = psutil.Process()

    def _hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def _reset_peak():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    _results = []

    def step(label, code, scope=globals()):
        before = _p.memory_info().rss
        _reset_peak()
        start = time.perf_counter()
        exec(code, scope)
        seconds = time.perf_counter() - start
        full = _p.memory_full_info()
        _results.append(dict(label=label, before=before, rss=full.rss, uss=full.uss, peak=_hwm(),
                             seconds=seconds, modules=[m for m in {heavy!r} if m in sys.modules]))

    def done():
        print("@@RESULT@@" + json.dumps(_results))
""")


def probe(python: str, steps: list[tuple[str, str]]) -> list[dict]:
    """Run the steps (label, code) in one fresh `python` process; one measurement per step."""
    body = "\n".join(f"step({label!r}, {code!r})" for label, code in steps)
    script = PRELUDE.format(root=str(ROOT), heavy=HEAVY) + body + "\ndone()\n"
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=900)
    if out.returncode != 0 or "@@RESULT@@" not in out.stdout:
        raise RuntimeError(f"probe failed ({python}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.split("@@RESULT@@", 1)[1])


# --------------------------------------------------------------------------- imports


def imports(cpu_python: str | None) -> dict[str, dict]:
    """RSS after `import X` in a fresh process; on top of torch where X is not torch itself."""
    results: dict[str, dict] = {}
    bare = probe(sys.executable, [("bare", "pass")])[0]
    results["bare python (+psutil)"] = bare
    alone = {"import torch": "import torch", "import streamlit": "import streamlit", "import numpy": "import numpy"}
    for label, code in alone.items():
        results[label] = probe(sys.executable, [(label, code)])[0]
    if cpu_python:
        version = subprocess.run(
            [cpu_python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
        ).stdout.strip()
        results[f"import torch ({version}, --cpu-python)"] = probe(cpu_python, [("import torch", "import torch")])[0]
        results[f"torch ({version}) + AdamW()"] = probe(
            cpu_python,
            [("torch", "import torch"), ("AdamW()", "torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())")],
        )[1]
    on_torch = {
        "+ streamlit": "import streamlit",
        "+ AdamW() (imports torch._dynamo, sympy, inductor)": "torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())",
        "+ pandas": "import pandas",
        "+ pyarrow": "import pyarrow",
        "+ altair": "import altair",
        "+ PIL.Image": "import PIL.Image",
        "+ einops": "import einops",
        "+ safetensors.torch": "import safetensors.torch",
        "+ kornia": "import kornia",
        "+ torchvision": "import torchvision",
    }
    for label, code in on_torch.items():
        try:
            results[label] = probe(sys.executable, [("torch", "import torch"), (label, code)])[1]
        except RuntimeError as error:  # e.g. a package that is not installed
            results[label] = {"failed": str(error).splitlines()[-1]}
    return results


# --------------------------------------------------------------------------- the server's work, step by step


def steps(epochs: int) -> list[dict]:
    return probe(
        sys.executable,
        [
            ("import torch", "import torch"),
            (
                "import streamlit, core.*",
                "import streamlit; from core import data, labels, train, eigen, tensor, checkpoint",
            ),
            ("load_mnist() (uint8)", "from core.data import load_mnist, to_float; mnist = load_mnist()"),
            ("a float copy of train_x (to_float)", "floats = to_float(mnist.train_x)"),
            ("... deleted again", "del floats"),
            (
                "similarities(target 6), train+test",
                "sims = (labels.cosine_similarities(mnist.train_x, mnist.train_x[6]), "
                "labels.cosine_similarities(mnist.test_x, mnist.train_x[6]))",
            ),
            (
                "the shipped checkpoint",
                "seed = checkpoint.load_checkpoint(open('checkpoints/seed-default.safetensors', 'rb').read())",
            ),
            ("AdamW() once (torch._dynamo etc.)", "torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())"),
            (
                f"quick-preset training, {epochs} epochs",
                textwrap.dedent(f"""
            from core.config import preset
            quick = preset("quick", epochs={epochs})
            splits = labels.make_splits(mnist, quick)
            model, history = train.fit(quick, splits)"""),
            ),
            ("a second training (another seed)", "model2, _ = train.fit(quick.replace(seed=7), splits)"),
            (
                "Eigenvectors page's computation",
                textwrap.dedent("""
            e = eigen.decompose(model, 'true_minus_false')
            images = e.images()"""),
            ),
        ],
    )


# --------------------------------------------------------------------------- pages (AppTest)

PAGES_CODE = """
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=600)
"""


def pages() -> list[dict]:
    paths = sorted(Path(p).relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py"))
    paths = sorted(paths, key=lambda p: not p.endswith("home.py"))
    run = [
        ("AppTest imported", PAGES_CODE.format(app=str(ROOT / "streamlit_app.py"))),
        ("first run (Home)", "at.run()"),
    ]
    run += [(path, f"at.switch_page({path!r}); at.run()") for path in paths if not path.endswith("home.py")]
    return probe(sys.executable, run)


# --------------------------------------------------------------------------- the real server


def read_status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def server(epochs: int) -> dict:
    import psutil
    from playwright.sync_api import sync_playwright

    rows: list[dict] = []
    log = Path(tempfile.mkdtemp(prefix="memory_")) / "streamlit.log"
    with sync_playwright() as playwright, streamlit_server(log, timeout=120) as (url, process):
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        server_process = psutil.Process(process.pid)

        def mark(label: str) -> None:
            full = server_process.memory_full_info()
            rows.append({"label": label, "rss": full.rss, "uss": full.uss, "peak": read_status(process.pid, "VmHWM")})

        mark("idle (healthy, no session)")
        reset_peak(process.pid)
        page.goto(url)
        wait_idle(page, 120)
        mark("Home")
        go_to(page, "Label")
        mark("Label")
        go_to(page, "Train")
        page.get_by_text("Advanced and classroom options").click()
        page.get_by_role("button", name="Quick classroom preset").click()
        wait_idle(page)
        box = page.locator(".st-key-epochs input")
        box.fill(str(epochs))
        box.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text("Training finished").wait_for(timeout=300_000)
        wait_idle(page)
        mark(f"Train ({epochs} epochs, quick preset)")
        go_to(page, "Tensor")
        mark("Tensor")
        go_to(page, "Eigenvectors")
        mark("Eigenvectors (main path done)")
        path_peak = read_status(process.pid, "VmHWM")
        titles = [
            a.inner_text().strip().split("\n")[-1].strip() for a in page.locator('[data-testid="stSidebarNav"] a').all()
        ]
        for title in titles:
            if not any(done in title for done in ("Home", "Label", "Train", "Tensor", "Eigenvectors")):
                go_to(page, title)
                mark(f"{title} (beyond the main path)")
        browser.close()
    return {"rows": rows, "path_peak": path_peak, "log": str(log)}


# --------------------------------------------------------------------------- main


def mb(value: float) -> str:
    return f"{value / MB:8.1f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the quick-preset training (default 3)")
    parser.add_argument(
        "--cpu-python",
        default=None,
        help="another interpreter whose `import torch` to measure (e.g. a venv with the CPU build)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args(argv)
    import torch

    knobs = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "OMP_"))}
    result: dict = {"torch": torch.__version__, "malloc_env": knobs}
    result["imports"] = imports(args.cpu_python)
    result["steps"] = steps(args.epochs)
    result["pages"] = pages()
    if not args.skip_server:
        result["server"] = server(args.epochs)

    floor = result["imports"]["import torch"]["rss"]
    print(
        f"torch {torch.__version__} (this venv); RSS and USS in MB; fresh process per row unless said otherwise; "
        f"load average {os.getloadavg()[0]:.2f}" + (f"; {result['malloc_env']}" if result["malloc_env"] else "")
    )
    print("\nimports, each in a fresh process ('+ X': import torch, then X; delta = what X adds)")
    print(f"{'what':<58} {'RSS':>8} {'delta':>8} {'USS':>8} {'seconds':>8}")
    for label, r in result["imports"].items():
        if "failed" in r:
            print(f"{label:<58} failed: {r['failed']}")
            continue
        print(f"{label:<58} {mb(r['rss'])} {mb(r['rss'] - r['before'])} {mb(r['uss'])} {r['seconds']:8.2f}")
    if not args.cpu_python:
        print("(the CPU build of torch was not measured: pass --cpu-python)")

    print("\nthe server's work step by step, in one process (peak = high-water mark during the step)")
    print(f"{'step':<42} {'RSS':>8} {'delta':>8} {'peak':>8} {'USS':>8} {'seconds':>8}")
    for r in result["steps"]:
        print(
            f"{r['label']:<42} {mb(r['rss'])} {mb(r['rss'] - r['before'])} {mb(r['peak'])} {mb(r['uss'])} "
            f"{r['seconds']:8.2f}"
        )

    print("\nAppTest, one process: RSS after the first run of each page, and which heavy modules are loaded")
    print(f"{'page':<30} {'RSS':>8} {'delta':>8} {'seconds':>8}  modules")
    seen: set[str] = set()
    for r in result["pages"]:
        new = [m for m in r["modules"] if m not in seen]
        seen.update(r["modules"])
        print(
            f"{r['label']:<30} {mb(r['rss'])} {mb(r['rss'] - r['before'])} {r['seconds']:8.2f}  "
            f"{'+ ' + ', '.join(new) if new else ''}"
        )
    never = [m for m in HEAVY if m not in seen]
    print(f"never imported by any page: {', '.join(never) or '-'}")

    if "server" in result:
        s = result["server"]
        print(f"\n`streamlit run`, one chromium session (server log {s['log']})")
        print(f"{'after':<44} {'RSS':>8} {'USS':>8} {'peak':>8}")
        for r in s["rows"]:
            print(f"{r['label']:<44} {mb(r['rss'])} {mb(r['uss'])} {mb(r['peak'])}")
        idle = s["rows"][0]["rss"]
        print(
            f"peak over the main path {s['path_peak'] / MB:.1f} MB = {s['path_peak'] / floor:.2f}x the bare "
            f"`import torch` floor ({floor / MB:.1f} MB); idle server {idle / MB:.1f} MB"
        )

    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
