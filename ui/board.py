"""The class board and the teacher's controls: every model of the room, live, and a passcode instead of accounts.

The board gathers what the server holds (server.registry: the models trained to the end, the stopped runs)
and the 15 precomputed checkpoints as a backdrop into core.board rows, each with its top eigenvector,
decomposed once per model for the whole server (ui.resources.board_top). The board page draws
`snapshot()` and calls `watch(snapshot.key)`: a fragment that wakes every REFRESH_SECONDS, compares three
revision numbers (registry, slots, room) with the ones the page drew, and reruns the page only when they
differ. A model one student trains is thus on every other board within REFRESH_SECONDS and one page run,
and a quiet board costs three lock reads per wake, no drawing.

Teacher controls without accounts: a passcode from st.secrets["teacher_passcode"] or the environment
variable BILINEAR_LAB_TEACHER_PASSCODE (ui.passcode; neither set: no controls). A session that types it
(compared by server.classroom.passcode_matches, the one comparison; a wrong one waits WRONG_PASSCODE_DELAY
and counts towards server.passcode.GuessLimiter's lockouts, per session and for the server) keeps a digest
of it in st.session_state, never the passcode; every control's callback checks that digest against the
current passcode before it changes the room (server.room: also the cap on one run's seconds, which every
replica's training pool reads) or the trainings (server.jobs: cancel any run), so a control reached without
the passcode changes nothing.

torch loads (through ui.resources) only when a function needs a model: Home calls `pinned_card` before
its text is on screen, and with nothing pinned that reads one number.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from core.board import PRECOMPUTED, BoardRow, appearance, board_row, caption, counted, describe, label, nickname
from core.grid import grid_points
from core.identity import config_id
from render import figures
from server.classroom import RoomState, passcode_digest, passcode_matches
from server.jobs import TrainingJob, duration
from server.passcode import GuessLimiter, remaining
from server.registry import Listed, newest_first
from server.room import Room
from ui import models, resources, widgets
from ui.passcode import PASSCODE_ENV, PASSCODE_SECRET, teacher_passcode
from ui.state import notify

if TYPE_CHECKING:
    from torch import Tensor

    from core.identity import TrainedModel

log = logging.getLogger("bilinear_eigen_lab")
REFRESH_SECONDS = 2.0  # how often a board looks for new models (the goal: on every board within 5 s)
PIN_REFRESH_SECONDS = 5.0  # how often a Home page looks for a newly pinned model
MISSING_RETRY_SECONDS = 10.0  # how often a board asks the store again for a listed model it could not give ...
MISSING_WINDOW_SECONDS = 600.0  # ... trained this recently (an older one the store lacks was evicted, most likely)
WRONG_PASSCODE_DELAY = 1.0  # seconds a wrong passcode waits: guessing costs time
__all__ = ["PASSCODE_ENV", "PASSCODE_SECRET", "teacher_passcode"]  # read in ui.passcode, named here too
CAP_WIDGET = "teacher_cap_minutes"  # the teacher's cap on one run, in minutes: its key's prefix (see cap_widget)
CAP_RANGE = (0.5, 600.0)  # what the cap's widget accepts, in minutes
PASSCODE_WIDGET = "teacher_passcode"  # the password input; emptied as soon as it is read
TEACHER_KEY = "_teacher"  # not a widget: server.classroom.passcode_digest of the passcode this session unlocked with
PIN_CHOICE = "teacher_pin_choice"  # the teacher's choice of the model to pin
BOARD_ORIGINS = ("trained", "stopped")  # what the class trained here (not the shipped, grid or uploaded models)


def classroom() -> Room:
    """The room's shared state (pin, cleared models, answers shown, votes), in the database every replica
    shares (server.room; memory while it is unreachable); its pinned model is never dropped by the model
    stores (ui.resources.bounds)."""
    return resources.room()


@st.cache_resource
def guesses() -> GuessLimiter:
    """Wrong passcodes, counted per session and for the server (server.passcode)."""
    return GuessLimiter()


# --- the board ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One model on the board: its row of numbers, the model itself and its top eigenvector's image."""

    row: BoardRow
    trained: TrainedModel
    image: Tensor  # (28, 28) the top eigenvector, flipped towards the target


@dataclass(frozen=True)
class Board:
    """What one run of the board page draws."""

    key: tuple[int, int, int]  # (registry, slots, room) revisions when it was gathered
    entries: tuple[Entry, ...]  # the models trained in class, newest first, without the cleared ones
    backdrop: tuple[Entry, ...]  # the precomputed grid, thresholds outermost
    hidden: int  # models the teacher cleared from the board
    room: RoomState
    missing: int = 0  # models the room lists that the model store could not give yet (`watch` looks again)

    @property
    def all(self) -> tuple[Entry, ...]:
        return self.entries + self.backdrop

    def choices(self, timezone: str | None = None) -> dict[str, str]:
        """Model id -> one line naming it, for the teacher's pin."""
        return {e.row.model_id: label(e.row, timezone) for e in self.all}

    def pinned(self) -> Entry | None:
        return next((e for e in self.all if e.row.model_id == self.room.pinned), None)


def who(trained: TrainedModel) -> str:
    """The name the board gives a model's trainer: a nickname, or PRECOMPUTED for the shipped models."""
    return PRECOMPUTED if trained.origin in ("grid", "pretrained") else nickname(trained.trained_by)


def entry(trained: TrainedModel, added: float | None, name: str | None = None) -> Entry:
    """A model's board entry (`name`: the trainer's nickname as the room lists it); its eigendecomposition is
    computed once per model id for the server."""

    top, share = resources.board_top(trained.model_id, trained)
    row = board_row(
        trained.model_id,
        trained.config,
        trained.history,
        trained.origin,
        name or who(trained),
        added,
        top.cos,
        top.eigenvalue,
        top_share=share,
    )
    return Entry(row, trained, top.image)


def _listed() -> list[tuple[Listed, str | None]]:
    """The models the class trained, newest first (each id once), with their trainer's nickname: from the room
    (every replica's, with the time each was trained), or, while its database is unreachable, what this
    server holds in memory. A model the store cannot give (evicted, or not written yet) is left out."""
    return _gathered()[0]


def _gathered() -> tuple[list[tuple[Listed, str | None]], set[str]]:
    """`_listed`, and the ids of the models trained in the last MISSING_WINDOW_SECONDS the room lists that were
    left out because the store could not give them (yet: another replica's store write may come later)."""
    rows = classroom().models()
    if rows is None:
        both = [*resources.registry().models(BOARD_ORIGINS), *resources.slots().models(BOARD_ORIGINS)]
        unique = {e.trained.model_id: e for e in both}
        return [(e, None) for e in newest_first(unique.values(), None)], set()
    found = [(resources.find_model(r.model_id), r) for r in rows if r.origin in BOARD_ORIGINS]
    listed = [(Listed(trained, r.trained_at), r.nickname) for trained, r in found if trained is not None]
    recent = time.time() - MISSING_WINDOW_SECONDS  # older and absent: evicted, most likely, not late
    return listed, {r.model_id for trained, r in found if trained is None and r.trained_at >= recent}


def _backdrop() -> list[TrainedModel]:
    """The precomputed grid (read once per server). Taken from its own cache, not the registry: adding
    them there could push the class's models out of it (and bump its revision on every board)."""

    return [m for t, wd in grid_points() if (m := resources.grid_model(t, wd)) is not None]


def revision(room: RoomState | None = None) -> tuple[int, int, int]:
    """What a board depends on, as three numbers that change whenever it must be redrawn."""

    room = room or classroom().state()
    return resources.registry().revision, resources.slots().revision, room.revision


def snapshot() -> Board:
    """Everything the board shows now. The revisions are read before the models: a model arriving
    meanwhile is drawn now and makes `watch` redraw once more, never the reverse."""
    room = classroom().state()
    key = revision(room)
    listed, missing = _gathered()
    shown = [(e, name) for e, name in listed if e.trained.model_id not in room.hidden]
    entries = tuple(entry(e.trained, e.added, name) for e, name in shown)
    ids = {e.row.model_id for e in entries}
    backdrop = tuple(entry(m, None) for m in _backdrop() if m.model_id not in ids)
    return Board(key, entries, backdrop, len(listed) - len(shown), room, len(missing - room.hidden))


@st.fragment(run_every=REFRESH_SECONDS)
def watch(drawn: tuple[int, int, int], missing: int = 0, drawn_at: float = 0.0) -> None:
    """Wake every REFRESH_SECONDS; rerun the page only if the board changed since it was drawn, or, when the
    store could not give some of the room's models (`missing`), every MISSING_RETRY_SECONDS to ask it again."""
    if revision() != drawn or (missing and time.time() - drawn_at >= MISSING_RETRY_SECONDS):
        st.rerun()
    st.caption(
        f":material/sync: Live: this board looks for new models every {REFRESH_SECONDS:g} s and redraws "
        "itself when there are some."
    )


def timezone() -> str | None:
    """The browser's time zone name, if it sent one (clock times on the board are the student's own)."""
    try:
        return st.context.timezone
    except Exception:  # no browser (AppTest, a bare script run)
        return None


def thumbnail(shown: Entry, tz: str | None, scale: int = 4) -> figures.Figure:
    """A model's top eigenvector as a figure: its caption says whose and |cos|, its alt text everything."""

    return figures.pixels(
        shown.image,
        f"board_top_eigenvector_{shown.row.model_id}",
        caption(shown.row, tz),
        describe(shown.row, tz, widgets.DIVERGING),
        resources.settings(shown.trained),
        scale=scale,
    )


STRIP_LENGTH = 6  # thumbnails in a model's strip on the board
STRIPS_SHOWN = 12  # the newest models whose strips the board draws


def strip(shown: Entry, tz: str | None) -> figures.Figure | None:
    """How the target appeared in a model while it trained: its snapshots' thumbnails in the board's view
    (core.snapshot.strip) as one picture, or None for a model whose file kept fewer than two."""
    from core.findings import verdict_view  # torch: only a board that shows strips needs it
    from core.snapshot import in_view, strip_pixels  # torch: as above
    from core.snapshot import strip as pick

    kept = pick(in_view(shown.trained.snapshots, *verdict_view()), at_most=STRIP_LENGTH)
    if len(kept) < 2:
        return None
    title, description = appearance(shown.row, kept, tz, widgets.DIVERGING)
    return figures.pixels(
        strip_pixels(kept),
        f"board_strip_{shown.row.model_id}",
        title,
        description,
        resources.settings(shown.trained),
        scale=2,
    )


def use(model_id: str) -> None:
    """The "Use this model" buttons (board, Home): make that model this student's active model, on every page."""

    trained = resources.find_model(model_id)
    if trained is None:
        notify("error", "That model is no longer on this server (it restarted, or made room). Your model is kept.")
        return
    models.set_active(trained)
    left = models.leave_for_another_model()
    whose = "The precomputed model" if who(trained) == PRECOMPUTED else f"The model {who(trained)} trained"
    notify("success", f"{whose} is now your active model, on every page.{left}")


# --- the teacher's controls ----------------------------------------------------------------------


def controls_enabled() -> bool:
    return teacher_passcode() is not None


def is_teacher() -> bool:
    """Whether this session unlocked the teacher controls with the server's current passcode."""
    expected, unlocked = teacher_passcode(), st.session_state.get(TEACHER_KEY)
    if expected is None or not isinstance(unlocked, str):
        return False
    return passcode_matches(unlocked, passcode_digest(expected))


def locked_out() -> float:
    """Seconds before this session may try a passcode again (0: now)."""
    return guesses().wait(models.session_token())


def lockout_text(seconds: float) -> str:
    return (
        f"Too many wrong passcodes on this server: the teacher controls accept no passcode for {remaining(seconds)} "
        "more (guessing is slow for everyone)."
    )


def unlock() -> None:
    """The passcode input and its Unlock button: unlock this session's teacher controls, or wait and say no.
    During a lockout (server.passcode) no passcode is compared at all."""
    given = st.session_state.get(PASSCODE_WIDGET) or ""
    st.session_state[PASSCODE_WIDGET] = ""  # the passcode does not stay in the session, nor go back to the browser
    expected = teacher_passcode()
    if expected is None or not given or is_teacher():
        return
    session, limiter = models.session_token(), guesses()
    wait = limiter.wait(session)
    if wait > 0:
        notify("error", lockout_text(wait))
        return
    if passcode_matches(given, expected):
        st.session_state[TEACHER_KEY] = passcode_digest(expected)
        notify("success", "Teacher controls unlocked, in this browser tab only. **Lock** them before you leave.")
        return
    limiter.wrong(session)
    time.sleep(WRONG_PASSCODE_DELAY)  # each guess costs a second
    log.warning("a wrong teacher passcode was typed on the class board")
    wait = limiter.wait(session)
    notify(
        "error",
        "That passcode is wrong: the teacher controls stay locked. "
        + (lockout_text(wait) if wait > 0 else "Check it and try again."),
    )


def lock() -> None:
    st.session_state.pop(TEACHER_KEY, None)


def _teacher_only(action: str) -> bool:
    """Every control re-checks the passcode: a student reaching one without it changes nothing."""
    if is_teacher():
        return True
    log.warning("a session without the teacher passcode tried to %s", action)
    notify("error", f"Only the teacher can {action}: unlock the teacher controls with the passcode first.")
    return False


def pin(model_id: str | None = None) -> None:
    """Pin a model (default: the one chosen in PIN_CHOICE) on every student's Home page."""
    if not _teacher_only("pin a model for the class"):
        return

    model_id = model_id or st.session_state.get(PIN_CHOICE)
    if not model_id or resources.find_model(model_id) is None:
        notify("error", "That model is no longer on this server: nothing was pinned.")
        return
    classroom().pin(model_id)
    notify("success", "Pinned: every student's Home page now offers this model, with a **Use this model** button.")


def unpin() -> None:
    if _teacher_only("unpin the class's model"):
        classroom().unpin()


def clear() -> None:
    """Hide every model trained so far from the board (nobody's active model changes)."""
    if _teacher_only("clear the board"):
        hidden = [e.trained.model_id for e, _ in _listed()]
        classroom().clear(hidden)
        notify("info", f"Cleared {counted(len(hidden), 'model')} from the board; whoever uses one keeps it.")


def show_answers(visible: bool) -> None:
    if _teacher_only("show or hide the lesson's answers"):
        classroom().show_answers(visible)


def clear_votes() -> None:
    """Forget the room's lesson predictions (a new class, or a second run through the lesson)."""
    if _teacher_only("reset the lesson's tally"):
        classroom().clear_votes()
        notify("info", "The lesson's tally is empty again; predictions revealed from now on are counted.")


def runs() -> list[TrainingJob]:
    """The runs queued or training on this server now (what the teacher may cancel)."""
    return resources.training_pool().in_flight()


def describe_run(job: TrainingJob) -> str:
    """One line per run: whose, its settings, where it is and its time to go."""
    pool = resources.training_pool()
    where = (
        f"queued (number {pool.position(job)})"
        if job.state == "queued"
        else f"training, epoch {len(job.history)} of {job.config.epochs}"
    )
    left = job.seconds_left(pool.speed.factor)
    return f"{nickname(job.trained_by)} · {where} · about {duration(left)} to go"


def cancel_run(job_id: str) -> None:
    """The teacher's Cancel on a run: it stops for everyone who follows it."""
    if not _teacher_only("cancel a training run"):
        return
    job = next((j for j in runs() if config_id(j.config) == job_id), None)
    if job is None:
        notify("info", "That run had already ended.")
        return
    resources.training_pool().cancel(job)
    notify("info", f"Cancelled {nickname(job.trained_by)}'s run; they keep their previous model.")


def cap_minutes() -> float:
    """The class's cap on one run's estimated time, in minutes (the room's, else this server's default)."""
    return resources.max_run_seconds() / 60


def cap_widget() -> tuple[str, float]:
    """The cap widget's key and value: the class's cap as it is now (another replica's board, or another tab, may
    have changed it since this tab last drew it), within the widget's range. The key names that cap, so a change
    draws a new widget, and a value the browser sends from before the change belongs to a widget that is gone.
    With one key whose value the board overwrote, a second teacher tab (its run list redrawn every 2 s) sent its
    old value back inside that window and set the class's cap back (seen in tests/browser/test_replicas.py)."""
    minutes = min(CAP_RANGE[1], max(CAP_RANGE[0], cap_minutes()))
    return f"{CAP_WIDGET}_{minutes * 60:g}".replace(".", "_"), minutes


def set_cap(key: str) -> None:
    """The teacher's cap on one run's estimated time (the widget `key` holds it), in the room: every replica reads
    it (runs already started keep going; a new class keeps it, it is the teacher's setting)."""
    minutes = st.session_state.get(key)
    if not _teacher_only("change the longest training run") or minutes is None:
        return
    seconds = float(minutes) * 60
    classroom().set_max_run_seconds(seconds)
    notify("success", f"A training run may now take at most {duration(seconds)} on every server of the class.")


# --- Home: the model the teacher pinned ------------------------------------------------------------


@st.fragment(run_every=PIN_REFRESH_SECONDS)
def watch_pin(drawn: str | None) -> None:
    """Wake every PIN_REFRESH_SECONDS; rerun the page only if the teacher pinned another model."""
    if classroom().state().pinned != drawn:
        st.rerun()


def pinned_entry(model_id: str) -> Entry | None:
    """The pinned model's entry (also after the board was cleared), if the server still has it."""

    trained = resources.find_model(model_id)
    if trained is None:
        return None
    added, name = next(((e.added, n) for e, n in _listed() if e.trained.model_id == model_id), (None, None))
    return entry(trained, added if who(trained) != PRECOMPUTED else None, name)


def pinned_card(key: str = "home_use_pinned") -> None:
    """Home: the model the teacher pinned for the room, with a "Use this model" button (nothing if none)."""
    pinned = classroom().state().pinned
    watch_pin(pinned)
    if pinned is None:
        return

    shown = pinned_entry(pinned)
    with st.container(border=True):
        if shown is None:
            st.markdown("**Your teacher pinned a model** that this server no longer has (it restarted).")
            return
        row, tz = shown.row, timezone()
        whose = "the precomputed model" if row.precomputed else f"the model {row.who} trained"
        st.markdown(f":material/push_pin: **Your teacher pinned {whose} for the class.**")
        left, right = st.columns([1, 4], vertical_alignment="center")
        with left:
            widgets.image(thumbnail(shown, tz), width=112)
        with right:
            accuracy = f", validation accuracy {row.val_acc:.1%}" if row.val_acc is not None else ""
            st.markdown(f"{row.settings}{accuracy}. Its top eigenvector has |cos| {row.cos:.2f} with the target.")
            active = models.active_or_none()
            if active is not None and active.model_id == row.model_id:
                st.caption("It is your active model.")
            else:
                st.button(
                    "Use this model",
                    key=key,
                    type="primary",
                    icon=":material/check_circle:",
                    on_click=use,
                    args=(row.model_id,),
                    help="Make it your model on every page (your own stays on the class board).",
                )


def rows(entries: Sequence[Entry]) -> list[BoardRow]:
    return [e.row for e in entries]
