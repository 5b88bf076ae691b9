"""The server's training pool (server.jobs), driven directly with a trainer the tests hold and release."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from core.config import Config
from core.train import EpochMetrics
from server.jobs import ThreadChoice, TrainingPool, estimate_seconds, idle_cores_meter
from tests.manual_clock import Clock

EPOCHS = 3


class Trainers:
    """Fake trainers: each job trains EPOCHS epochs, one per `step` of its own Event, so a test
    decides exactly when each job advances; records how many train at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.steps: dict[int, threading.Semaphore] = {}  # by seed
        self.started: dict[int, threading.Event] = {}
        self.running = self.most_running = 0
        self.niceness: dict[int, int] = {}
        self.threads: dict[int, list[int]] = {}  # by seed: torch's intra-op threads after each poll

    def step(self, seed: int, epochs: int = 1) -> None:
        for _ in range(epochs):
            self.semaphore(seed).release()

    def semaphore(self, seed: int) -> threading.Semaphore:
        with self.lock:
            return self.steps.setdefault(seed, threading.Semaphore(0))

    def has_started(self, seed: int) -> threading.Event:
        with self.lock:
            return self.started.setdefault(seed, threading.Event())

    def __call__(self, model, splits, config, should_stop):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.niceness[config.seed] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        self.has_started(config.seed).set()
        try:
            for epoch in range(1, config.epochs + 1):
                while not self.semaphore(config.seed).acquire(timeout=0.01):
                    if should_stop():
                        return
                    with self.lock:
                        self.threads.setdefault(config.seed, []).append(torch.get_num_threads())
                yield EpochMetrics(epoch, config.epochs, 0.5, 0.9, 0.5, 0.9, 0.1 * epoch, 1e-3)
        finally:
            with self.lock:
                self.running -= 1


def config(seed: int) -> Config:
    return Config(d_hidden=4, epochs=EPOCHS, n_train=4096, n_test=100, batch_size=512, seed=seed)


@pytest.fixture
def pool():
    trainers, published = Trainers(), []

    def publish(trained):
        published.append(trained)
        return trained

    made = TrainingPool(trainers, publish, workers=2)
    made.trainers, made.published = trainers, published
    yield made
    for seed in list(trainers.steps):
        trainers.step(seed, EPOCHS)


def test_a_job_trains_publishes_and_ends(pool):
    job = pool.submit(config(1), splits=None, follower="a")
    assert pool.trainers.has_started(1).wait(10)
    pool.trainers.step(1, EPOCHS)
    assert job.done.wait(10)
    assert job.state == "finished" and [m.epoch for m in job.history] == [1, 2, 3]
    assert pool.published == [job.result] and job.result.origin == "trained"
    assert pool.in_flight() == [], "an ended job leaves the table"


def test_at_most_workers_train_at_once_the_rest_wait_in_order(pool):
    jobs = [pool.submit(config(seed), splits=None, follower=f"s{seed}") for seed in range(1, 6)]
    assert pool.trainers.has_started(1).wait(10) and pool.trainers.has_started(2).wait(10)
    assert [job.state for job in jobs] == ["running", "running", "queued", "queued", "queued"]
    assert [pool.position(job) for job in jobs] == [0, 0, 1, 2, 3]
    assert pool.status() == (2, 3)
    waits = [pool.seconds_to_start(job) for job in jobs[2:]]
    assert waits == sorted(waits) and waits[0] > 0, "later in the queue, later start"
    for seed in range(1, 6):
        pool.trainers.step(seed, EPOCHS)
    assert all(job.done.wait(10) for job in jobs)
    assert pool.trainers.most_running == 2
    assert all(job.state == "finished" for job in jobs)


def test_the_same_config_is_one_job_with_two_followers(pool):
    first = pool.submit(config(7), splits=None, follower="a")
    assert pool.submit(config(7), splits=None, follower="b") is first
    assert first.followers == {"a", "b"}
    pool.leave(first, "a")  # one student stops: the other still follows, so it trains on
    assert not first.stop_requested.is_set()
    pool.trainers.step(7, EPOCHS)
    assert first.done.wait(10) and first.state == "finished"


def test_the_last_follower_leaving_stops_the_run_and_keeps_its_last_epoch(pool):
    job = pool.submit(config(8), splits=None, follower="a")
    assert pool.trainers.has_started(8).wait(10)
    pool.trainers.step(8)  # epoch 1 ends
    while len(job.history) < 1:
        threading.Event().wait(0.01)
    kept = job.model_so_far()
    assert kept is not None and (kept.origin, kept.epochs_done) == ("stopped", 1)
    pool.leave(job, "a")
    assert job.done.wait(10) and job.state == "stopped" and job.result is None
    assert pool.published == []
    again = pool.submit(config(8), splits=None, follower="a")
    assert again is not job, "pressing Train again starts a new run"


def test_a_queued_job_can_be_stopped_before_it_starts(pool):
    running = [pool.submit(config(seed), splits=None, follower=f"x{seed}") for seed in (11, 12)]
    assert pool.trainers.has_started(11).wait(10) and pool.trainers.has_started(12).wait(10)
    queued = pool.submit(config(13), splits=None, follower="q")
    assert pool.position(queued) == 1
    pool.leave(queued, "q")
    assert queued.done.is_set() and queued.state == "stopped" and queued.history == ()
    assert pool.position(queued) == 0 and pool.status()[1] == 0
    for seed in (11, 12):
        pool.trainers.step(seed, EPOCHS)
    assert all(job.done.wait(10) for job in running)
    assert not pool.trainers.has_started(13).is_set(), "a stopped queued job never trains"


def test_a_stopping_job_is_not_joined(pool):
    job = pool.submit(config(21), splits=None, follower="a")
    pool.leave(job, "a")
    assert not pool.follow(job, "b"), "a reload cannot reattach to a run that is stopping"
    assert pool.submit(config(21), splits=None, follower="b") is not job


def test_a_failing_trainer_fails_the_job_with_a_message():
    def broken(model, splits, config, should_stop):
        raise RuntimeError("boom")
        yield

    pool = TrainingPool(broken, lambda trained: trained, workers=1)
    job = pool.submit(config(31), splits=None, follower="a")
    assert job.done.wait(10)
    assert job.state == "failed" and "RuntimeError: boom" in job.error


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="Linux nice")
def test_training_threads_run_at_a_lower_priority_than_pages(pool):
    job = pool.submit(config(41), splits=None, follower="a")
    assert pool.trainers.has_started(41).wait(10)
    assert pool.trainers.niceness[41] > os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool.trainers.step(41, EPOCHS)
    assert job.done.wait(10)


def wait_for(condition, timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


class Greedy:
    """A ThreadChoice that takes every thread whenever the job is alone (the pool's plumbing is tested,
    not the policy)."""

    def __init__(self, many: int, one: int) -> None:
        self.many, self.one = many, one

    def next(self, alone: bool) -> int:
        return self.many if alone else self.one

    def skip(self) -> None:
        pass


def test_a_lone_training_takes_threads_alone_and_one_beside_another():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the server's default, as streamlit_app sets it
    try:
        trainers = Trainers()
        pool = TrainingPool(trainers, lambda trained: trained, workers=2, threads_alone=3, thread_choice=Greedy)
        seen = trainers.threads
        first = pool.submit(config(51), splits=None, follower="a")
        assert wait_for(lambda: 3 in seen.get(51, [])), "alone: every thread"
        second = pool.submit(config(52), splits=None, follower="b")
        assert wait_for(lambda: seen.get(52, [])[-3:] == [1, 1, 1] and seen[51][-3:] == [1, 1, 1])
        polls = len(seen[51])
        trainers.step(52, EPOCHS)
        assert second.done.wait(10)
        assert wait_for(lambda: 3 in seen[51][polls:]), "alone again: every thread again"
        assert torch.get_num_threads() == 1, "other threads keep their own count"
        later: list[int] = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [1], "a thread that starts meanwhile (a page script) gets the default"
        trainers.step(51, EPOCHS)
        assert first.done.wait(10)
    finally:
        torch.set_num_threads(before)


def batches(choice: ThreadChoice, seconds: dict[int, float], n: int, alone: bool = True) -> list[int]:
    """The counts `choice` picks for n batches that take seconds[count] each (on its Clock)."""
    counts = []
    for _ in range(n):
        counts.append(choice.next(alone))
        choice.clock.now += seconds[counts[-1]]
    return counts


def choice(probe: int = 3, period: int = 10, idle: float | None = 1.0) -> ThreadChoice:
    """A ThreadChoice on a Clock whose idle-core meter always reads `idle` (None: no meter)."""
    meter = None if idle is None else (lambda: idle)
    return ThreadChoice(many=2, probe=probe, period=period, first=10, clock=Clock(), idle=meter)


FAST, SLOW = {1: 0.010, 2: 0.006}, {1: 0.010, 2: 0.050}  # batch seconds by thread count: idle, loaded


@pytest.mark.parametrize("idle", [1.0, None])
def test_thread_choice_keeps_the_faster_count_and_decides_again(idle):
    fast = batches(choice(idle=idle), FAST, 10 + 6 + 10 + 6 + 4)
    assert fast == [1] * 10 + [1, 1, 1, 2, 2, 2] + [2] * 10 + [1, 1, 1, 2, 2, 2] + [2] * 4
    slow = batches(choice(idle=idle), SLOW, 10 + 4 + 20 + 4 + 40 + 1)
    # one slow batch on two threads ends the probe, and each time the wait doubles
    assert slow == [1] * 10 + [1, 1, 1, 2] + [1] * 20 + [1, 1, 1, 2] + [1] * 40 + [1]


def test_thread_choice_tries_no_more_threads_without_an_idle_core():
    assert batches(choice(idle=0.4), FAST, 10 + 20 + 40 + 5) == [1] * 75


def test_thread_choice_drops_back_to_one_thread_when_load_comes():
    chooser = choice()
    assert batches(chooser, FAST, 10 + 6 + 4) == [1] * 10 + [1, 1, 1, 2, 2, 2] + [2] * 4
    assert batches(chooser, SLOW, 2) == [2, 1], "a batch 5 times as slow as one thread's: back to one at once"
    assert batches(chooser, SLOW, 19) == [1] * 19, "and twice as long before deciding again"
    assert batches(chooser, SLOW, 1) == [1]  # the next probe starts with one thread
    milder = choice()
    assert batches(milder, FAST, 10 + 6 + 4) == [1] * 10 + [1, 1, 1, 2, 2, 2] + [2] * 4
    assert batches(milder, {1: 0.010, 2: 0.015}, 3) == [2, 2, 1], "two of the last three slower than one thread"


def test_thread_choice_leaves_out_what_is_not_one_batch():
    chooser = choice()
    assert batches(chooser, FAST, 10 + 6 + 2) == [1] * 10 + [1, 1, 1, 2, 2, 2] + [2, 2]
    chooser.clock.now += 1.0  # an evaluation after the last batch
    chooser.skip()
    assert batches(chooser, FAST, 3) == [2, 2, 2], "not taken for a slow batch on two threads"


def test_thread_choice_uses_one_when_not_alone_and_starts_afresh():
    chooser = choice(probe=2)
    assert batches(chooser, FAST, 10 + 3) == [1] * 10 + [1, 1, 2]
    assert batches(chooser, FAST, 5, alone=False) == [1] * 5
    assert batches(chooser, FAST, 10 + 6) == [1] * 10 + [1, 1, 2, 2, 2, 2], "a fresh start, not the interrupted probe"
    assert batches(ThreadChoice(many=1, clock=Clock()), {1: 0.01}, 4) == [1] * 4, "one core: nothing to try"


def test_idle_cores_meter_reads_between_zero_and_the_cores():
    meter = idle_cores_meter()
    if meter is None:
        pytest.skip("no /proc/stat")
    time.sleep(0.05)
    assert 0.0 <= meter() <= (os.cpu_count() or 1)


def test_estimates_grow_with_the_work():
    base = config(1)
    assert estimate_seconds(base.replace(epochs=6), 1e-5) == pytest.approx(2 * estimate_seconds(base, 1e-5))
    assert estimate_seconds(base.replace(n_train=None), 1e-5) > estimate_seconds(base, 1e-5)
