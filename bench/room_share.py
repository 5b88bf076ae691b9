"""The room's database share of a page run, and how fast a change on one replica reaches another (issue 26).

Two measurements, against a throwaway PostgreSQL 15 cluster (harness/services.py) or any `--url`:

  page runs  AppTest runs of Home and the Class board in this process with BILINEAR_LAB_ROOM_URL pointing at the
             database and a class of `--models` models listed in the room; every call into the database
             (server.room.Room._read and _transaction) is timed, so each page run's time splits into the
             database's and the rest. The room is read at most every POLL_SECONDS per process, so most runs
             cost no query at all: both the median and the runs that read it are reported.
  arrival    two Room objects on the same URL are two replicas: one pins, the other polls its revision as a
             board's fragment does (every REFRESH_SECONDS), and the time until it sees the pin is recorded.

    python bench/room_share.py [--runs 20] [--models 30] [--url postgresql+psycopg://...] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_json  # noqa: E402
from harness.services import postgres  # noqa: E402

PAGES = ("app_pages/home.py", "app_pages/class_board.py")


def page_runs(url: str, runs: int, models: int) -> dict:
    os.environ["BILINEAR_LAB_ROOM_URL"] = url
    from streamlit.testing.v1 import AppTest

    from core.identity import config_id
    from server import room as room_module
    from ui import resources

    spent = {"seconds": 0.0, "calls": 0}

    def timed(original):
        def wrapper(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - start
                spent["calls"] += 1

        return wrapper

    room_module.Room._read = timed(room_module.Room._read)
    room_module.Room._transaction = timed(room_module.Room._transaction)
    # a class's models in the room, trained "elsewhere": the grid's checkpoints stand in (the store has them)
    from core.grid import grid_config, grid_points

    room = resources.room()
    for t, wd in list(grid_points())[:models]:
        config = grid_config(t, wd)
        room.record_model(config_id(config), "trained", config.to_dict(), "bench student")
    result = {}
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
        at.switch_page(page).run()  # warm: torch, the models, the decompositions
        totals, database, reads = [], [], []
        for _ in range(runs):
            spent.update(seconds=0.0, calls=0)
            start = time.perf_counter()
            at.run()
            totals.append(time.perf_counter() - start)
            database.append(spent["seconds"])
            if spent["calls"]:
                reads.append((totals[-1], spent["seconds"]))
            time.sleep(room_module.POLL_SECONDS / 2)  # half the runs find the revision fresh, half read it again
        result[page] = {
            "run_median_s": statistics.median(totals),
            "database_median_s": statistics.median(database),
            "database_share_of_all_runs": sum(database) / sum(totals),
            "runs_that_queried": len(reads),
            "database_share_when_queried": (sum(d for _, d in reads) / sum(t for t, _ in reads)) if reads else 0.0,
        }
    return result


def arrival(url: str, trials: int) -> dict:
    from server.room import Room

    a, b = Room(url, "A"), Room(url, "B")
    refresh = 2.0  # ui.board.REFRESH_SECONDS
    seen = []
    for i in range(trials):
        b.state()
        model_id = f"{i:012x}"
        start = time.perf_counter()
        a.pin(model_id)
        while b.state().pinned != model_id:
            time.sleep(refresh / 20)  # finer than a board: the bound below adds the board's own period
        seen.append(time.perf_counter() - start)
    return {
        "replica_sees_change_median_s": statistics.median(seen),
        "replica_sees_change_max_s": max(seen),
        "board_redraw_bound_s": max(seen) + refresh,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--models", type=int, default=15, help="models listed in the room (at most the grid's 15)")
    parser.add_argument("--url", default="", help="a database URL (default: a throwaway PostgreSQL cluster)")
    parser.add_argument("--port", type=int, default=8713, help="the throwaway cluster's port")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()}")

    def measure(url: str) -> dict:
        return {"arrival": arrival(url, 10), "pages": page_runs(url, args.runs, args.models)}

    if args.url:
        result = measure(args.url)
    else:
        with postgres(args.port) as url:
            result = measure(url)
    result["load_average_end"] = os.getloadavg()
    for page, stats in result["pages"].items():
        print(
            f"{page}: run median {stats['run_median_s'] * 1000:.0f} ms, database median "
            f"{stats['database_median_s'] * 1000:.1f} ms ({stats['database_share_of_all_runs']:.1%} of all runs; "
            f"{stats['database_share_when_queried']:.1%} of the {stats['runs_that_queried']} runs that read it)"
        )
    a = result["arrival"]
    print(
        f"a pin on one replica seen by another: median {a['replica_sees_change_median_s']:.2f} s, max "
        f"{a['replica_sees_change_max_s']:.2f} s (a board redraws within {a['board_redraw_bound_s']:.1f} s)"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
