"""The numbers read off a run: the RSS increments (analyse), page switches by phase and step (switching), the
trainings and their queue (training_summary), the teacher's board (board_summary)."""

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


def board_summary(board: dict | None, sessions: list[Session]) -> dict | None:
    """The teacher's board tab (--teacher-board): its script runs, its redraws, and for each student's model
    the seconds from that student's "Training finished" to the model's tile on the board (negative: the board
    showed it first). A redraw is a run after which the board held more models than before it; the other
    runs are the fragment's quiet wakes (or a redraw with nothing new on it). The browser asks for a wake
    every 2 s, but a run whose start and end reach the page in one frame leaves no trace in the DOM, so
    `runs` and `wake_interval` count the wakes the tab showed, not all of them."""
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
            t["on_teacher_board"] = seen / 1000 - t["finished_clock"]
            latencies.append(t["on_teacher_board"])
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
