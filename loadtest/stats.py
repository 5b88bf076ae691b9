"""The numbers read off a run: the RSS increments (analyse), page switches by phase and step (switching), the
trainings and their queue (training_summary), the teacher's board (board_summary); with replicas, each one's
switches and trainings (by_replica) and every model's arrival on its own and the other replicas' boards
(arrival); and each server's database share of its page runs (database_share)."""

from __future__ import annotations

import itertools
import statistics

from loadtest.session import Session

PHASES = ("before", "during", "after")  # page switches: before the first Train click, while trainings run/queue, after
# page-switch measures per kind of session (switching): the first is the switch time the target applies to
MEASURES = {"browser": ("shown", "heading", "run_done"), "protocol": ("content", "heading", "run_done")}


def analyse(events: list[dict], sessions: list[Session]) -> dict[str, float]:
    """Increments (bytes) read off the RSS timeline.

    Joins and Label visits alternate (join 0, Label 0, join 1, ...), so each one's increment is
    the RSS after it minus the RSS just before it. Without a teacher the first student pays the
    one-time costs, so the per-session increments are averaged over the sessions after the first,
    and the concurrent part still includes one-time costs of training (e.g. torch._dynamo).
    """

    def at(event: str, session: int | None = None) -> int | None:
        return next((e["rss"] for e in events if e["event"] == event and e["session"] == session), None)

    def mean(values: list[int]) -> float:
        return sum(values) / len(values) if values else float("nan")

    idle, teacher_done, final = at("server idle"), at("teacher done"), at("3 s later")
    board_open = at("board open")  # --teacher-board: the board tab's cost is not the first join's
    joined = [at("joined", s.index) for s in sessions]
    labelled = [at("labelled", s.index) for s in sessions]
    if None in joined or None in labelled:  # a session failed to join: no per-session figures
        return {"idle": idle, "final": final}
    before_join = [board_open or teacher_done or idle, *labelled[:-1]]
    join_costs = [j - b for j, b in zip(joined, before_join, strict=True)]
    label_costs = [lab - j for lab, j in zip(labelled, joined, strict=True)]
    result = {"idle": idle, "final": final, "students": final - (teacher_done or idle)}
    if teacher_done is not None:  # the teacher paid the one-time costs
        result["teacher_join"] = at("teacher joined", -1) - idle
        result["teacher_label"] = at("teacher labelled", -1) - at("teacher joined", -1)
        result["teacher_rest"] = teacher_done - at("teacher labelled", -1)
        per = slice(0, None)
    else:
        result["first_join"], result["first_label"] = join_costs[0], label_costs[0]
        per = slice(1, None)
    result["per_join"] = mean(join_costs[per])
    result["max_join"] = max(join_costs[per], default=float("nan"))
    result["per_label"] = mean(label_costs[per])
    result["max_label"] = max(label_costs[per], default=float("nan"))
    result["per_student_concurrent"] = (final - labelled[-1]) / len(sessions)
    result["per_student_total"] = result["students"] / len(sessions)
    return result


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "max": max(values),
        "min": min(values),
    }


def switch_stats(switches: list[dict], key: str, steps: list[str]) -> dict:
    """One measure (`key`) of page switches: overall, per phase and per step."""
    return {
        "all": spread([sw[key] for sw in switches]),
        "phases": {phase: spread([sw[key] for sw in switches if sw["phase"] == phase]) for phase in PHASES},
        "steps": {step: spread([sw[key] for sw in switches if sw["step"] == step]) for step in steps},
    }


def switching(sessions: list[Session], teacher: Session | None) -> dict:
    """Page-switch times, overall, per phase and per step, for each kind of session (MEASURES): a browser's
    click -> heading and first content painted (its switch time), the heading visible, the run finished; a
    protocol student's rerun sent -> the h1 and the first content delta after it arrived (its switch time),
    the h1 delta alone, script_finished.

    Phases by the driver's clock: "before" ended before the first student pressed Train, "after" started
    once the last student's training had finished, "during" is everything else."""
    trainings = [t for s in sessions for t in s.trainings]
    first_click = min((t["clicked_at"] for t in trainings), default=float("inf"))
    last_finish = max((t["finished_at"] for t in trainings), default=float("-inf"))
    switches = [sw for s in sessions for sw in s.switches]
    for sw in switches:
        sw["phase"] = "before" if sw["end"] <= first_click else "after" if sw["start"] >= last_finish else "during"
    steps = list(dict.fromkeys(sw["step"] for sw in switches))
    kinds = {}
    for kind, keys in MEASURES.items():
        mine = [sw for s in sessions if s.kind == kind for sw in s.switches]
        kinds[kind] = {
            "sessions": sum(s.kind == kind for s in sessions),
            **{key: switch_stats(mine, key, steps) for key in keys},
        }
    return {
        **kinds,
        "step_phases": {
            step: {phase: sum(sw["step"] == step and sw["phase"] == phase for sw in switches) for phase in PHASES}
            for step in steps
        },
        "teacher": spread([sw["shown"] for sw in teacher.switches]) if teacher else {"n": 0},
        "first_train_click": first_click if trainings else None,
        "last_training_finished": last_finish if trainings else None,
    }


def board_summary(board: dict | None, sessions: list[Session], key: str = "on_teacher_board") -> dict | None:
    """The teacher's board tab (--teacher-board): its script runs, its redraws, and for each student's model
    the seconds from that student's "Training finished" to the model's tile on the board (negative: the board
    showed it first). A redraw is a run after which the board held more models than before it; the other
    runs are the fragment's quiet wakes (or a redraw with nothing new on it). The browser asks for a wake
    every 2 s, but a run whose start and end reach the page in one frame leaves no trace in the DOM, so
    `runs` and `wake_interval` count the wakes the tab showed, not all of them. Each training keeps its latency
    under `key` (one per board with replicas)."""
    if board is None:
        return None
    runs, redraws, before = board["runs"], [], None
    for start, end, shown in runs:
        if before is not None and shown > before:
            redraws.append((end - start) / 1000)
        before = shown
    latencies, missing = [], []
    for session in sessions:
        for t in session.trainings:
            seen = board["first_seen"].get(t["model_id"]) if t["model_id"] else None
            if seen is None or t["finished_clock"] is None:
                missing.append(session.index)
                continue
            t[key] = seen / 1000 - t["finished_clock"]
            latencies.append(t[key])
    return {
        "open_seconds": (board["closed"] - board["opened"]) / 1000,
        "runs": len(runs),
        "redraws": len(redraws),
        "redraw_seconds": spread(redraws),
        "run_seconds": spread([(end - start) / 1000 for start, end, _ in runs]),
        "wake_interval": spread([(b[0] - a[0]) / 1000 for a, b in itertools.pairwise(runs)]),
        "models_seen": len(board["first_seen"]),
        "latency": spread(latencies),
        "missing": missing,
        "errors": board["errors"],
    }


def training_summary(sessions: list[Session], teacher: Session | None) -> dict:
    """Trainings: wall (click -> finished), queue wait, own seconds, and own seconds / the teacher's warm run alone;
    wall and ratio also per kind of session (a browser sees "Training finished" painted, a protocol student
    its delta arrive; the own seconds are the server's either way)."""
    alone = teacher.trainings[-1]["own_seconds"] if teacher and teacher.trainings else None
    trainings = [t for s in sessions for t in s.trainings if t["outcome"] == "trained"]
    kind_of = {id(t): s.kind for s in sessions for t in s.trainings}
    for t in trainings:
        own = t["own_seconds"]
        t["ratio"] = own / alone if own and alone else None
        t["after_training"] = (  # the training's end -> "Training finished" seen: the page's lag
            t["wall"] - t["queue_wait"] - own if own and t["queue_wait"] is not None else None
        )
    return {
        "alone_seconds": alone,
        "alone_runs": [
            {k: t[k] for k in ("what", "seed", "own_seconds", "wall", "queue_wait", "caption_seconds")}
            for t in (teacher.trainings if teacher else [])
        ],
        "trained": len(trainings),
        "queued": sum(t["queued"] for t in trainings),
        "wall": spread([t["wall"] for t in trainings]),
        "queue_wait": spread([t["queue_wait"] for t in trainings]),
        "own_seconds": spread([t["own_seconds"] for t in trainings]),
        "ratio": spread([t["ratio"] for t in trainings]),
        "by_kind": {
            kind: {
                "trained": sum(kind_of[id(t)] == kind for t in trainings),
                "wall": spread([t["wall"] for t in trainings if kind_of[id(t)] == kind]),
                "ratio": spread([t["ratio"] for t in trainings if kind_of[id(t)] == kind]),
            }
            for kind in MEASURES
        },
        "after_training": spread([t["after_training"] for t in trainings]),
        "queue_estimate_first": spread([t["queue_estimate"] for t in trainings if t["queued"]]),
        "missing_own_seconds": sum(t["own_seconds"] is None for t in trainings),
        "missing_queue_wait": sum(t["queue_wait"] is None for t in trainings),
    }


def board_key(replica: int) -> str:
    """Where a training keeps its latency to replica `replica`'s board (board_summary's `key`)."""
    return f"on_board_{replica}"


def arrival(sessions: list[Session], replicas: int) -> dict:
    """Every student's model on the boards of all replicas (each with a board tab, board_summary with
    board_key): seconds from that student's "Training finished" to the tile on its own replica's board, and on
    each other replica's; `missing` lists (session, board) pairs where it never showed."""
    own, other, missing = [], [], []
    for session in sessions:
        for t in session.trainings:
            for replica in range(replicas):
                seconds = t.get(board_key(replica))
                if seconds is None:
                    missing.append([session.index, replica])
                else:
                    (own if replica == session.replica else other).append(seconds)
    return {"own": spread(own), "other": spread(other), "missing": missing}


def by_replica(sessions: list[Session], replicas: int) -> list[dict]:
    """Each replica's students: their page switches (after `switching`, which puts each in its phase) and their
    trainings (after `training_summary`, which sets each one's ratio)."""
    steps = list(dict.fromkeys(sw["step"] for s in sessions for sw in s.switches))
    result = []
    for replica in range(replicas):
        mine = [s for s in sessions if s.replica == replica]
        trainings = [t for s in mine for t in s.trainings if t["outcome"] == "trained"]
        result.append(
            {
                "replica": replica,
                "sessions": len(mine),
                "completed": sum(s.completed for s in mine),
                "switching": {
                    kind: {
                        "sessions": sum(s.kind == kind for s in mine),
                        **{
                            key: switch_stats([sw for s in mine if s.kind == kind for sw in s.switches], key, steps)
                            for key in keys
                        },
                    }
                    for kind, keys in MEASURES.items()
                },
                "training": {
                    "trained": len(trainings),
                    "wall": spread([t["wall"] for t in trainings]),
                    "queue_wait": spread([t["queue_wait"] for t in trainings]),
                    "own_seconds": spread([t["own_seconds"] for t in trainings]),
                    "ratio": spread([t.get("ratio") for t in trainings]),
                },
            }
        )
    return result


def thread_group(name: str) -> str:
    """What a thread that called the database outside a page run was doing: a session's script thread runs
    fragments (the board's and the progress badges' timed reruns) and widget callbacks (Train's claim)."""
    if name.startswith("ScriptRunner"):
        return "fragments and callbacks"
    if name.startswith("training"):
        return "trainings"
    return "other"


def database_share(lines: list[dict]) -> dict:
    """A server's room profile (server.room_profile, one line per page run and per call outside a run): per page,
    its runs' seconds and the seconds spent in the room's database calls, as a share of all its runs' time, per
    run (median, p95, max), and within the runs that queried (the room is read at most once a second per
    process, so most runs query nothing); and the calls made outside the page runs, by what made them."""
    runs = [line for line in lines if line["kind"] == "run" and line["page"] is not None]
    pages = {}
    for page in sorted({run["page"] for run in runs}):
        mine = [run for run in runs if run["page"] == page]
        queried = [run for run in mine if run["calls"]]
        total, database = sum(run["seconds"] for run in mine), sum(run["database_s"] for run in mine)
        pages[page] = {
            "runs": len(mine),
            "interrupted": sum(not run["completed"] for run in mine),
            "run_seconds": spread([run["seconds"] for run in mine]),
            "database_seconds": spread([run["database_s"] for run in mine]),
            "share_of_all_runs": database / total if total else None,
            "share_per_run": spread([run["database_s"] / run["seconds"] for run in mine if run["seconds"] > 0]),
            "runs_that_queried": len(queried),
            "share_when_queried": (
                sum(run["database_s"] for run in queried) / sum(run["seconds"] for run in queried) if queried else None
            ),
            "calls": sum(run["calls"] for run in mine),
        }
    total = sum(run["seconds"] for run in runs)
    outside: dict[str, dict] = {}
    for line in lines:
        if line["kind"] == "outside":
            group = outside.setdefault(thread_group(line["thread"]), {"calls": 0, "database_s": 0.0})
            group["calls"] += 1
            group["database_s"] += line["database_s"]
    return {
        "runs": len(runs),
        "share_of_all_runs": sum(run["database_s"] for run in runs) / total if total else None,
        "pages": pages,
        "outside_runs": outside,
    }
