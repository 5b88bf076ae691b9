"""One session's record, a student's or the teacher's, and what both drivers (browser.py, protocol.py) write into it:
its page switches and trainings, the texts they wait for, and the progress lines on stderr."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field

MB = 2**20
TITLE = "Bilinear Eigen Lab"
FINISHED = re.compile("Training finished|Loaded the model trained earlier|Loaded the precomputed checkpoint")
CURVES_CAPTION = re.compile(r"Training curves of the active model \((\d+) epochs?, (\d+) s\)")
MODEL_IN_URL = re.compile(r"[?&]model=([0-9a-z_-]+)")
WAITING_TEXT = re.compile(r"Waiting for a free trainer:.*? in the queue and starts in about \d+ s\.")  # as TRAIN_ARM_JS
EPOCH_TEXT = re.compile(r"Epoch \d+ / \d+")
QUEUE_TEXT = re.compile(
    r"(\d+) run\(s\) are training .* number (\d+) of (\d+) in the queue and starts in about (\d+) s"
)


@dataclass
class Session:
    index: int
    seed: int
    kind: str = "browser"  # a chromium tab (BrowserStudent) or "protocol" (ProtocolTab: no browser)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds
    outcome: str = ""  # "trained" or "reused" (the registry already had the model), or what failed
    errors: list[str] = field(default_factory=list)  # error elements seen, "page: text"
    completed: bool = False
    switches: list[dict] = field(default_factory=list)  # one per sidebar page switch, see switch_to
    trainings: list[dict] = field(default_factory=list)  # one per Train press, see train_and_wait
    problems: list[str] = field(default_factory=list)  # a protocol student's own trouble (ProtocolStudent.problems)
    replica: int = 0  # the server this session uses, all its visits (sticky sessions; --replicas)


PROGRESS = {"on": False, "start": time.perf_counter()}  # __main__ turns on progress lines on stderr


def progress(session: Session | None, what: str) -> None:
    if PROGRESS["on"]:
        kind = " (protocol)" if session is not None and session.kind == "protocol" else ""
        name = "" if session is None else "teacher " if session.index < 0 else f"session {session.index}{kind} "
        print(f"[{time.perf_counter() - PROGRESS['start']:7.1f} s] {name}{what}", file=sys.stderr, flush=True)


def failed(session: Session, error: Exception) -> None:
    first_line = str(error).splitlines()[0] if str(error) else ""
    progress(session, f"FAILED: {type(error).__name__}: {first_line}")
    session.outcome = session.outcome or f"failed: {type(error).__name__}"
    session.errors.append(f"driver: {type(error).__name__}: {first_line}")


def record_switch(
    session: Session,
    step: str,
    start: float,
    end: float,
    heading: float | None,
    content: float | None,
    shown: float | None,
    run_done: float | None,
) -> float:
    """Add a page switch to `session.switches`: `start`/`end` on the driver's clock, the rest in seconds after
    the click (a browser's page clock) or after the rerun was sent (a protocol student); returns `end - start`."""
    session.switches.append(
        {
            "step": step,
            "start": start,  # driver clock, seconds since the run started (for the phases)
            "end": end,
            "heading": heading,  # the h1 visible (browser) or its delta arrived (protocol)
            "content": content,  # and the first content element after it
            "shown": shown,  # heading and first content painted: the switch time (browser; None for protocol)
            "run_done": run_done,  # the script run finished (as the page showed it, or script_finished)
            "wall": end - start,  # driver: click sent -> run finished and idle
        }
    )
    return end - start


def record_training(
    session: Session,
    what: str,
    outcome: str,
    clicked: float,
    finished: float,
    seen: dict[str, float | None],
    finished_clock: float | None,
    waiting_text: str | None,
    model_id: str | None,
    caption: int | None,
) -> dict:
    """Add a Train press to `session.trainings`. `clicked`/`finished`: driver clock; `seen`: seconds after the
    click at which the page showed "Training finished" (finished), the first epoch's progress (epoch_first)
    and, last, the queue message (waiting_last), whose first text is `waiting_text`."""
    queue = QUEUE_TEXT.search(waiting_text or "")
    training = {
        "what": what,
        "seed": session.seed,
        "outcome": outcome,
        "clicked_at": clicked,  # driver clock
        "finished_at": finished,
        # the machine's clock (s) when the page showed "Training finished": compared with the teacher's board
        "finished_clock": finished_clock,
        "model_id": model_id,
        "wall": seen["finished"] or finished - clicked,  # click -> "Training finished" seen
        "queued": waiting_text is not None,
        "queue_wait": seen["epoch_first"],  # click -> the first epoch's progress shown
        "waiting_last_seen": seen["waiting_last"],
        "queue_text": waiting_text,
        "queue_running": int(queue.group(1)) if queue else None,
        "queue_position": int(queue.group(2)) if queue else None,
        "queue_length": int(queue.group(3)) if queue else None,
        "queue_estimate": int(queue.group(4)) if queue else None,
        "caption_seconds": caption,
        "own_seconds": None,  # filled in from the model store once the server is gone
        "epoch_seconds": None,
    }
    session.trainings.append(training)
    progress(
        session, f"training {outcome}: {training['wall']:.1f} s after the click (queue wait {training['queue_wait']})"
    )
    return training
