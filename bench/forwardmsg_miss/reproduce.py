"""Reproduce the "Cached ForwardMsg MISS" of issue 28 on demand, outside the lab (docs/forwardmsg_cache.md).

Starts `streamlit run bench/forwardmsg_miss/app.py` (with any `--global.*` option given after `--`) and, for each
of `--rounds` fresh chromium pages, presses the slider's arrow keys in fast bursts (`--presses` per burst, up then
back down, `--bursts` bursts), then reports the pages whose console logged the MISS or whose slider ended disabled:

    python bench/forwardmsg_miss/reproduce.py --rounds 20                 # Streamlit's default cache: dies
    python bench/forwardmsg_miss/reproduce.py --rounds 20 --lab           # the lab's .streamlit/config.toml
    python bench/forwardmsg_miss/reproduce.py --rounds 20 -- --global.maxCachedMessageAge 50

The server runs in the repository (as the lab's tests do), so it reads the lab's `.streamlit/config.toml`;
unless `--lab` is given, the two cache options are set back to Streamlit's defaults on the command line first.

`--busy` keeps that many extra processes spinning at nice 10 (the issue's failures came from a loaded machine).
`--port` pins the server's port (default: a free one). `--recover` serves app.py with the lab's connection guard
(`ui/recovery.py`) and checks that the dead page comes back by itself.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.browser import launch_chromium, streamlit_server, wait_idle  # noqa: E402

HERE = Path(__file__).resolve().parent
STREAMLIT_DEFAULTS = {"--global.minCachedMessageSize": "10000", "--global.maxCachedMessageAge": "2"}
MISS = "Cached ForwardMsg MISS"


def busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen(["nice", "-n", "10", sys.executable, "-c", "while 1: pass"]) for _ in range(n)]


# Every websocket frame in the order the page's JavaScript sends and receives them (the order the client's cache sees),
# kept base64-encoded in window.__frames for describe_frame.
FRAME_LOG_JS = """(() => {
    window.__frames = [];
    const b64 = data => btoa(String.fromCharCode(...new Uint8Array(data)));
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
        if (data instanceof ArrayBuffer || ArrayBuffer.isView(data))
            window.__frames.push(['sent', b64(ArrayBuffer.isView(data) ? data.slice().buffer : data)]);
        return send.call(this, data);
    };
    const add = WebSocket.prototype.addEventListener;
    WebSocket.prototype.addEventListener = function (type, listener, options) {
        if (type === 'message') {
            const inner = listener;
            listener = async event => {
                if (event.data instanceof ArrayBuffer) window.__frames.push(['received', b64(event.data)]);
                else if (event.data instanceof Blob)
                    window.__frames.push(['received', b64(await event.data.arrayBuffer())]);
                return inner.call(this, event);
            };
        }
        return add.call(this, type, listener, options);
    };
})()"""


def describe_frame(direction: str, payload: bytes | str) -> str | None:
    """One websocket frame, in the words of the cache: a rerun request and the hashes it says the browser holds,
    a run's start and end, a cacheable element (its hash) and a reference to one."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if isinstance(payload, str):
        return None
    if direction == "sent":
        back = BackMsg.FromString(payload)
        if back.WhichOneof("type") != "rerun_script":
            return None
        rerun = back.rerun_script
        hashes = ",".join(sorted(h[:8] for h in rerun.cached_message_hashes))
        return f"-> rerun fragment={rerun.fragment_id[:6] or 'app'} cached=[{hashes}]"
    msg = ForwardMsg.FromString(payload)
    kind = msg.WhichOneof("type")
    run = msg.metadata.run
    fragments = ",".join(f[:6] for f in run.fragment_ids) or "app"
    if kind == "new_session":
        return f"<- new_session run={run.script_run_id[:6]} fragments={fragments}"
    if kind == "script_finished":
        status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
        return f"<- script_finished {status} run={run.script_run_id[:6]}"
    if kind == "ref_hash":
        return f"<- ref_hash {msg.ref_hash[:8]}"
    if msg.metadata.cacheable:
        return f"<- cacheable element {msg.hash[:8]}"
    return None


def one_round(browser, url: str, presses: int, bursts: int, recover: bool, trace: bool = False) -> dict:
    """One fresh page: bursts of arrow presses up and down on the slider; what the console said."""
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    loads: list[int] = []
    page.on("load", lambda _: loads.append(1))
    if trace:
        page.add_init_script(FRAME_LOG_JS)
    page.goto(url)
    wait_idle(page)
    thumb = page.get_by_role("slider")
    thumb.focus()
    for _ in range(bursts):
        for key in ("ArrowRight", "ArrowLeft"):
            for _ in range(presses):
                page.keyboard.press(key)  # no wait for the run: a student's fast fingers
    page.wait_for_timeout(1500)
    missed = [line for line in console if MISS in line]
    result = {"miss": bool(missed), "hash": missed[0].split("hash=")[1][:8] if missed else None}
    if trace and missed:
        frames = page.evaluate("() => window.__frames")
        shown = [text for text in (describe_frame(d, base64.b64decode(data)) for d, data in frames) if text]
        last_ref = max(i for i, f in enumerate(shown) if f == f"<- ref_hash {result['hash']}")
        result["frames"] = shown[max(0, last_ref - 24) : last_ref + 1]
    try:
        result["disabled"] = page.get_by_role("slider").is_disabled(timeout=2000)
    except Exception:
        result["disabled"] = True
    if recover and missed:
        # the guard reloads the page by itself: a new page load whose slider answers, with a quiet console
        try:
            deadline = time.monotonic() + 20
            while len(loads) < 2 and time.monotonic() < deadline:  # the first load was page.goto's
                page.wait_for_timeout(200)
            assert len(loads) >= 2, "the dead page was not reloaded"
            wait_idle(page)
            console.clear()
            thumb = page.get_by_role("slider")
            thumb.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(1000)
            result["recovered"] = thumb.is_enabled() and not any(MISS in line for line in console)
        except Exception as error:
            result["recovered"] = False
            result["error"] = str(error)[:200]
    page.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--presses", type=int, default=5)
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--busy", type=int, default=0, help="extra spinning processes at nice 10")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--recover", action="store_true")
    parser.add_argument("--lab", action="store_true", help="the lab's cache settings, not Streamlit's defaults")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--trace", action="store_true", help="print the websocket frames before a MISS")
    parser.add_argument("options", nargs="*", help="streamlit options after --, e.g. --global.maxCachedMessageAge 50")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if args.port:
        os.environ["BILINEAR_LAB_PORTS"] = f"{args.port}-{args.port}"
    chosen = {} if args.lab else dict(STREAMLIT_DEFAULTS)
    chosen.update(zip(args.options[::2], args.options[1::2], strict=True))
    options = [part for pair in chosen.items() for part in pair]
    spinners = busy(args.busy)
    results = []
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = HERE / ("app_recover.py" if args.recover else "app.py")
            with (
                streamlit_server(Path(tmp) / "streamlit.log", script=script, options=options) as (url, _),
                sync_playwright() as playwright,
            ):
                browser = launch_chromium(playwright)
                for i in range(args.rounds):
                    results.append(one_round(browser, url, args.presses, args.bursts, args.recover, args.trace))
                    frames = results[-1].pop("frames", [])
                    print(f"round {i + 1}: {results[-1]}", *frames, sep="\n    ", flush=True)
                browser.close()
    finally:
        for spinner in spinners:
            spinner.kill()
    hits = sum(r["miss"] for r in results)
    dead = sum(r["disabled"] for r in results)
    summary = {
        "options": options or "the lab's .streamlit/config.toml",
        "rounds": len(results),
        "presses_per_round": 2 * args.presses * args.bursts,
        "miss": hits,
        "disabled": dead,
        "recovered": sum(r.get("recovered", False) for r in results) if args.recover else None,
        "hashes": sorted({r["hash"] for r in results if r["hash"]}),
        "seconds": round(time.perf_counter() - start, 1),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rounds": results}, indent=1))


if __name__ == "__main__":
    main()
