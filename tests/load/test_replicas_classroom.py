"""Two replicas, one room: `python -m loadtest --replicas 2 --room postgres --store s3` at its smallest.

Two app servers share a throwaway PostgreSQL 15 cluster (the room) and moto's S3 server (the models), as
harness/services.py starts them; four protocol students, two per replica (student i on replica i mod 2, every
visit), train one epoch each, and a teacher's board tab is open on each replica. Every student's model must
reach BOTH boards by itself (the goal is a few seconds; the bound is generous, the machine is shared), and the
report must carry what the benchmark reads: each replica's page switches, board and peak RSS, each model's
arrival on its own and the other replica's board, and the room's database share of each page run, measured in
the servers (BILINEAR_LAB_PROFILE_ROOM).
"""

from __future__ import annotations

import pytest

from harness.browser import require_chromium, run_loadtest
from harness.services import postgres_available, require

pytestmark = pytest.mark.browser  # real servers and two chromium board tabs (Makefile)
MAX_BOARD_SECONDS = 60.0  # "by itself, in the same lesson": the goal (5 s) is the benchmark's to measure


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    require_chromium()
    require("PostgreSQL 15 (Debian's postgresql package)", postgres_available())
    pytest.importorskip("s3fs")
    options = (
        "--replicas 2 --room postgres --store s3 --sessions 4 --protocol-sessions 4 --epochs 1 --no-teacher "
        "--teacher-board --timeout 120"
    )
    return run_loadtest(tmp_path_factory.mktemp("replicas"), *options.split())


def test_every_student_trains_on_its_own_replica_without_an_error(replicas):
    assert replicas["config"]["replicas"] == 2
    assert [s["replica"] for s in replicas["sessions"]] == [0, 1, 0, 1]
    for session in replicas["sessions"]:
        assert session["errors"] == [], f"session {session['index']}: {session['errors']}"
        assert [t["outcome"] for t in session["trainings"]] == ["trained"], session["trainings"]
        assert session["completed"], session["index"]


def test_every_model_reaches_both_boards(replicas):
    arrival = replicas["arrival"]
    assert arrival["missing"] == [], f"(session, board) never seen: {arrival['missing']}"
    assert arrival["own"]["n"] == 4 and arrival["other"]["n"] == 4, arrival
    assert arrival["other"]["max"] < MAX_BOARD_SECONDS, arrival
    for session in replicas["sessions"]:
        training = session["trainings"][0]
        assert training["on_board_0"] is not None and training["on_board_1"] is not None, training
    for server in replicas["servers"]:
        assert server["board"]["errors"] == [] and server["board"]["models_seen"] == 4, server["board"]


def test_the_report_has_each_replicas_figures(replicas):
    for replica, server in enumerate(replicas["servers"]):
        assert (server["replica"], server["sessions"], server["completed"]) == (replica, 2, 2)
        assert server["exit_code"] is None and server["peak_rss"] > 0, server
        switches = server["switching"]["protocol"]["content"]["all"]
        assert switches["n"] == 10 and switches["p95"] >= switches["median"], switches
        assert server["training"]["trained"] == 2
    cpu = replicas["cpu"]
    assert len(cpu["per_server"]) == 2 and "services" in cpu["cpu_seconds"], cpu


def test_the_database_share_of_each_page_run_is_measured_in_the_servers(replicas):
    for server in replicas["servers"]:
        database = server["database"]
        pages = database["pages"]
        assert {"home", "label", "train", "eigenvectors", "tensor", "explain", "class_board"} <= set(pages), pages
        assert sum(p["runs_that_queried"] for p in pages.values()) >= 1, "some page run read the room"
        for page, figures in pages.items():
            assert 0 <= figures["share_of_all_runs"] <= 1, (page, figures)
            assert figures["database_seconds"]["max"] <= figures["run_seconds"]["max"], (page, figures)
        assert database["outside_runs"]["trainings"]["calls"] >= 2, "the trainings' claims and epochs"
