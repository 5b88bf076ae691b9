"""Issue 25, a fair room: every limit one student meets, driven directly (server/, no Streamlit).

Bounded runs (server.jobs: the cost cap and its nearest settings, one run per session, closed tabs, the
teacher's cancel, the fair queue and its express lane), the speed estimate, the model stores' bounds
(server.eviction, server.registry, core.store), the byte-bounded cache of decompositions (server.budget)
and the passcode limiter (server.passcode).
"""

from __future__ import annotations

import threading
import time

import pytest

from core.config import Config, preset
from core.identity import TrainedModel
from core.store import ModelStore
from core.train import EpochMetrics, new_model
from server import registry as registry_module
from server.budget import BytesLRU
from server.eviction import Held, evictions
from server.jobs import (
    EXPRESS_SECONDS,
    OneRunEach,
    Speed,
    TooLong,
    TrainingPool,
    duration,
    estimate_seconds,
    nearest_allowed,
    seconds_left,
)
from server.passcode import GuessLimiter, remaining, weakness
from server.registry import Bounds, ModelRegistry, ModelSlots
from server.sessions import Sessions, browser_key
from tests.manual_clock import Clock
from tests.unit.test_jobs import EPOCHS, Greedy, Trainers, config, wait_for

FLOOD = Config(epochs=1000, d_hidden=1024, batch_size=1)  # the three tabs
QUICK = preset("quick")


# --- the cost of a run ---------------------------------------------------------------------------------


def test_the_estimate_counts_batch_size_width_and_epochs():
    assert estimate_seconds(QUICK) < 20, "the quick preset is a few seconds"
    assert estimate_seconds(FLOOD) > 30 * 86400, "batch 1 at width 1024 for 1000 epochs: weeks, not the hours it read"
    assert estimate_seconds(QUICK.replace(batch_size=1)) > 5 * estimate_seconds(QUICK), "batch 1: 60,000 steps"
    assert estimate_seconds(QUICK.replace(d_hidden=1024)) > 16 * estimate_seconds(QUICK), "width grows as its square"
    assert estimate_seconds(QUICK.replace(epochs=16)) == pytest.approx(2 * estimate_seconds(QUICK))
    assert estimate_seconds(QUICK, factor=3.0) == pytest.approx(3 * estimate_seconds(QUICK))


def test_the_speed_is_a_median_that_one_tiny_or_odd_run_cannot_move():
    speed = Speed()
    assert speed.factor == 1.0
    for _ in range(3):
        speed.observe(QUICK, 2 * estimate_seconds(QUICK))  # this server runs at half the table's speed
    assert speed.factor == pytest.approx(2.0)
    tiny = Config(d_hidden=1024, epochs=1, n_train=8, n_test=8, batch_size=8)
    speed.observe(tiny, 30.0)  # all overheads: measured 30 s for an estimate far below a second
    assert speed.factor == pytest.approx(2.0), "a tiny run is left out"
    speed.observe(QUICK, 80 * estimate_seconds(QUICK))  # one odd run (the machine was swapping)
    assert speed.factor == pytest.approx(2.0), "one run does not overwrite the estimate"


def test_the_eta_of_a_run_comes_from_its_own_epochs_or_the_estimate():
    m = EpochMetrics(2, 8, 0.5, 0.9, 0.5, 0.9, 10.0, 1e-3)
    assert seconds_left((m,)) == pytest.approx(30.0), "5 s an epoch, 6 to go"
    assert seconds_left((), estimate=40.0, elapsed=15.0) == pytest.approx(25.0)
    assert seconds_left((), estimate=10.0, elapsed=15.0) == 0.0
    assert [duration(s) for s in (45, 720, 3 * 3600, 70 * 86400)] == ["45 s", "12 min", "3.0 h", "70 days"]


def test_settings_past_the_cap_are_refused_with_the_nearest_that_fit():
    pool = TrainingPool(Trainers(), lambda trained: trained, workers=2, max_seconds=120.0)
    with pytest.raises(TooLong) as refused:
        pool.submit(FLOOD, splits=None, follower="a")
    assert "70 days" in str(refused.value) or "days" in str(refused.value)
    assert "2 min" in str(refused.value) or "120 s" in str(refused.value)
    assert pool.in_flight() == [], "nothing was queued"
    wide = Config(epochs=20, d_hidden=1024, batch_size=64)
    nearest = nearest_allowed(wide, 120.0, pool.estimate)
    assert nearest and all(pool.estimate(c) <= 120.0 for c in nearest)
    for option in nearest:  # each changes one thing
        changed = {k for k, v in option.to_dict().items() if v != wide.to_dict()[k]} - {"n_test"}
        assert len(changed) == 1, changed
    assert nearest_allowed(FLOOD, 120.0, pool.estimate)[-1].epochs == QUICK.epochs, "nothing near fits: the preset"
    pool.max_seconds = 1e9  # the teacher raised the cap
    pool.check(wide)


# --- one run per session, closed tabs, the teacher -----------------------------------------------------


@pytest.fixture
def trainers():
    made = Trainers()
    yield made
    for seed in list(made.steps):
        made.step(seed, EPOCHS)


def test_a_session_has_one_run_in_flight(trainers):
    pool = TrainingPool(trainers, lambda trained: trained, workers=2)
    first = pool.submit(config(1), splits=None, follower="tab")
    with pytest.raises(OneRunEach):
        pool.submit(config(2), splits=None, follower="tab")
    assert pool.submit(config(1), splits=None, follower="tab") is first, "the same settings: the same run"
    pool.leave(first, "tab")
    assert pool.submit(config(2), splits=None, follower="tab") is not first, "after Stop, another may start"


def test_a_run_whose_tabs_all_closed_stops_within_seconds(trainers):
    open_tabs = {"closing", "classmate"}
    pool = TrainingPool(trainers, lambda trained: trained, workers=1, connected=lambda t: t in open_tabs, grace=0.3)
    running = pool.submit(config(1), splits=None, follower="closing")
    queued = pool.submit(config(2), splits=None, follower="classmate")
    assert trainers.has_started(1).wait(10)
    open_tabs.discard("closing")  # the browser closed
    start = time.monotonic()
    assert running.done.wait(10) and running.state == "stopped"
    assert time.monotonic() - start < 3.0, "within seconds"
    assert "closed" in running.cancelled
    assert trainers.has_started(2).wait(10), "the classmate's run starts"
    assert queued.state == "running"


def test_a_reload_within_the_grace_keeps_the_run(trainers):
    open_tabs = {"old"}
    pool = TrainingPool(trainers, lambda trained: trained, workers=1, connected=lambda t: t in open_tabs, grace=1.0)
    job = pool.submit(config(3), splits=None, follower="old")
    assert trainers.has_started(3).wait(10)
    open_tabs.discard("old")  # the reload closes the old session...
    time.sleep(0.3)
    open_tabs.add("new")
    assert pool.follow(job, "new")  # ...and the new one follows the run again (training=<id>)
    time.sleep(1.6)
    assert not job.stop_requested.is_set() and job.followers == {"new"}, "the old session left, the run goes on"


def test_the_last_follower_stop_cancels_after_the_closed_tabs_left(trainers):
    """The issue's third student: opened the flood run's link and pressed Stop; the run must end."""
    open_tabs = {"third"}
    pool = TrainingPool(trainers, lambda trained: trained, workers=1, connected=lambda t: t in open_tabs, grace=0.2)
    job = pool.submit(config(4), splits=None, follower="flooder")
    assert pool.follow(job, "third")
    assert wait_for(lambda: job.followers == {"third"}, 5), "the closed tab no longer follows"
    pool.leave(job, "third")
    assert job.done.wait(10) and job.state == "stopped"


def test_the_teacher_cancels_a_running_and_a_queued_run(trainers):
    pool = TrainingPool(trainers, lambda trained: trained, workers=1)
    running = pool.submit(config(5), splits=None, follower="a")
    queued = pool.submit(config(6), splits=None, follower="b")
    assert trainers.has_started(5).wait(10)
    pool.cancel(queued)
    assert queued.done.is_set() and queued.state == "stopped" and queued.cancelled == "the teacher stopped it"
    pool.cancel(running)
    assert running.done.wait(10) and running.state == "stopped" and running.cancelled


def test_the_queue_is_fair_across_sessions(trainers):
    pool = TrainingPool(trainers, lambda trained: trained, workers=1)
    first = pool.submit(config(10), splits=None, follower="busy")
    assert trainers.has_started(10).wait(10)
    time.sleep(0.2)
    trainers.step(10, EPOCHS)
    assert first.done.wait(10)
    pool.submit(config(11), splits=None, follower="other")
    assert trainers.has_started(11).wait(10)
    again = pool.submit(config(12), splits=None, follower="busy")  # the busy session, first in line...
    time.sleep(0.05)
    fresh = pool.submit(config(13), splits=None, follower="fresh")  # ...and a session that trained nothing yet
    assert pool.position(fresh) == 1 and pool.position(again) == 2, "who trained least lately goes first"
    trainers.step(11, EPOCHS)
    assert trainers.has_started(13).wait(10) and not trainers.has_started(12).is_set()


def test_long_runs_never_take_the_last_trainer(trainers):
    long_config = Config(d_hidden=1024, epochs=3, n_train=4096, n_test=100, batch_size=8, seed=20)
    assert estimate_seconds(long_config) > EXPRESS_SECONDS > estimate_seconds(config(21))
    pool = TrainingPool(trainers, lambda trained: trained, workers=2)
    first_long = pool.submit(long_config, splits=None, follower="tab1")
    second_long = pool.submit(long_config.replace(seed=22), splits=None, follower="tab2")
    assert trainers.has_started(20).wait(10)
    time.sleep(0.2)
    assert second_long.state == "queued", "the second trainer stays free for a short run"
    quick = pool.submit(config(21), splits=None, follower="classmate")
    assert trainers.has_started(21).wait(10), "the classmate's short run starts at once"
    assert pool.seconds_to_start(second_long) > 0
    trainers.step(21, EPOCHS)
    assert quick.done.wait(10)
    trainers.step(20, EPOCHS)
    assert first_long.done.wait(10) and trainers.has_started(22).wait(10), "then the next long run"


# --- the class's models survive a flood -----------------------------------------------------------------


def held(model_id: str, owner: str, added: float, n_bytes: int = 10) -> Held:
    return Held(model_id, owner, added, n_bytes)


def test_eviction_bounds_each_trainer_and_spares_pinned_in_use_and_recent():
    now = 10_000.0
    models = [held(f"f{i}", "flooder", now - 10 + i) for i in range(6)] + [held("c", "classmate", now - 20)]
    dropped = evictions(models, max_models=100, per_owner=2, now=now)
    assert dropped.over_owner == ("f0", "f1", "f2", "f3") and dropped.over_size == ()
    spared = evictions(models, max_models=100, per_owner=2, protected={"f0"}, now=now)
    assert "f0" not in spared.all, "in use or pinned: kept even past the trainer's share"
    old = [held(f"o{i}", f"s{i}", now - 7200 - i) for i in range(3)] + [held("c", "classmate", now - 60)]
    room = evictions(old, max_models=2, per_owner=5, now=now, recent=3600)
    assert set(room.over_size) == {"o1", "o2"} and "c" not in room.all, "the oldest go, never a recent one"
    full = evictions(old, max_models=1, per_owner=5, protected={"o2", "o1", "o0"}, now=now, recent=3600)
    assert full.all == (), "only protected or recent models left: the store stays over its size"
    by_size = evictions(old, max_models=100, max_bytes=25, per_owner=5, now=now, recent=3600)
    assert len(by_size.over_size) == 2


def small(seed: int, by: str, d_hidden: int = 4) -> TrainedModel:
    cfg = Config(d_hidden=d_hidden, epochs=1, n_train=512, n_test=64, batch_size=64, seed=seed)
    return TrainedModel(
        new_model(cfg), cfg, (EpochMetrics(1, 1, 0.5, 0.9, 0.5, 0.9, 0.1, 1e-3),), "trained", trained_by=by
    )


def test_a_flood_from_three_tabs_keeps_the_classmates_model_on_the_board_and_in_the_store(tmp_path):
    store = ModelStore(str(tmp_path), max_bytes=10 * 2**20)
    sessions = Sessions()
    registry = ModelRegistry(None, max_models=8, store=store, bounds=Bounds(sessions.in_use, per_owner=3))
    classmate = registry.add(small(1, "classmate"))
    sessions.using("classmate", classmate.model_id)
    for i in range(64):
        registry.add(small(100 + i, f"tab{i % 3}"))
    ids = [e.trained.model_id for e in registry.models()]
    assert classmate.model_id in ids, "the classmate's model is still on the board"
    assert len(ids) == 1 + 3 * 3, "each tab keeps its last three"
    assert classmate.model_id in store.ids() and len(store) == 1 + 3 * 3, "and the store holds no more"
    slots = ModelSlots(max_models=48, bounds=Bounds(per_owner=2))
    for i in range(10):
        slots.add(
            TrainedModel(small(200 + i, "tab0").model, small(200 + i, "tab0").config, (), "stopped", trained_by="tab0")
        )
    assert len(slots) == 2, "stopped runs too"


def test_a_model_trained_while_the_store_is_down_reaches_it_once_it_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_module, "RETRY_SAVE_SECONDS", 0.05)
    store = ModelStore(str(tmp_path), max_bytes=10 * 2**20)
    registry = ModelRegistry(None, store=store)
    slots = ModelSlots(store=store)
    store._down(ConnectionError("the bucket's endpoint does not answer"))  # as a failed request leaves it
    trained = registry.add(small(1, "a"))
    stopped = slots.add(TrainedModel(small(2, "a").model, small(2, "a").config, (), "stopped", trained_by="a"))
    assert store.ids() == [] and registry.save_unsaved() == 1 and slots.save_unsaved() == 1, "kept for later"
    store._down_until = 0.0  # the store answers again
    deadline = time.monotonic() + 10
    while len(store.ids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert set(store.ids()) == {trained.model_id, stopped.model_id}, "written by the next try, unasked"
    assert registry.save_unsaved() == 0 and slots.save_unsaved() == 0


def test_the_store_never_drops_what_it_is_told_to_keep(tmp_path):
    store = ModelStore(str(tmp_path), max_bytes=300)
    store.put("aaaaaaaaaaaa", b"x" * 200)
    store.put("bbbbbbbbbbbb", b"x" * 200, keep={"aaaaaaaaaaaa"})
    assert set(store.ids()) == {"aaaaaaaaaaaa", "bbbbbbbbbbbb"}, "kept: over its size rather than drop it"
    store.put("cccccccccccc", b"x" * 200)
    assert "cccccccccccc" in store.ids() and len(store) == 1
    store.delete("cccccccccccc")
    assert len(store) == 0


def test_decompositions_are_cached_within_a_byte_budget_and_computed_once():
    cache: BytesLRU[bytes] = BytesLRU(100, len)
    calls: list[str] = []

    def compute(key: str, n: int):
        def make() -> bytes:
            calls.append(key)
            time.sleep(0.05)
            return b"x" * n

        return make

    threads = [threading.Thread(target=cache.get, args=("a", compute("a", 40))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["a"], "four sessions at once: one decomposition"
    cache.get("b", compute("b", 40))
    cache.get("c", compute("c", 40))  # 120 bytes: the least recently used (a) goes
    assert cache.total <= 100 and len(cache) == 2
    cache.get("a", compute("a", 40))
    assert calls == ["a", "b", "c", "a"]
    cache.get("huge", compute("huge", 1000))
    assert cache.total <= 100, "a value past the whole budget is returned, not kept"


def test_sessions_say_which_tabs_are_open_and_which_models_they_use():
    open_ids = {"s1"}
    sessions = Sessions(lambda sid: sid in open_ids)
    sessions.seen("a", "s1")
    sessions.seen("b", "s2")
    sessions.using("a", "m1")
    sessions.using("b", "m2")
    assert sessions.connected("a") and not sessions.connected("b") and sessions.connected("never-seen")
    assert sessions.in_use() == {"m1"}, "a closed tab's model is no longer in use"
    assert not sessions.connected("b"), "and the closed tab stays closed"


# --- guessing the passcode -------------------------------------------------------------------------------


def test_guessing_locks_out_one_session_then_the_whole_server():
    clock = Clock()
    limiter = GuessLimiter(per_session=5, server_wide=12, window=60, lockout=120, clock=clock)
    for _ in range(4):
        assert limiter.wait("tab") == 0
        limiter.wrong("tab")
        clock.now += 1
    assert limiter.wait("tab") == 0
    limiter.wrong("tab")  # the fifth in a minute
    assert limiter.wait("tab") == pytest.approx(120)
    clock.now += 30
    assert limiter.wait("tab") == pytest.approx(90), "the time left, to show"
    assert limiter.wait("teacher") == 0, "another session may still try"
    for i in range(7):  # six tabs each guessing a little: 12 in a minute on the server
        limiter.wrong(f"other{i}")
    assert limiter.wait("teacher") == pytest.approx(120), "then nobody may for a while"
    clock.now += 121
    assert limiter.wait("teacher") == 0 and limiter.wait("tab") == 0


def test_a_slow_guesser_is_not_locked_out():
    clock = Clock()
    limiter = GuessLimiter(per_session=5, server_wide=30, window=60, lockout=120, clock=clock)
    for _ in range(20):
        limiter.wrong("tab")
        clock.now += 16  # fewer than four a minute
        assert limiter.wait("tab") == 0


def test_a_short_passcode_draws_a_warning():
    assert "only 6 characters" in weakness("owl-42")
    assert weakness("three random words") is None
    assert remaining(100.2) == "1 min 40 s" and remaining(0.2) == "1 s"


def test_a_long_run_waits_while_another_sessions_short_run_trains(trainers):
    long_config = Config(d_hidden=1024, epochs=3, n_train=4096, n_test=100, batch_size=8, seed=30)
    pool = TrainingPool(trainers, lambda trained: trained, workers=2, threads_alone=2, thread_choice=Greedy)
    long_run = pool.submit(long_config, splits=None, follower="flooder")
    assert trainers.has_started(30).wait(10)
    quick = pool.submit(config(31), splits=None, follower="classmate")
    assert trainers.has_started(31).wait(10)
    assert wait_for(lambda: long_run.paused), "the long run waits between two batches"
    polls = len(trainers.threads.get(30, []))
    time.sleep(0.3)
    assert len(trainers.threads.get(30, [])) == polls, "and runs no batch meanwhile"
    assert wait_for(lambda: 2 in trainers.threads.get(31, [])), "the short run trains as if alone: every thread"
    trainers.step(31, EPOCHS)
    assert quick.done.wait(10)
    assert wait_for(lambda: not long_run.paused and len(trainers.threads.get(30, [])) > polls), "then it goes on"


def test_a_browser_is_one_student_across_tabs_and_reloads():
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

    token = bytes(range(16))
    first, reload = generate_xsrf_token_string(token, 1), generate_xsrf_token_string(token, 1)
    assert first != reload, "the cookie's mask changes on every page load..."
    assert browser_key(first) == browser_key(reload) is not None, "...its token, and so the key, does not"
    assert browser_key(generate_xsrf_token_string(bytes(16), 1)) != browser_key(first), "another browser"
    assert token.hex() not in (browser_key(first) or "") and browser_key("garbage") is None
    sessions = Sessions()
    for tab in range(64):  # 64 reloads or tabs of one browser: 64 sessions
        sessions.seen(f"tab{tab}", None, browser_key(first))
    assert {sessions.owner(f"tab{tab}") for tab in range(64)} == {browser_key(first)}
    assert sessions.owner("unknown") == "unknown", "no browser key: the session itself"
    registry = ModelRegistry(None, max_models=100, bounds=Bounds(per_owner=3, owner=sessions.owner))
    for tab in range(64):
        registry.add(small(300 + tab, f"tab{tab}"))
    assert len(registry) == 3, "one browser keeps three models, however many sessions trained them"
