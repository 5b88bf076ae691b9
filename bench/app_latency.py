"""How long the app makes a student wait: cold start, page reruns, a slider move, a page switch.

Three measurements, each printed as a table (seconds; medians over `--repeats` after a warm-up):

  cold start   launch chromium first (not timed), then: `streamlit run` process start ->
               /_stcore/health answers ok -> the Home page's title is visible in chromium -> the
               first page is fully rendered (the model badge, drawn after torch is imported and the
               shipped checkpoint loaded, is visible and the script run is over). `--cold-starts` times.
  AppTest      in this process, AppTest.from_file("streamlit_app.py"): run once, then for every page
               in app_pages/ switch to it, run once (warm-up: imports, caches) and time repeated
               at.run(). The model is the cached seed checkpoint. This is the server-side cost of a
               rerun (script + AppTest's own overhead), without a browser or a websocket.
  browser      one chromium page on a warm server: the Label page's threshold slider moved one step
               by the keyboard (goal < 0.3 s), and a click on each page in the sidebar (the
               Eigenvectors page with the model cached: goal < 0.5 s). Timed inside the page from
               just before the key press / click to the start and end of the script run
               (stApp's data-test-script-state) and to the second animation frame after it ("painted";
               for page switches also once every st.image has loaded). The same slider move and a
               page switch on a trivial app (its script only sleeps 20 ms, so that its run shows in
               the DOM) give Streamlit's own floor on this machine; "/floor" is the ratio to it.

`--browser-work` adds two measurements of where a page switch's time goes in chromium:

  elements     the floor app's page switch with one kind of element added to the page it opens (a KaTeX
               formula, a paragraph, an Altair line chart with tooltips, ten sliders, a 28x28 image):
               what each costs over the floor, painted
  main thread  for each of the app's pages, chromium's own counters (CDP Performance.getMetrics) over a
               page switch: the renderer's main-thread task time, and within it JavaScript, layout and
               style recalculation, beside the painted time

The machine is shared and noisy (2 cores): read medians and the load average, not the third digit.

    .venv/bin/python bench/app_latency.py
    .venv/bin/python bench/app_latency.py --browser-work --skip-apptest --cold-starts 0
    .venv/bin/python bench/app_latency.py --repeats 15 --cold-starts 3 --json artifacts/app_latency.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from harness.browser import (
    IMAGES_LOADED_JS,
    ROOT,
    after_run,
    go_to,
    launch_chromium,
    streamlit_server,
    timed_run,
    wait_idle,
)

SLIDER_GOAL, EIGEN_GOAL = 0.3, 0.5
TITLE = "Bilinear Eigen Lab"
BADGE = "Pretrained seed checkpoint"  # drawn by widgets.model_badge, after torch and the checkpoint load


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# --------------------------------------------------------------------------- AppTest reruns


def page_paths() -> list[str]:
    """app_pages/*.py, Home first (pages added later are picked up without editing this file)."""
    paths = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "app_pages").glob("*.py"))
    return sorted(paths, key=lambda p: not p.endswith("home.py"))


def apptest_reruns(repeats: int) -> dict:
    from streamlit.testing.v1 import AppTest

    os.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    pages = {}
    for path in page_paths():
        try:
            at.switch_page(path)
            start = time.perf_counter()
            at.run()
            warm_up = time.perf_counter() - start
            errors = [str(e.value) for e in at.exception] + [e.value for e in at.error]
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - start)
            pages[path] = {"first": warm_up, **stats(times), "errors": errors}
        except Exception as error:  # a page another developer is editing right now: report, go on
            pages[path] = {"failed": f"{type(error).__name__}: {error}"}
    return {"first_run_home": first, "pages": pages}


# --------------------------------------------------------------------------- browser


def cold_start(playwright, log: Path) -> dict[str, float]:
    browser = launch_chromium(playwright)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.perf_counter()
    with streamlit_server(log, timeout=120) as (url, _):
        healthy = time.perf_counter() - start
        page.goto(url)
        page.get_by_role("heading", name=TITLE).first.wait_for(timeout=120_000)
        title = time.perf_counter() - start
        page.get_by_text(BADGE).first.wait_for(timeout=120_000)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')"
            ".getAttribute('data-test-script-state') === 'notRunning'",
            timeout=120_000,
        )
        rendered = time.perf_counter() - start
    browser.close()
    return {"health_ok": healthy, "title_visible": title, "first_page_rendered": rendered}


def slider_moves(page, repeats: int) -> list[dict[str, float]]:
    """Threshold one step right, then one step left, `repeats` times each; every press timed."""
    slider = page.locator('.st-key-threshold input[type="range"]')
    times = []
    for i in range(2 * repeats + 2):
        key = "ArrowRight" if i % 2 == 0 else "ArrowLeft"
        for _attempt in range(3):  # a press that starts no run within 10 s (focus lost, say) is retried
            slider.focus()
            t = timed_run(page, lambda key=key: slider.press(key), start_timeout=10)
            if t is not None:
                break
            wait_idle(page)
        else:
            raise RuntimeError(f"pressing {key} on the slider started no script run, 3 times")
        if i >= 2:  # the first two moves are warm-up (a new threshold's labels, chart code paths)
            times.append(t)
    return times


def nav_links(page) -> list[str]:
    links = page.locator('[data-testid="stSidebarNav"] a').all()
    return [a.inner_text().strip().split("\n")[-1].strip() for a in links]  # the text after the icon's name


def nav_link(page, title: str):
    return page.locator('[data-testid="stSidebarNav"] a', has_text=title).first


def page_switches(page, titles: list[str], repeats: int) -> dict[str, list[dict[str, float]]]:
    """Click each page's sidebar link `repeats` times (plus one warm-up), coming from Home each time
    (from the second page for Home itself). A click that starts no run within 10 s (the page was
    not left, say) is retried, at most 3 times per measurement."""
    results: dict[str, list[dict[str, float]]] = {"retries": 0}
    for title in titles:
        other = titles[0] if title != titles[0] else titles[1]
        results[title] = []
        for i in range(repeats + 1):
            for _attempt in range(3):
                timed_run(page, nav_link(page, other).click, IMAGES_LOADED_JS, start_timeout=10)
                wait_idle(page)
                t = timed_run(page, nav_link(page, title).click, IMAGES_LOADED_JS, start_timeout=10)
                if t is not None:
                    break
                results["retries"] += 1
            else:
                raise RuntimeError(f"clicking {title!r} in the sidebar started no script run, 3 times")
            if i > 0:
                results[title].append(t)
    return results


# The script sleeps 20 ms: a run much shorter than a frame never shows as "running" in the DOM.
FLOOR_APP = """import time

import streamlit as st

time.sleep(0.02)

def first():
    st.title("Floor")
    st.slider("Threshold", 0.0, 1.0, 0.4, step=0.01, key="threshold")

def second():
    st.title("Other")

st.navigation([st.Page(first, title="Floor", default=True), st.Page(second, title="Other")]).run()
"""


def on_floor_app(playwright, folder: Path, name: str, source: str, measure):
    """Serve `source`, a floor app, headless from `folder` to a fresh chromium page; measure(page)."""
    script = folder / f"{name}.py"
    script.write_text(source)
    browser = launch_chromium(playwright)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    with streamlit_server(folder / f"{name}.log", timeout=120, script=script) as (url, _):
        page.goto(url)
        wait_idle(page, 120)
        measured = measure(page)
    browser.close()
    return measured


def floor_latency(playwright, folder: Path, repeats: int) -> dict:
    """The same slider move and page switch on an app that only sleeps 20 ms: Streamlit's own floor here."""
    return on_floor_app(
        playwright,
        folder,
        "floor_app",
        FLOOR_APP,
        lambda page: {
            "slider": slider_moves(page, repeats),
            "switch": page_switches(page, ["Floor", "Other"], repeats)["Other"],
        },
    )


def browser_latency(playwright, log: Path, repeats: int) -> dict:
    browser = launch_chromium(playwright)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    with streamlit_server(log, timeout=120) as (url, _):
        page.goto(url)
        wait_idle(page, 120)
        titles = nav_links(page)
        for title in titles:  # every page once: imports, MNIST, similarities, caches (a nav title such as
            after_run(page, nav_link(page, title).click, timeout=120)  # "1 · Label" is not its page's heading)
        go_to(page, "Label")
        slider = slider_moves(page, repeats)
        switches = page_switches(page, titles, repeats)
    browser.close()
    return {"slider": slider, "switches": switches}


ELEMENTS = {  # added to the floor app's second page (its function `second`), one kind at a time
    "a KaTeX formula": "    st.latex(r'\\text{logits}(x) = W_u [(W_l h + b_l) \\odot (W_r h + b_r)], \\; h = W_e x')",
    "a paragraph": "    st.markdown('A bilinear MLP learns to separate the images labelled true from the rest. ' * 3)",
    "an Altair line chart, tooltips": (
        "    import altair as alt\n"
        "    rows = [{'epoch': i, 'acc': 0.5 + 0.0046 * i} for i in range(100)]\n"
        "    st.altair_chart(alt.Chart(alt.Data(values=rows)).mark_line(point=True)"
        ".encode(x='epoch:Q', y='acc:Q', tooltip=['epoch:Q', 'acc:Q']))"
    ),
    "ten sliders": "    for i in range(10):\n        st.slider(f'w{i}', 0.0, 1.0, 0.5, key=f'w{i}')",
    "a 28x28 image": (
        "    import numpy as np\n    st.image((np.arange(784).reshape(28, 28) % 256).astype(np.uint8), width=168)"
    ),
}


def element_costs(playwright, folder: Path, repeats: int) -> dict[str, list[dict[str, float]]]:
    """The floor app's page switch with each kind of ELEMENTS on the page it opens (against floor_latency's)."""
    return {
        name: on_floor_app(
            playwright,
            folder,
            f"elements_{i}",
            FLOOR_APP.replace('    st.title("Other")\n', f'    st.title("Other")\n{code}\n'),
            lambda page: page_switches(page, ["Floor", "Other"], repeats)["Other"],
        )
        for i, (name, code) in enumerate(ELEMENTS.items())
    }


MAIN_THREAD = {  # CDP Performance.getMetrics counters, seconds of the renderer's main thread
    "task": "TaskDuration",
    "javascript": "ScriptDuration",
    "layout": "LayoutDuration",
    "style": "RecalcStyleDuration",
}


def main_thread(playwright, log: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Per page, medians over `repeats` switches (from Home; to the second page for Home) of chromium's
    main-thread seconds (MAIN_THREAD, CDP counters read before the click and once the page is idle)."""
    browser = launch_chromium(playwright)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def counters() -> dict[str, float]:
        return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

    results = {}
    with streamlit_server(log, timeout=120) as (url, _):
        page.goto(url)
        wait_idle(page, 120)
        titles = nav_links(page)
        for title in titles:
            after_run(page, nav_link(page, title).click, timeout=120)
        for title in titles:
            other = titles[0] if title != titles[0] else titles[1]
            rows = []
            for i in range(repeats + 1):
                timed_run(page, nav_link(page, other).click, IMAGES_LOADED_JS, start_timeout=10)
                wait_idle(page)
                before = counters()
                timing = timed_run(page, nav_link(page, title).click, IMAGES_LOADED_JS, start_timeout=10)
                wait_idle(page)
                after = counters()
                if i > 0 and timing is not None:
                    spent = {k: after[m] - before[m] for k, m in MAIN_THREAD.items()}
                    rows.append(spent | {"painted": timing["painted"]})
            results[title] = {k: statistics.median(r[k] for r in rows) for k in [*MAIN_THREAD, "painted"]}
    browser.close()
    return results


# --------------------------------------------------------------------------- main


def summarize(timings: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {phase: stats([t[phase] for t in timings]) for phase in ("start", "end", "painted")}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed repetitions of each measurement (default 9)")
    parser.add_argument("--cold-starts", type=int, default=2, help="cold starts of the server (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--skip-apptest", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument(
        "--browser-work", action="store_true", help="also: what each kind of element costs, chromium's main thread"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    result: dict = {"repeats": args.repeats}
    logs = Path(tempfile.mkdtemp(prefix="app_latency_"))

    if not args.skip_browser:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            result["cold_start"] = [cold_start(playwright, logs / f"cold{i}.log") for i in range(args.cold_starts)]
            browser = browser_latency(playwright, logs / "browser.log", args.repeats)
            floor = floor_latency(playwright, logs, args.repeats)
            if args.browser_work:
                elements = element_costs(playwright, logs, args.repeats)
                result["main_thread"] = main_thread(playwright, logs / "main_thread.log", args.repeats)
                result["elements"] = {name: summarize(t) for name, t in elements.items()}
        result["slider"] = summarize(browser["slider"])
        result["page_switch"] = {title: summarize(t) for title, t in browser["switches"].items() if title != "retries"}
        result["page_switch_retries"] = browser["switches"]["retries"]
        result["floor"] = {"slider": summarize(floor["slider"]), "page_switch": summarize(floor["switch"])}
        result["raw"] = {**browser, "floor": floor}
    if not args.skip_apptest:  # last: it imports torch into this process
        result["apptest"] = apptest_reruns(args.repeats)
    load_after = os.getloadavg()
    result["load_average"] = [load_before[0], load_after[0]]

    print(
        f"{os.cpu_count()} cores, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"medians over {args.repeats} repeats; server logs in {logs}"
    )
    if "cold_start" in result:
        print("\ncold start (s from `streamlit run` process start)")
        print(f"{'run':<5} {'health ok':>10} {'title visible':>14} {'first page rendered':>20}")
        for i, c in enumerate(result["cold_start"], 1):
            print(f"{i:<5} {c['health_ok']:10.2f} {c['title_visible']:14.2f} {c['first_page_rendered']:20.2f}")
    if "apptest" in result:
        a = result["apptest"]
        print(
            f"\nAppTest rerun of each page with the cached model (s); first at.run() of Home: {a['first_run_home']:.2f}"
        )
        print(f"{'page':<28} {'first':>7} {'median':>7} {'min':>7} {'max':>7}  errors")
        for path, p in a["pages"].items():
            if "failed" in p:
                print(f"{path:<28} failed: {p['failed']}")
                continue
            print(
                f"{path:<28} {p['first']:7.3f} {p['median']:7.3f} {p['min']:7.3f} {p['max']:7.3f}  {len(p['errors'])}"
            )
    if "slider" in result:
        print(
            "\nbrowser, warm server (s from the key press / click; median [min-max]); "
            "floor = the same action on an app whose script only sleeps 20 ms"
        )
        print(f"{'action':<36} {'run starts':>18} {'run ends':>18} {'painted':>18} {'/floor':>7}  goal")

        def row(label: str, s: dict, floor: dict | None, goal: float | None) -> None:
            cells = " ".join(
                f"{s[k]['median']:6.3f} [{s[k]['min']:.2f}-{s[k]['max']:.2f}]" for k in ("start", "end", "painted")
            )
            ratio = f"{s['painted']['median'] / floor['painted']['median']:6.1f}x" if floor else f"{'':7}"
            verdict = "" if goal is None else f"< {goal} s: {'met' if s['painted']['median'] < goal else 'NOT met'}"
            print(f"{label:<36} {cells} {ratio}  {verdict}")

        row("floor: slider one step", result["floor"]["slider"], None, None)
        row("floor: switch page", result["floor"]["page_switch"], None, None)
        row("Label: threshold slider one step", result["slider"], result["floor"]["slider"], SLIDER_GOAL)
        for title, s in result["page_switch"].items():
            row(
                f"switch to {title}", s, result["floor"]["page_switch"], EIGEN_GOAL if "Eigenvectors" in title else None
            )
        if result["page_switch_retries"]:
            print(f"({result['page_switch_retries']} page-switch clicks started no run within 10 s and were retried)")
    if "elements" in result:
        floor = result["floor"]["page_switch"]["painted"]["median"]
        print(
            f"\nthe floor app's page switch ({floor:.3f} s painted) with one kind of element added: "
            "median [min-max], - floor"
        )
        for name, s in result["elements"].items():
            p = s["painted"]
            print(f"  {name:<34} {p['median']:6.3f} [{p['min']:.2f}-{p['max']:.2f}]  {p['median'] - floor:+.3f}")
        print("\nchromium's main thread over a page switch (s, medians): tasks, of which JavaScript, layout, style")
        print(f"  {'page':<22} {'painted':>8} {'tasks':>7} {'JS':>7} {'layout':>7} {'style':>7}")
        for title, m in result["main_thread"].items():
            cells = " ".join(f"{m[k]:7.3f}" for k in MAIN_THREAD)
            print(f"  {title:<22} {m['painted']:8.3f} {cells}")

    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
