"""Is a protocol student (loadtest/protocol.py) a faithful stand-in for a browser? One quiet server,
one chromium tab and one protocol student, alone on it in turn.

Both take the same page switches, Home -> Label -> Train -> Eigenvectors -> Tensor -> Explain, for --rounds
rounds (Explain -> Label between rounds), one switch at a time, the tab first, then the student. Printed per
step (medians): the script run as the tab saw it (click -> the run finished, in the page) and as its frames
went (the rerun frame sent -> script_finished received, with the timestamps of DevTools' Network.webSocketFrame*
events), against the student's (rerun sent -> script_finished); the h1 shown in the page against the h1
delta; and the server's CPU seconds for each switch (psutil, from the switch to SETTLE s after it, so the tab's
image requests count): the same work should cost the server the same CPU either way. Then, on every page of
the first round, the widget states: the tab toggles the sidebar's Projector switch (on, then off), which makes
the frontend send every widget's state, and those (from its frames) are compared with the student's.

    .venv/bin/python bench/protocol_vs_browser.py              # 3 rounds
    .venv/bin/python bench/protocol_vs_browser.py --rounds 5 --json artifacts/protocol_vs_browser.json
    .venv/bin/python bench/protocol_vs_browser.py --browser-shares 100   # chromium at a tenth of the server's share
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from harness.browser import NO_THROTTLING_ARGS, after_run_async, launch_chromium, streamlit_server, wait_idle_async
from loadtest.browser import BrowserStudent
from loadtest.cgroups import BrowserCpuGroup
from loadtest.protocol import ProtocolTab
from loadtest.session import Session
from loadtest.usage import Recorder

SETTLE = 1.0  # s after a switch, for what follows its run (the tab's image requests), before the next one
PATH = (  # (sidebar link, h1 text) after Home
    ("Label", "Label"),
    ("Train", "Train"),
    ("Eigenvectors", "Eigenvectors"),
    ("Tensor", "Tensor"),
    ("Explain", "Explain one input"),
)


def states(widgets) -> dict[str, dict]:
    """WidgetStates by widget key (the end of the id), without the id."""
    from google.protobuf.json_format import MessageToDict

    return {w.id.split("-", 2)[-1]: {k: v for k, v in MessageToDict(w).items() if k != "id"} for w in widgets}


async def browser_states(tab: BrowserStudent, sent: list, timeout: float) -> dict[str, dict]:
    """Every widget state the tab's frontend holds: toggle Projector mode on (a rerun with all of them), off."""
    toggle = tab.page.locator('[data-testid="stSidebar"]').get_by_text("Projector mode")
    before = len(sent)
    await after_run_async(tab.page, toggle.click, timeout)
    shown = states(sent[before].widget_states.widgets)
    await after_run_async(tab.page, toggle.click, timeout)
    shown.pop("projector", None)  # on in that rerun, off in the student's
    return shown


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its children."""
    import psutil

    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (process, *process.children(recursive=True)))


async def compare(url: str, server: int, rounds: int, timeout: float, browsers: BrowserCpuGroup | None) -> dict:
    from playwright.async_api import async_playwright
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    sent: list = []  # the tab's rerun_script ClientStates, in order
    reruns: list[float] = []  # when each left the browser (CDP timestamps: the browser's network stack, seconds)
    finished: list[float] = []  # when each full run's script_finished reached it

    def frame(params: dict, outgoing: bool) -> None:
        if params["response"]["opcode"] != 2:  # binary frames only: Streamlit's protobufs
            return
        payload = base64.b64decode(params["response"]["payloadData"])
        if outgoing:
            msg = BackMsg()
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") == "rerun_script":
                sent.append(msg.rerun_script)
                reruns.append(params["timestamp"])
        else:
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            if msg.WhichOneof("type") == "script_finished" and not msg.metadata.run.fragment_ids:
                finished.append(params["timestamp"])

    def on_the_wire(rerun: int) -> float | None:
        """The tab's `rerun`-th rerun frame sent -> the next full run's script_finished frame received."""
        if rerun >= len(reruns):
            return None
        done = next((t for t in finished if t >= reruns[rerun]), None)
        return None if done is None else done - reruns[rerun]

    recorder = Recorder(os.getpid())  # only its clock is used
    browser_session, protocol_session = Session(0, 0), Session(1, 0, "protocol")
    widgets: dict[str, dict] = {}
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, NO_THROTTLING_ARGS)
        if browsers is not None:
            browsers.release(os.getpid())  # the student with the server, chromium in the group
        tab = await BrowserStudent.open(browser, url, timeout)
        cdp = await tab.page.context.new_cdp_session(tab.page)
        cdp.on("Network.webSocketFrameSent", lambda params: frame(params, True))
        cdp.on("Network.webSocketFrameReceived", lambda params: frame(params, False))
        await cdp.send("Network.enable")
        await tab.page.reload()  # a new session, on a websocket now watched
        await wait_idle_async(tab.page, timeout)
        student = await ProtocolTab.open(url, timeout)
        previous = "Home"
        for round_ in range(rounds):
            path = PATH if round_ == 0 else (("Label", "Label"), *PATH[1:])
            for link, heading in path:
                step = f"{previous}→{link}"
                rerun = len(reruns)
                used = cpu_seconds(server)
                await tab.switch_to(browser_session, recorder, step, link, heading, timeout)
                await asyncio.sleep(SETTLE)
                browser_session.switches[-1].update(wire=on_the_wire(rerun), cpu=cpu_seconds(server) - used)
                await tab.check_errors(browser_session, link)
                used = cpu_seconds(server)
                await student.switch_to(protocol_session, recorder, step, link, heading, timeout)
                await asyncio.sleep(SETTLE)
                protocol_session.switches[-1]["cpu"] = cpu_seconds(server) - used
                await student.check_errors(protocol_session, link)
                if round_ == 0:
                    mine = states(student.client.widgets.values())
                    mine.pop("projector", None)
                    theirs = await browser_states(tab, sent, timeout)
                    widgets[link] = {
                        "browser": len(theirs),
                        "protocol": len(mine),
                        "differences": {
                            key: [theirs.get(key), mine.get(key)]
                            for key in theirs.keys() | mine.keys()
                            if theirs.get(key) != mine.get(key)
                        },
                    }
                previous = link
        await student.close()
        await browser.close()
    return {
        "browser": browser_session.switches,
        "protocol": protocol_session.switches,
        "widgets": widgets,
        "errors": browser_session.errors + protocol_session.errors,
    }


def report(result: dict) -> None:
    def median(kind: str, step: str, key: str) -> str:
        values = [sw[key] for sw in result[kind] if sw["step"] == step and sw[key] is not None]
        return f"{statistics.median(values):.3f}" if values else "-"

    print(
        f"one quiet server, a chromium tab and a protocol student alone on it in turn, {result['rounds']} rounds"
        + (f", chromium at {result['browser_shares']} cpu.shares" if result["browser_shares"] else "")
        + "; "
        f"load average {result['load_average'][0]:.2f} before, {result['load_average'][1]:.2f} after"
    )
    print("medians, seconds after the click (tab) or after the rerun was sent (student). Tab, frames: its rerun frame")
    print("sent -> the script_finished frame received, as DevTools timestamps them. CPU: the server's CPU seconds from")
    print(f"the switch to {SETTLE:.0f} s after it (its script run, and the tab's image requests)")
    print(
        f"{'step':<22} {'tab: run finished':>18} {'tab: frames':>12} {'student: finished':>18} "
        f"{'tab: h1 shown':>14} {'student: h1':>12} {'CPU: tab':>9} {'student':>8}"
    )
    for step in dict.fromkeys(sw["step"] for sw in result["browser"]):
        print(
            f"{step:<22} {median('browser', step, 'run_done'):>18} {median('browser', step, 'wire'):>12} "
            f"{median('protocol', step, 'run_done'):>18} {median('browser', step, 'heading'):>14} "
            f"{median('protocol', step, 'heading'):>12} {median('browser', step, 'cpu'):>9} "
            f"{median('protocol', step, 'cpu'):>8}"
        )
    print()
    print("widget states the frontend sends vs the student's, per page (first round)")
    for page, seen in result["widgets"].items():
        same = "identical" if not seen["differences"] else f"DIFFERENT: {seen['differences']}"
        print(f"  {page:<14} {seen['browser']} states from the tab, {seen['protocol']} from the student: {same}")
    print(f"error elements: {result['errors'] or 'none'}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="times through the path (default 3)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any one step may take")
    parser.add_argument(
        "--browser-shares",
        type=int,
        default=0,
        metavar="N",
        help="run chromium in a cpu cgroup of N cpu.shares, the server and the student keeping 1024 (as "
        "`python -m loadtest`'s option): does the tab's drawing slow the server's run down?",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="protocol_vs_browser_"))
    load = [os.getloadavg()[0]]
    start = time.perf_counter()
    browsers = BrowserCpuGroup(args.browser_shares) if args.browser_shares else None
    try:
        with streamlit_server(
            log_dir / "streamlit.log", timeout=120, on_start=lambda server: browsers and browsers.release(server.pid)
        ) as (url, server):
            result = asyncio.run(compare(url, server.pid, args.rounds, args.timeout, browsers))
    finally:
        if browsers is not None:
            browsers.close()
    result.update(
        rounds=args.rounds,
        browser_shares=args.browser_shares,
        load_average=[*load, os.getloadavg()[0]],
        seconds=time.perf_counter() - start,
    )
    report(result)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
