"""server.room: the room's state in a database, as two replicas (two Room objects) share it.

Each test runs on a SQLite file and, where Debian's PostgreSQL 15 is installed (CI installs it), on a
throwaway PostgreSQL cluster (harness/services.py, port UNIT_PG_PORT). Two replicas are two Room objects on
the same URL; their clocks are the tests' own, so "a few seconds later" needs no sleep.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from core.config import Config
from core.identity import config_id
from core.lesson import STEPS, Vote
from harness.services import port_from, postgres, postgres_available
from server import room as room_module
from server.classroom import ClassRoom
from server.jobs import TooLong, TrainingPool
from server.room import CLAIM_STALE_SECONDS, POLL_SECONDS, RETRY_SECONDS, Room, voter_key
from tests.manual_clock import Clock
from tests.unit.test_jobs import EPOCHS, Trainers, config

UNIT_PG_PORT = port_from("BILINEAR_LAB_TEST_UNIT_PG_PORT")  # the browser test uses PG_PORT
START = 1_800_000_000.0  # the replicas' shared clock starts here (seconds since the epoch)
CLOSED_PORT = int(os.environ.get("BILINEAR_LAB_TEST_CLOSED_PORT", "8719"))  # nothing listens there
A, B = "a0a0a0a0a0a0", "b1b1b1b1b1b1"


@pytest.fixture(scope="module")
def postgres_url():
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL 15 is missing: `make services` installs it")
        yield None
        return
    with postgres(UNIT_PG_PORT) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path, postgres_url):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'room.sqlite3'}"
        return
    if postgres_url is None:
        pytest.skip("PostgreSQL 15 is not installed (run `make services` as root)")
    schema = f"t{uuid.uuid4().hex[:12]}"  # a schema per test: the cluster is the module's
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def replicas(url):
    clock = Clock(START)
    a, b = Room(url, "A", clock), Room(url, "B", clock)
    yield a, b, clock
    a.close()
    b.close()


def later(clock: Clock, seconds: float = POLL_SECONDS) -> None:
    clock.now += seconds


def test_migrations_run_once_and_a_second_start_finds_the_schema(url):
    first = Room(url, "A")
    assert first.problem is None and first.migrate() == max(room_module.MIGRATIONS)
    second = Room(url, "B")  # another replica, or a restart
    assert second.problem is None and second.migrate() == max(room_module.MIGRATIONS)
    with first.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_version")).scalar() == len(room_module.MIGRATIONS)
        assert conn.execute(text("SELECT count(*) FROM room")).scalar() == 1


def test_a_pin_answers_and_a_clear_on_one_replica_reach_the_other(replicas):
    a, b, clock = replicas
    assert b.state().pinned is None
    a.pin(A)
    a.show_answers(True)
    a.clear([A, B])
    assert a.state().pinned == A, "the replica that wrote reads its change at once"
    later(clock)
    seen = b.state()
    assert seen.pinned == A and seen.answers_visible and seen.hidden == {A, B}
    assert seen.revision == a.state().revision == 3
    a.unpin()
    assert b.state().pinned == A, "another replica reads at most every POLL_SECONDS"
    later(clock)
    assert b.state().pinned is None


def test_a_vote_is_counted_once_per_voter_and_step_whichever_replica_gets_it(replicas):
    a, b, clock = replicas
    step = STEPS[0].id
    a.vote(Vote("student-1", step, 0, 1))
    b.vote(Vote("student-1", step, 1, 1))  # the same student again, on the other replica: replaces the first
    b.vote(Vote("student-2", step, 1, 1))
    later(clock)
    votes = a.state().votes
    assert sorted((v.voter, v.choice) for v in votes) == sorted(
        [(voter_key("student-1"), 1), (voter_key("student-2"), 1)]
    )
    assert all("student" not in v.voter for v in votes), "the room keeps a hash, never a session token"


def test_concurrent_votes_of_one_student_leave_one_row(url):
    rooms = [Room(url, f"R{i}") for i in range(4)]
    step = STEPS[0].id
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: rooms[i % 4].vote(Vote("student", step, i % 2, 0)), range(40)))
    assert all(r.problem is None for r in rooms)
    with rooms[0].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM votes")).scalar() == 1


def test_a_model_is_listed_once_with_its_first_time_and_trainer(replicas):
    a, b, clock = replicas
    assert a.record_model(A, "trained", {"seed": 1}, "brave otter")
    first = clock.now
    later(clock, 60)
    assert b.record_model(A, "trained", {"seed": 1}, "calm heron")  # read back after a restart, another replica
    (listed,) = b.models()
    assert (listed.model_id, listed.nickname, listed.trained_at, listed.replica) == (A, "brave otter", first, "A")
    b.record_model(B, "stopped", {"seed": 2}, "calm heron")
    assert [m.model_id for m in a.models()] == [B, A], "newest first"


def test_only_one_replica_holds_a_live_claim(replicas):
    a, b, clock = replicas
    assert a.claim(A, 3) and not b.claim(A, 3)
    a.report(A, [{"epoch": 1}])
    claim = b.progress(A)
    assert (claim.replica, claim.state, claim.history) == ("A", "running", ({"epoch": 1},))
    later(clock, CLAIM_STALE_SECONDS / 2)
    assert not b.claim(A, 3), "a claim renewed within CLAIM_STALE_SECONDS is alive"
    a.release(A, "finished")
    assert b.progress(A).state == "finished"
    assert b.claim(A, 3), "a finished claim can be taken again (Train again anyway, or the model was evicted)"
    later(clock, CLAIM_STALE_SECONDS + 1)
    assert a.claim(A, 3), "a claim not renewed for CLAIM_STALE_SECONDS belongs to a replica that died"


def test_racing_claims_have_one_winner(url):
    rooms = [Room(url, f"R{i}") for i in range(6)]
    barrier = threading.Barrier(6)

    def race(room: Room) -> bool:
        barrier.wait()
        return room.claim(B, 3)

    with ThreadPoolExecutor(6) as pool:
        won = list(pool.map(race, rooms))
    assert won.count(True) == 1, won


def test_two_pools_sharing_a_room_train_the_same_settings_once(url):
    """Replica B's job for the settings A trains follows A's epochs, then takes A's model, and never trains."""
    room_a, room_b = Room(url, "A"), Room(url, "B")
    trainers_a, trainers_b, store = Trainers(), Trainers(), {}

    def publish(trained):
        store[trained.config] = trained
        return trained

    pool_a = TrainingPool(trainers_a, publish, workers=1, claims=room_a, fetch=store.get)
    pool_b = TrainingPool(trainers_b, publish, workers=1, claims=room_b, fetch=store.get)
    settings = config(26)
    job_a = pool_a.submit(settings, None, "student-a")
    assert trainers_a.has_started(26).wait(10)
    job_b = pool_b.submit(settings, None, "student-b")
    trainers_a.step(26)
    deadline = time.monotonic() + 10
    while len(job_b.history) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job_b.elsewhere and [m.epoch for m in job_b.history] == [1], "B shows A's progress, epoch by epoch"
    trainers_a.step(26, EPOCHS - 1)
    assert job_a.done.wait(10) and job_b.done.wait(10)
    assert job_a.state == job_b.state == "finished" and job_b.result is job_a.result
    assert not trainers_b.has_started(26).is_set(), "B never trained it"
    assert room_b.progress(config_id(settings)).state == "finished"


def test_a_follower_trains_itself_when_the_other_replica_stops(url):
    room_a, room_b = Room(url, "A"), Room(url, "B")
    trainers_a, trainers_b = Trainers(), Trainers()
    pool_a = TrainingPool(trainers_a, lambda t: t, workers=1, claims=room_a, fetch=lambda c: None)
    pool_b = TrainingPool(trainers_b, lambda t: t, workers=1, claims=room_b, fetch=lambda c: None)
    settings = config(27)
    job_a = pool_a.submit(settings, None, "student-a")
    assert trainers_a.has_started(27).wait(10)
    job_b = pool_b.submit(settings, None, "student-b")
    time.sleep(0.3)
    assert job_b.elsewhere
    pool_a.leave(job_a, "student-a")  # A's only student pressed Stop: A's run ends, B's student still waits
    assert job_a.done.wait(10) and job_a.state == "stopped"
    assert trainers_b.has_started(27).wait(10), "B claims the settings and trains them itself"
    trainers_b.step(27, EPOCHS)
    assert job_b.done.wait(10) and job_b.state == "finished" and not job_b.elsewhere


def test_a_long_run_another_replica_trains_holds_no_trainer_here(url):
    """The fair queue (issue 25) beside the claims (issue 26): B's job that follows A's long run uses none of
    B's trainers, so it neither counts as B's long run nor keeps B's own long runs from starting."""
    room_a, room_b = Room(url, "A"), Room(url, "B")
    trainers_a, trainers_b = Trainers(), Trainers()
    pool_a = TrainingPool(trainers_a, lambda t: t, workers=2, claims=room_a, fetch=lambda c: None)
    pool_b = TrainingPool(trainers_b, lambda t: t, workers=2, claims=room_b, fetch=lambda c: None)
    long_config = Config(d_hidden=1024, epochs=3, n_train=4096, n_test=100, batch_size=8, seed=28)
    job_a = pool_a.submit(long_config, None, "student-a")
    assert trainers_a.has_started(28).wait(10)
    followed = pool_b.submit(long_config, None, "student-b")
    deadline = time.monotonic() + 10
    while not followed.elsewhere and time.monotonic() < deadline:
        time.sleep(0.05)
    assert followed.elsewhere and pool_b.is_long(followed)
    own = pool_b.submit(long_config.replace(seed=29), None, "student-c")
    assert trainers_b.has_started(29).wait(10), "B's first long run of its own takes one of B's two trainers"
    assert own.state == "running"
    pool_a.leave(job_a, "student-a")
    pool_b.leave(followed, "student-b")
    pool_b.leave(own, "student-c")
    assert job_a.done.wait(10) and followed.done.wait(10) and own.done.wait(10)


def test_an_unreachable_database_fails_fast_says_so_and_keeps_the_room_in_memory():
    clock = Clock(START)
    started = time.perf_counter()
    down = Room(f"postgresql+psycopg://lab@127.0.0.1:{CLOSED_PORT}/lab", "A", clock)
    assert down.problem is not None and "will not survive a restart" in down.problem
    down.pin(A)
    down.vote(Vote("student", STEPS[0].id, 0, 0))
    state = down.state()
    assert state.pinned == A and len(state.votes) == 1, "the room goes on in this server's memory"
    assert down.models() is None and down.claim(A, 3), "no list to read; a lone server trains what it is asked"
    assert time.perf_counter() - started < 10, "one connection attempt, then nothing waits on it"
    later(clock, RETRY_SECONDS - 1)
    calls = time.perf_counter()
    down.state()
    assert time.perf_counter() - calls < 0.05, "within RETRY_SECONDS the database is not asked again"


def test_what_changed_while_the_database_was_down_reaches_it_once_it_answers(replicas, tmp_path):
    a, b, clock = replicas
    working, a.engine = a.engine, create_engine(f"sqlite:///{tmp_path / 'missing' / 'room.sqlite3'}")  # cannot open
    a.pin(A)
    assert a.problem is not None and a.state().pinned == A, "the pin lives in A's memory meanwhile"
    trained_at = clock.now
    assert not a.record_model(B, "trained", {"seed": 2}, "calm heron")
    later(clock, 30)
    a.vote(Vote("student", STEPS[0].id, 1, 0))
    a.clear([B])
    assert b.state().pinned is None and b.models() == [] and not b.state().votes, "nothing reached replica B"

    a.engine = working  # the database answers again
    later(clock, RETRY_SECONDS)
    assert a.state().pinned == A and a.problem is None
    later(clock)
    state = b.state()
    assert (state.pinned, state.hidden, len(state.votes)) == (A, {B}, 1), "B sees every change, in order"
    (listed,) = b.models()
    assert (listed.model_id, listed.nickname, listed.trained_at) == (B, "calm heron", trained_at), (
        "the model keeps the time it was trained, not the time the database heard of it"
    )


def test_a_change_the_database_refuses_on_replay_does_not_hold_back_the_others(replicas):
    a, b, clock = replicas
    a.clear([A])
    a._defer(lambda conn: conn.execute(room_module.insert(room_module.cleared_table).values(model_id=A, cleared_at=0)))
    a._defer(lambda conn: conn.execute(room_module.update(room_module.room_table).values(pinned=B)))
    later(clock)
    a.state()  # the next read writes what is pending: the duplicate row is refused, the pin goes through
    later(clock)
    assert b.state().pinned == B and not a._pending


def test_the_default_is_a_sqlite_file_in_the_local_store(monkeypatch, tmp_path):
    monkeypatch.delenv(room_module.ENV_VAR, raising=False)
    url = room_module.default_url(str(tmp_path / "models"))
    assert url == f"sqlite:///{tmp_path / 'models' / room_module.FILE_NAME}"
    Room(url).pin(A)
    assert Room(url).state().pinned == A, "a restart finds the room"
    monkeypatch.setenv(room_module.ENV_VAR, "postgresql+psycopg://lab@db.example/lab")
    assert room_module.default_url(None) == "postgresql+psycopg://lab@db.example/lab"


def test_settings_are_json_and_round_trip(replicas):
    a, _, _ = replicas
    settings = Config(seed=3).to_dict()
    a.record_model(config_id(Config(seed=3)), "trained", settings, "brave otter")
    assert Config(**a.models()[0].settings) == Config(seed=3)


def test_an_unusable_room_url_falls_back_to_memory_with_a_notice(monkeypatch):
    from ui import resources

    monkeypatch.setenv(room_module.ENV_VAR, "postgres://lab@db.example/lab")  # SQLAlchemy's name is postgresql
    resources.room.clear()
    try:
        room = resources.room()
        assert room.url == "sqlite://" and "cannot be used" in room.fallback
        assert any("will not survive a restart" in notice for notice in resources.outages())
        room.pin(A)
        assert room.state().pinned == A, "the app keeps working, from memory"
    finally:
        resources.room.clear()


# --- the teacher's cap on a run's cost, shared by the replicas (schema version 2) ---------------------------


def test_a_cap_set_through_one_replica_is_what_the_others_pools_refuse_past(replicas):
    a, b, clock = replicas
    assert a.state().max_run_seconds is None and b.state().max_run_seconds is None, "no cap set: each server's own"
    revision = b.state().revision
    a.set_max_run_seconds(30.0)
    later(clock)
    seen = b.state()
    assert seen.max_run_seconds == 30.0 and seen.revision > revision, "a change every board notices"
    pool_b = TrainingPool(Trainers(), lambda trained: trained, workers=1, max_seconds=lambda: b.state().max_run_seconds)
    assert pool_b.max_seconds == 30.0
    with pytest.raises(TooLong) as refused:
        pool_b.check(Config(epochs=8, d_hidden=1024))  # minutes of training on any server
    assert refused.value.cap == 30.0 and refused.value.nearest, "refused on replica B with settings that fit"
    a.new_class()
    later(clock)
    assert b.state().max_run_seconds == 30.0, "a new class keeps the teacher's cap"
    b.set_max_run_seconds(None)
    later(clock)
    assert a.state().max_run_seconds is None, "back to each server's default"


def test_the_cap_survives_a_restart_and_lives_in_memory_while_the_database_is_down(tmp_path):
    url = f"sqlite:///{tmp_path / 'room.sqlite3'}"
    Room(url, "A").set_max_run_seconds(300.0)
    assert Room(url, "A2").state().max_run_seconds == 300.0, "a restart reads it back"
    down = Room(f"postgresql+psycopg://lab@127.0.0.1:{CLOSED_PORT}/lab", "B", Clock(START))
    down.set_max_run_seconds(45.0)
    assert down.state().max_run_seconds == 45.0, "the in-memory fallback keeps it"
    down.new_class()
    assert down.state().max_run_seconds == 45.0, "and a new class there keeps it too"
    memory = ClassRoom()
    assert memory.set_max_run_seconds(60.0).max_run_seconds == 60.0
    assert memory.state().revision == 1


def test_a_version_1_room_file_migrates_and_keeps_its_state(tmp_path):
    """A SQLite room made by schema version 1 (what the app wrote before the cap), migrated at start-up."""
    url = f"sqlite:///{tmp_path / 'room.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # version 1, as Room.migrate wrote it then
        room_module.schema_version.create(conn)
        room_module.MIGRATIONS[1](conn)
        conn.execute(text("INSERT INTO schema_version (version, applied_at) VALUES (1, 0)"))
        row = text("INSERT INTO room (id, pinned, answers_visible, revision) VALUES (1, :pin, 1, 7)")
        conn.execute(row, {"pin": A})
    with engine.connect() as conn:
        assert "settings" not in {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master"))}
    engine.dispose()
    room = Room(url, "A")
    assert room.problem is None and room.migrate() == 2
    state = room.state()
    assert (state.pinned, state.answers_visible, state.revision, state.max_run_seconds) == (A, True, 7, None)
    room.set_max_run_seconds(90.0)
    assert Room(url, "B").state().max_run_seconds == 90.0
    with room.engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT version FROM schema_version ORDER BY version"))] == [1, 2]
