"""Time from the Train click to the first live eigenvector, and screenshots of runs side by side (issue 27).

    .venv/bin/python bench/live_side_by_side.py --url http://127.0.0.1:8650 --weight-decays 0 3
    .venv/bin/python bench/live_side_by_side.py --weight-decays 3.3 --repeat 3 --seed-offset 10   # alone

Opens one chromium page per weight decay on the Train page with the quick preset's settings (a link:
wd, epochs 8, lr 4e-3, batch 1024; a new seed per repeat so every click trains), clicks Train on all of them at
once and measures, per page, the seconds from the click to the first live top-eigenvector image (alt "while
training") and to "Training finished"; screenshots of every page in the middle of the run and at its end go to
--out, and the pages' Train panels side by side into one PNG each. Without --url it starts its own server
(harness.browser; BILINEAR_LAB_PORTS picks its port).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from harness.browser import launch_chromium, streamlit_server, wait_idle

EPOCHS = 8  # the quick preset's
TRAIN = re.compile(r"^Train \(")  # "Train (about 5 s)"
LIVE = '[data-testid="stMain"] img[alt*="while training"]'


def side_by_side(paths: list[Path], out: Path, crop_top: int = 0) -> None:
    images = [Image.open(p).convert("RGB") for p in paths]
    images = [im.crop((0, crop_top, im.width, im.height)) for im in images]
    canvas = Image.new("RGB", (sum(im.width for im in images), max(im.height for im in images)), "white")
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width
    canvas.save(out)


def run(url: str, decays: list[float], out: Path, seed: int, tag: str) -> list[dict]:
    results = []
    with sync_playwright() as playwright:
        browser = launch_chromium(
            playwright, ("--disable-background-timer-throttling", "--disable-renderer-backgrounding")
        )
        pages = []
        for wd in decays:
            page = browser.new_page(viewport={"width": 1000, "height": 2100})
            page.goto(f"{url}/train?wd={wd:g}&epochs={EPOCHS}&lr=0.004&batch=1024&seed={seed}")
            pages.append(page)
        for page in pages:
            wait_idle(page)
            expect(page.get_by_role("button", name=TRAIN)).to_be_enabled(timeout=60_000)
        clicked = []
        for page in pages:
            clicked.append(time.perf_counter())  # before: click() returns only once the page took the click
            page.get_by_role("button", name=TRAIN).click()
        first: list[float | None] = [None] * len(pages)
        done: list[float | None] = [None] * len(pages)
        middle_taken = [False] * len(pages)
        deadline = time.perf_counter() + 600
        while None in done and time.perf_counter() < deadline:
            for i, page in enumerate(pages):
                if done[i] is not None:
                    continue
                now = time.perf_counter()
                if first[i] is None and page.locator(LIVE).count() > 0:
                    first[i] = now - clicked[i]
                alt = None
                if first[i] is not None and page.locator(LIVE).count() > 0:
                    try:
                        alt = page.locator(LIVE).first.get_attribute("alt", timeout=200)
                    except Exception:  # redrawn between the count and the read
                        alt = None
                at = re.search(r"while training \(epoch ([0-9.]+)\)", alt or "")
                if at and not middle_taken[i] and float(at.group(1)) >= EPOCHS / 2:
                    page.screenshot(path=out / f"{tag}_{i}_wd{decays[i]:g}_live.png")
                    middle_taken[i] = True
                if page.get_by_text("Training finished").count() > 0:
                    done[i] = now - clicked[i]
            time.sleep(0.05)
        for i, page in enumerate(pages):
            wait_idle(page)
            time.sleep(0.5)
            page.screenshot(path=out / f"{tag}_{i}_wd{decays[i]:g}_after.png")
            results.append({"weight_decay": decays[i], "first_image_s": first[i], "finished_s": done[i]})
        browser.close()
    for when in ("live", "after"):
        paths = [out / f"{tag}_{i}_wd{wd:g}_{when}.png" for i, wd in enumerate(decays)][:4]
        if all(p.exists() for p in paths):
            side_by_side(paths, out / f"{tag}_side_by_side_{when}.png", crop_top=0)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=None, help="an app already running (default: start one)")
    p.add_argument("--weight-decays", type=float, nargs="+", default=[0.0, 3.0], help="one page (student) each")
    p.add_argument("--students", type=int, default=0, help="instead: this many pages, all at the first weight decay")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed-offset", type=int, default=100, help="seeds used: offset, offset + 1, … (fresh models)")
    p.add_argument("--out", type=Path, default=Path("artifacts/live_eigenvector"))
    args = p.parse_args()
    if args.students:
        args.weight_decays = args.weight_decays[:1] * args.students
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}")
    server = nullcontext((args.url, None)) if args.url else streamlit_server(Path(tempfile.mkdtemp()) / "streamlit.log")
    with server as (url, _):
        for r in range(args.repeat):
            for row in run(url, args.weight_decays, args.out, args.seed_offset + r, f"run{r + 1}"):
                first, done = row["first_image_s"], row["finished_s"]
                print(
                    f"repeat {r + 1} wd {row['weight_decay']:g}: first live eigenvector "
                    f"{'never' if first is None else f'{first:.2f} s'} after the click, training finished "
                    f"{'never' if done is None else f'{done:.1f} s'} (load {os.getloadavg()[0]:.1f})"
                )
    print(f"screenshots in {args.out.resolve()}")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
