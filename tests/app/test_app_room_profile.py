"""The entry file times each page run's database calls when BILINEAR_LAB_PROFILE_ROOM is set
(server.room_profile, read by `python -m loadtest`): a Class board run is written with its page and its seconds."""

from __future__ import annotations

from server.room_profile import PROFILE, read
from tests.app.test_app import assert_clean, open_page


def test_a_page_run_is_written_with_its_page(tmp_path, monkeypatch):
    path = tmp_path / "profile.jsonl"
    monkeypatch.setattr(PROFILE, "path", str(path))  # the server's profile, as the variable would set it
    at = open_page("app_pages/class_board.py")
    assert_clean(at)
    runs = [line for line in read(path) if line["kind"] == "run"]
    assert [run["page"] for run in runs] == ["home", "class_board"], runs
    board = runs[-1]
    assert board["completed"] and 0 <= board["database_s"] <= board["seconds"], board
