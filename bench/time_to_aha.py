"""Time to aha: from pressing Train with the quick classroom preset to the Eigenvectors page showing the
new model's top eigenvector, in a real browser, alone and with a class training at once (issue 13, goal 4).

Runs `python -m loadtest`'s classroom (loadtest.classroom.run) twice on fresh servers, each session training with
the quick preset's own settings (core.config.PRESETS["quick"], every session its own seed, so nothing is shared):

  alone    one student on a warm server (the teacher session has taken the path first and paid the
           server's one-time costs: imports, MNIST, the similarities)
  class    --students students (default 8) who all press Train at once

and, from the first run, the teacher's own path: one student on a cold server.

A session's time to aha is the sum of the two waits a student has, without the seconds a human takes
to click: from the Train click to "Training finished" on screen (timed in the page), plus from the
click on "4 · Eigenvectors" in the sidebar to the end of that page's script run, when its top
eigenvector images are drawn (timed in the page as well; the session fails if fewer than three images
are on the page). Training seconds alone (the run's own, from the model store) are printed beside it.

The machine has 2 cores shared by the server, chromium and this driver: read the numbers with the load
average printed beside them.

    .venv/bin/python bench/time_to_aha.py                  # alone, then 8 students
    .venv/bin/python bench/time_to_aha.py --students 4 --json artifacts/time_to_aha.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import write_json
from core.config import PRESETS
from loadtest.classroom import run


def aha(session: dict) -> dict | None:
    """The session's time to aha and its parts (seconds), or None if it did not get there."""
    switch = next((s for s in session["switches"] if s["step"] == "Train→Eigenvectors"), None)
    trained = next((t for t in session["trainings"] if t["what"] != "teacher alone, warm"), None)
    if not session["completed"] or switch is None or trained is None or switch["run_done"] is None:
        return None
    return {
        "aha": trained["wall"] + switch["run_done"],
        "training_wall": trained["wall"],
        "training_own": trained["own_seconds"],
        "queue_wait": trained["queue_wait"] if trained["queued"] else 0.0,
        "eigenvectors_page": switch["run_done"],
    }


def summary(rows: list[dict | None]) -> dict:
    done = [row for row in rows if row is not None]
    if not done:
        return {"sessions": len(rows), "completed": 0}
    values = sorted(row["aha"] for row in done)
    return {
        "sessions": len(rows),
        "completed": len(done),
        "aha_median": statistics.median(values),
        "aha_max": values[-1],
        "rows": done,
    }


def measure(students: int, timeout: float) -> dict:
    epochs = PRESETS["quick"]["epochs"]
    load = [os.getloadavg()[0]]
    alone = run(1, epochs, teacher=True, timeout=timeout)
    load.append(os.getloadavg()[0])
    crowd = run(students, epochs, teacher=True, timeout=timeout)
    load.append(os.getloadavg()[0])
    return {
        "preset": PRESETS["quick"],
        "cold_server": summary([aha(alone["teacher"])]),
        "alone": summary([aha(s) for s in alone["sessions"]]),
        "class": summary([aha(s) for s in crowd["sessions"]]),
        "students": students,
        "errors": [e for run in (alone, crowd) for s in run["sessions"] for e in s["errors"]],
        "load_average": load,
    }


def median_of(rows: list[dict], name: str) -> str:
    values = [row[name] for row in rows if row[name] is not None]
    return f"{statistics.median(values):.1f} s" if values else "–"


def report(result: dict) -> None:
    print(f"\nTime to aha, quick preset {result['preset']}; load average (1 min) {result['load_average']}")
    print("| who | done | time to aha, median / max | Train click → finished | Eigenvectors page | own training |")
    print("|---|---|---|---|---|---|")
    for key, label in (
        ("cold_server", "one student, cold server"),
        ("alone", "one student, warm server"),
        ("class", f"{result['students']} students at once"),
    ):
        part = result[key]
        done = f"{part['completed']} / {part['sessions']}"
        if not part["completed"]:
            print(f"| {label} | {done} | – | – | – | – |")
            continue
        rows = part["rows"]
        print(
            f"| {label} | {done} | {part['aha_median']:.1f} / {part['aha_max']:.1f} s "
            f"| {median_of(rows, 'training_wall')} | {median_of(rows, 'eigenvectors_page')} "
            f"| {median_of(rows, 'training_own')} |"
        )
    if result["errors"]:
        print("errors:", *result["errors"], sep="\n  ")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=8, help="students training at once (default 8)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds any one step may take")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    result = measure(args.students, args.timeout)
    report(result)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
