"""server.room_profile: the room's database seconds per page run (BILINEAR_LAB_PROFILE_ROOM), for the load tool.

A Room on a SQLite file with a profile: the database calls made inside a script run are that run's (its page,
its seconds, their count), calls outside any run get lines of their own with their thread's name, a run a
click interrupts is written too, and with the profile off nothing is written.
"""

from __future__ import annotations

import threading

import pytest

from server.room import Room
from server.room_profile import RoomProfile, read


class Interrupted(BaseException):
    """As Streamlit's RerunException: not an Exception."""


@pytest.fixture
def profiled(tmp_path):
    profile = RoomProfile(tmp_path / "profile.jsonl")
    room = Room(f"sqlite:///{tmp_path / 'room.sqlite3'}", "A", profile=profile)
    yield room, profile, tmp_path / "profile.jsonl"
    room.close()


def test_a_runs_database_calls_are_counted_in_that_run(profiled):
    room, profile, path = profiled
    before = len(read(path))  # the first call migrates: outside any run
    with profile.script_run():
        profile.page("class_board")
        room.pin("a0a0a0a0a0a0")  # a transaction, then a read of the new state
        room.models()  # fresh: no query
    runs = [line for line in read(path)[before:] if line["kind"] == "run"]
    assert len(runs) == 1, read(path)
    run = runs[0]
    assert (run["page"], run["completed"], run["calls"]) == ("class_board", True, 2), run
    assert 0 < run["database_s"] <= run["seconds"], run
    assert [line for line in read(path)[before:] if line["kind"] == "outside"] == []


def test_calls_outside_a_run_are_lines_of_their_own_with_their_thread(profiled):
    room, _, path = profiled
    worker = threading.Thread(target=lambda: room.report("a0a0a0a0a0a0", []), name="training-0")
    worker.start()
    worker.join()
    outside = [line for line in read(path) if line["kind"] == "outside"]
    assert outside and outside[-1]["thread"] == "training-0", outside
    assert outside[-1]["database_s"] > 0


def test_an_interrupted_run_is_written_as_not_completed(profiled):
    room, profile, path = profiled
    with pytest.raises(Interrupted), profile.script_run():
        room.show_answers(True)
        raise Interrupted
    run = read(path)[-1]
    assert (run["kind"], run["page"], run["completed"], run["calls"]) == ("run", None, False, 2), run


def test_off_by_default_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profile = RoomProfile(None)
    room = Room(f"sqlite:///{tmp_path / 'room.sqlite3'}", "A", profile=profile)
    with profile.script_run():
        profile.page("home")
        room.pin("a0a0a0a0a0a0")
    room.close()
    assert not profile.enabled and sorted(p.name for p in tmp_path.iterdir()) == ["room.sqlite3"]
