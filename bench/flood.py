"""The issue 25 store-and-board flood, re-run: after a classmate trains one model, one student runs many tiny
width-1024 trainings from three tabs of one browser; then someone opens the class board.

Prints what the issue measured: the server's RSS before, after the flood and after the board's first draw
(psutil, the server and its children), the board's first draw in seconds, the store's files and bytes, how
many tiles the board shows, and whether the classmate's model is still on the board and behind its link.

    .venv/bin/python bench/flood.py --runs 64 [--port 8672] [--json artifacts/flood.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import preset
from core.identity import config_id
from harness.browser import (
    NO_THROTTLING_ARGS,
    ROOT,
    RssSampler,
    launch_chromium,
    server_rss,
    streamlit_server,
    wait_idle,
)

MAIN = '[data-testid="stMain"]'
TRAIN = ".st-key-train_button button"  # its label says its time (issue 24)
TINY = "/train?width=1024&slice=true&n_train=256&n_test=100&batch=256&epochs=1&seed={seed}"


def mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.port:
        os.environ["BILINEAR_LAB_TEST_PORT"] = str(args.port)
    out = ROOT / "artifacts" / "flood_bench"
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"store-{int(time.time())}"
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=300_000)
    report: dict = {"load_average_start": os.getloadavg()}
    with streamlit_server(out / "streamlit.log", model_store=str(store)) as (url, process), sync_playwright() as pw:
        browser = launch_chromium(pw, NO_THROTTLING_ARGS)
        classmate = browser.new_context().new_page()
        classmate.goto(f"{url}/train?epochs=8&wd=3.3&lr=0.004&batch=1024&seed=7")
        classmate.locator(TRAIN).first.click()
        expect(classmate.locator(MAIN).get_by_text("Training finished")).to_be_visible()
        mine = config_id(preset("quick", seed=7))
        report["rss_before_flood"] = server_rss(process.pid)
        flooder = browser.new_context()
        tabs = [flooder.new_page() for _ in range(3)]
        start = time.monotonic()
        with RssSampler(process.pid, interval=0.5) as rss:
            seed = 0
            while seed < args.runs:
                started = []
                for tab in tabs:
                    if seed >= args.runs:
                        break
                    tab.goto(url + TINY.format(seed=seed))
                    train = tab.locator(TRAIN).first
                    expect(train).to_be_enabled()
                    train.click()
                    started.append(tab)
                    seed += 1
                for tab in started:
                    expect(
                        tab.locator(MAIN).get_by_text(re.compile("Training finished|stopped|Not started"))
                    ).to_be_visible()
            report["flood_seconds"] = time.monotonic() - start
            report["rss_after_flood"] = server_rss(process.pid)
            report["rss_peak_flood"] = rss.peak
            rss.reset()
            board = browser.new_context().new_page()
            drawn = time.monotonic()
            board.goto(f"{url}/class_board")
            expect(board.locator(MAIN).get_by_text("Live: this board looks for new models")).to_be_visible()
            wait_idle(board, 300)
            report["board_first_draw_seconds"] = time.monotonic() - drawn
            report["rss_after_board"] = server_rss(process.pid)
            report["rss_peak_board"] = rss.peak
        report["board_tiles_of_the_class"] = board.locator(f"{MAIN} [data-testid='stImage']").count()
        report["classmate_model_on_board"] = board.locator(f"{MAIN} .st-key-board_use_{mine}").count() == 1
        link = browser.new_context().new_page()
        link.goto(f"{url}/eigenvectors?model={mine}")
        wait_idle(link, 300)
        report["classmate_link_says_gone"] = "not on this server" in link.locator(MAIN).inner_text()
        files = list(store.glob("*.safetensors"))
        report["store_files"], report["store_bytes"] = len(files), sum(f.stat().st_size for f in files)
        report["load_average_end"] = os.getloadavg()
        browser.close()
    for key, value in report.items():
        shown = mib(value) if key.startswith("rss") or key == "store_bytes" else value
        print(f"{key}: {shown}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
