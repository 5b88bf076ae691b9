"""A small classroom in a real browser: 3 students take the main path at once on one server.

Runs `python -m loadtest` as a program at a smaller size (3 sessions from one chromium, 1 epoch of
the quick preset, one seed each so every session really trains) and checks that every
session got through Home -> Label -> Train -> Eigenvectors with no error element, and that a
session costs the server little memory: the dataset and the models are shared, not copied per
session. The sessions join one after another, so the RSS growth of each join (Home rendered) and
of each Label visit after the first session's can be read off. The bounds are generous (the goal,
measured by the benchmark, is < 20 MB per session; about 1 MB is typical) but can fail: a
per-session copy of MNIST (55 MB as uint8, 188 MB as float) would break the Label bound.

The teacher's Class board stays open in one more tab for the whole run (`--teacher-board`), never
clicked: every student's model must appear on it by itself (the goal is 5 s after the student's
"Training finished"; the bound is generous, the machine is shared).
"""

from __future__ import annotations

import pytest

from harness.browser import require_chromium, run_loadtest

pytestmark = pytest.mark.browser
MB = 2**20
MAX_RSS_PER_JOINED_SESSION = 60 * MB
MAX_RSS_PER_LABEL_VISIT = 40 * MB  # below one uint8 copy of MNIST
# A student's "Training finished" -> their model on the teacher's board: the goal is 5 s (`python -m loadtest
# --teacher-board` measures it); this bound only says "by itself, in the same lesson". On a CI machine running the
# other tests beside this one the board's redraw waited behind the students' page runs for up to 39.6 s.
MAX_BOARD_SECONDS = 120.0


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    require_chromium()
    options = "--sessions 3 --epochs 1 --no-teacher --timeout 120 --teacher-board"
    return run_loadtest(tmp_path_factory.mktemp("classroom"), *options.split())


def test_every_session_completes_without_an_error(classroom):
    for session in classroom["sessions"]:
        assert session["errors"] == [], f"session {session['index']}: {session['errors']}"
        assert session["outcome"] == "trained", f"session {session['index']}: {session['outcome']}"
        assert session["completed"]


def test_a_joining_session_adds_little_memory(classroom):
    per_join = classroom["increments"]["max_join"]
    assert per_join < MAX_RSS_PER_JOINED_SESSION, (
        f"each joined session added {per_join / MB:.1f} MB to the server (bound {MAX_RSS_PER_JOINED_SESSION / MB:.0f})"
    )


def test_a_later_label_visit_reuses_the_dataset(classroom):
    per_label = classroom["increments"]["max_label"]
    assert per_label < MAX_RSS_PER_LABEL_VISIT, (
        f"a later session's Label visit added {per_label / MB:.1f} MB (bound {MAX_RSS_PER_LABEL_VISIT / MB:.0f})"
    )


def test_every_students_model_reaches_the_teachers_board_by_itself(classroom):
    board = classroom["teacher_board"]
    assert board["errors"] == [] and board["missing"] == [], board
    assert board["redraws"] >= 1, "the board redrew itself when the models arrived"
    latency = board["latency"]
    assert latency["n"] == 3 and latency["max"] < MAX_BOARD_SECONDS, (
        f"a student's model reached the teacher's board {latency['max']:.1f} s after their Training finished"
    )
