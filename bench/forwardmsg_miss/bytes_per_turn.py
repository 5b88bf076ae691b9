"""What the ForwardMsg cache saves the lab: websocket bytes a page turn and a widget step receive (issue 28).

Serves the lab once with Streamlit's default cache (`global.minCachedMessageSize` 10 kB, references for
elements the browser already holds) and once with the cache off (the lab's setting since issue 28,
`.streamlit/config.toml`), walks one chromium page through every page and a few widget steps, and prints the
bytes received for each step and their total (`ref` counts the hash-only references the server sent):

    python bench/forwardmsg_miss/bytes_per_turn.py [--json artifacts/bytes_per_turn.json]

A class of 30 receives 30 times a student's bytes per page turn.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.browser import after_run, go_to, launch_chromium, streamlit_server, wait_idle  # noqa: E402

DEFAULT = ("--global.minCachedMessageSize", "10000")  # Streamlit's default
OFF = ("--global.minCachedMessageSize", "1e12")  # no element is ever that large: none is cached
# Received bytes and hash-only references, counted in the page (the client's own websocket).
COUNT_JS = """(() => {
    window.__received = {bytes: 0, frames: 0};
    const add = WebSocket.prototype.addEventListener;
    WebSocket.prototype.addEventListener = function (type, listener, options) {
        if (type === 'message') {
            const inner = listener;
            listener = event => {
                if (event.data instanceof ArrayBuffer) {
                    window.__received.bytes += event.data.byteLength;
                    window.__received.frames += 1;
                }
                return inner.call(this, event);
            };
        }
        return add.call(this, type, listener, options);
    };
})()"""
PAGES = [  # (sidebar title, heading)
    ("Label", "Label"),
    ("Train", "Train"),
    ("Tensor", "Tensor"),
    ("Eigenvectors", "Eigenvectors"),
    ("Explain", "Explain one input"),
    ("Truncation", "Truncation"),
    ("Class board", "Class board"),
    ("Home", "Bilinear Eigen Lab"),
    ("Label", "Label"),
    ("Eigenvectors", "Eigenvectors"),
]


def walk(url: str) -> list[dict]:
    from playwright.sync_api import sync_playwright

    steps = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(COUNT_JS)
        page.goto(url)
        wait_idle(page)

        def measure(name: str, action) -> None:
            before = page.evaluate("() => ({...window.__received})")
            action()
            wait_idle(page)
            page.wait_for_timeout(300)
            after = page.evaluate("() => ({...window.__received})")
            steps.append({"step": name, "bytes": after["bytes"] - before["bytes"]})

        steps.append({"step": "first load", "bytes": page.evaluate("() => window.__received.bytes")})
        for title, heading in PAGES:
            measure(f"to {title}", lambda t=title, h=heading: go_to(page, t, h))
            if title == "Label":
                threshold = page.locator('.st-key-threshold input[type="range"]')
                threshold.focus()
                measure("Label: threshold +0.01", lambda s=threshold: after_run(page, lambda: s.press("ArrowRight")))
                measure("Label: threshold -0.01", lambda s=threshold: after_run(page, lambda: s.press("ArrowLeft")))
            if title == "Eigenvectors":
                eig = page.locator('.st-key-grid_weight_decay input[type="range"]')
                if eig.count():
                    eig.focus()
                    measure("Eigenvectors: grid step", lambda s=eig: after_run(page, lambda: s.press("ArrowRight")))
                    measure("Eigenvectors: grid back", lambda s=eig: after_run(page, lambda: s.press("ArrowLeft")))
        browser.close()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for name, options in (("cache on (default)", DEFAULT), ("cache off", OFF)):
        with (
            tempfile.TemporaryDirectory() as tmp,
            streamlit_server(Path(tmp) / "streamlit.log", options=options) as (url, _),
        ):
            results[name] = walk(url)
    names = list(results)
    print(f"{'step':32s} " + " ".join(f"{n:>20s}" for n in names))
    for i, step in enumerate(results[names[0]]):
        print(f"{step['step']:32s} " + " ".join(f"{results[n][i]['bytes']:>20,d}" for n in names))
    totals = {n: sum(s["bytes"] for s in results[n]) for n in names}
    print(f"{'total':32s} " + " ".join(f"{totals[n]:>20,d}" for n in names))
    print(json.dumps({"totals": totals, "load_average": os.getloadavg()[0]}))
    if args.json:
        args.json.write_text(json.dumps({"steps": results, "totals": totals}, indent=1))


if __name__ == "__main__":
    main()
