"""Trainings owned by the server, not by a page: a bounded pool that trains each Config once.

A student's Train press submits a job. The job belongs to the server, so leaving the Train page or
reloading does not stop it: the sessions *follow* it (a Train page, a sidebar badge) and take its
model when it ends. A second student who asks for exactly the same settings follows the same job
(training is deterministic per Config). Stop detaches one follower, who keeps the model as it was
at the end of the last finished epoch; the job itself stops only when no follower is left.

At most `workers` jobs train at once (default: one per core); the rest wait in order, each with
its position and an estimated start, and a queued job can be stopped. The worker threads lower
their own CPU priority (Linux `nice`, by NICE; inherited by torch's threads they start), so page
scripts, which a student waits for, run first on a busy server.

A training runs on one intra-op thread, except while it is the only job in flight and more threads
are measured to be faster (`ThreadChoice`): then a teacher's demo or a lone student gets every core
(the quick preset took a median 4.4 s on two threads here, 5.0 s on one). More threads only pay on
idle cores: beside busy page scripts or another process, each parallel region waits for a descheduled
thread, and the same training took up to 27 s instead of 5 s. So a lone training times a few batches
each way, keeps the faster, and measures again every so often; beside another job it uses one thread
from its next batch on.

A fair room (issue 25): every run's estimated cost on this server stays under `max_seconds` (the teacher
sets it on the board, in the room every replica reads; `check` says which nearest settings fit), a session
follows at most one run in flight, a run whose followers all left (Stop, or a closed tab: `connected` says no
for `grace` seconds) stops, the teacher can `cancel` any run, and the queue is fair: the next run is the one
whose submitter trained least lately, and while `workers - 1` long runs train, the last trainer is kept for
short ones (an express lane), so one student's long runs never hold every trainer; and while another
session's short run trains, a long run waits between two batches, so the short one trains as fast as it
would alone. The speed estimate (`Speed`) is a cost model of steps, images and width, scaled by the median
of what the last runs measured.

No Streamlit here: ui.models connects sessions to jobs, tests drive the pool directly.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from core.config import N_TEST_MNIST, N_TRAIN_MNIST, Config, preset
from core.identity import TrainedModel, config_id
from core.labels import Splits
from core.model import BilinearMLP
from core.snapshot import BUDGET, Snapshot, Watcher, first_epoch_steps, take
from core.train import EpochMetrics, TrainingDiverged, new_model

log = logging.getLogger("bilinear_eigen_lab")
JobState = Literal["queued", "running", "finished", "stopped", "failed"]
# (model, splits, config, should_stop) -> epochs; with a target, also watch= and watch_steps= (core.train.train)
Trainer = Callable[..., Iterator[EpochMetrics]]
# Training threads' CPU priority relative to the page scripts (0 = equal, 19 = lowest). At 5 a training
# competing with a busy page script for one core gets about a quarter of it (Linux CFS weights 335 vs
# 1024); at 10 only a tenth, which starved trainings 10-fold beside another busy process on 2 cores.
NICE = 5
FOLLOW_SECONDS = 1.0  # how often a job trained by another replica reads that replica's progress
DEFAULT_MAX_SECONDS = 120.0  # a run's estimated cost at most: two minutes of a lesson (the teacher can change it)
EXPRESS_SECONDS = 30.0  # a run estimated longer is "long": it never takes the last free trainer
PAUSE_POLL = 0.05  # seconds between a paused long run's looks at the short runs it waits for
GRACE_SECONDS = 6.0  # a follower whose tab is gone this long has left (a reload reattaches well within it)


class ClaimView(Protocol):
    """How far another replica got with a training (server.room.Claim)."""

    state: str
    history: tuple[dict[str, Any], ...]

    def alive(self, now: float) -> bool: ...


class Claims(Protocol):
    """Claims on trainings shared by the replicas of one class (server.room.Room): one trains, the others follow."""

    def claim(self, model_id: str, epochs: int) -> bool: ...
    def report(self, model_id: str, history: Sequence[dict[str, Any]]) -> None: ...
    def release(self, model_id: str, state: str) -> None: ...
    def progress(self, model_id: str) -> ClaimView | None: ...


@dataclass(frozen=True)
class Rates:
    """What a run costs on one core of this 2-core AMD EPYC, in seconds per size unit (the model's parameters
    over d_hidden 64's 58,624: 49.5 at width 1024, whose bilinear layer grows as its square): `step` per
    optimiser step (the update of every weight, the batch's noise draw), `image` per training image through
    the forward and backward pass, `test_image` per test image evaluated after each epoch.

    Fitted to idle runs (the quick preset, 469 steps of 1024 images: 5.2 s on one thread; width 1024 at
    batch 1: 105.7 ms a step, issue 25) and checked against one-epoch runs at widths 64, 256 and 1024 and
    batches 1, 64 and 1024 on a loaded machine (5 of 7 within 15 % once scaled by the load; batch 1 at
    width 64 and batch 64 at width 256 ran 2-3.5 times slower than this)."""

    step: float = 2.1e-3
    image: float = 8.8e-6
    test_image: float = 3.0e-6


RATES = Rates()
D_INPUT = 784


def size_units(d_hidden: int) -> float:
    """A model's parameters relative to d_hidden 64 (at least a quarter: a tiny model still pays Python's overheads)."""

    def parameters(d: int) -> int:
        return d * D_INPUT + 2 * d * d + 2 * d + 2 * d  # W_e, the bilinear W_l and W_r with their biases, W_u

    return max(0.25, parameters(d_hidden) / parameters(64))


def estimate_seconds(config: Config, factor: float = 1.0, rates: Rates = RATES) -> float:
    """Training time of `config` alone on one core: its steps, images and test images times its size,
    at this server's `factor` (Speed.factor) on RATES. Batch size counts: batch 1 is 60,000 steps an epoch."""
    n_train = config.n_train or N_TRAIN_MNIST
    steps = n_train // config.batch_size  # the last partial batch is dropped (core.train)
    per_epoch = (
        steps * rates.step
        + steps * config.batch_size * rates.image
        + (config.n_test or N_TEST_MNIST) * rates.test_image
    )
    return factor * config.epochs * per_epoch * size_units(config.d_hidden)


def seconds_left(history: tuple[EpochMetrics, ...], estimate: float = 0.0, elapsed: float = 0.0) -> float:
    """A run's time still to go: from its own finished epochs once there are some, else the estimate less
    what it has run (the one ETA of the Train page, the sidebar badge and the queue)."""
    if history:
        last = history[-1]
        return last.seconds / last.epoch * (last.epochs - last.epoch)
    return max(0.0, estimate - elapsed)


class Speed:
    """This server's speed as a factor on RATES: the median of measured / estimated over the last `keep`
    runs that were estimated to take at least `shortest` seconds. A tiny run, all start-up overheads, is
    left out, and one odd run cannot move a median (issue 25: one run's 404 s for a 5 s preset)."""

    def __init__(self, factor: float = 1.0, keep: int = 9, shortest: float = 1.0) -> None:
        self._default, self._keep, self._shortest = factor, keep, shortest
        self._ratios: collections.deque[float] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def observe(self, config: Config, seconds: float) -> None:
        expected = estimate_seconds(config)
        if expected < self._shortest or not math.isfinite(seconds) or seconds <= 0:
            return
        with self._lock:
            self._ratios.append(min(20.0, max(0.05, seconds / expected)))

    @property
    def factor(self) -> float:
        with self._lock:
            return statistics.median(self._ratios) if self._ratios else self._default


class TooLong(ValueError):
    """A run estimated past the server's cap; `nearest` holds settings that fit, nearest first."""

    def __init__(self, config: Config, seconds: float, cap: float, nearest: tuple[Config, ...]) -> None:
        self.config, self.seconds, self.cap, self.nearest = config, seconds, cap, nearest
        super().__init__(
            f"these settings would train for about {duration(seconds)} on this server, and a run may take at most "
            f"{duration(cap)} here (the teacher's limit)"
        )


class OneRunEach(RuntimeError):
    """The session already follows another run queued or training: one run per student at a time."""


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3.2 h', '70 days': a duration in the unit a person reads it in."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 100 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def nearest_allowed(config: Config, cap: float, estimate: Callable[[Config], float]) -> tuple[Config, ...]:
    """Settings that fit under `cap`, each changing one thing of `config` as little as possible: fewer
    epochs, a larger batch, a smaller width, a slice of the training images; when none of those fits, the
    quick preset with the same labels."""
    found: list[Config] = []
    per_epoch = estimate(config.replace(epochs=1))
    if per_epoch <= cap:
        found.append(config.replace(epochs=max(1, min(config.epochs - 1, int(cap // per_epoch)))))
    n_train = config.n_train or N_TRAIN_MNIST
    batch = next(
        (
            b
            for b in (2**k for k in range(17))
            if config.batch_size < b <= n_train and estimate(config.replace(batch_size=b)) <= cap
        ),
        None,
    )
    if batch is not None:
        found.append(config.replace(batch_size=batch))
    width = next(
        (
            w
            for w in (2**k for k in range(10, 1, -1))
            if w < config.d_hidden and estimate(config.replace(d_hidden=w)) <= cap
        ),
        None,
    )
    if width is not None:
        found.append(config.replace(d_hidden=width))
    step = 1000 if n_train > 2000 else 100
    n = (n_train - 1) // step * step
    while (
        n >= max(step, config.batch_size)
        and estimate(config.replace(n_train=n, n_test=min(config.n_test or 2000, 2000))) > cap
    ):
        n -= step
    if n >= max(step, config.batch_size):
        found.append(config.replace(n_train=n, n_test=min(config.n_test or 2000, 2000)))
    if not found:
        labels = {
            "target_index": config.target_index,
            "threshold": config.threshold,
            "include_inverse": config.include_inverse,
        }
        found.append(preset("quick", **labels, seed=config.seed))
    return tuple(found)


class TrainingJob:
    """One Config being trained (or waiting to be) for the sessions that follow it."""

    def __init__(self, config: Config, splits: Splits, followers: set[str], trained_by: str = "") -> None:
        self.config, self.splits = config, splits
        self.followers = followers  # session tokens; guarded by the pool's lock
        # the session that submitted it (the class board's nickname): given, or the only first follower
        self.trained_by = trained_by or (next(iter(followers)) if len(followers) == 1 else "")
        self.state: JobState = "queued"
        self.history: tuple[EpochMetrics, ...] = ()  # replaced (never mutated) after every epoch
        # the verdict's top eigenvector and spectrum so far (core.snapshot), taken once per run by its worker
        # for every follower: before the first step, a few times in the first epoch, after every epoch
        self.snapshots: tuple[Snapshot, ...] = ()  # replaced (never mutated), like the history
        self.result: TrainedModel | None = None  # when finished: the server's model for this Config
        self.error = ""  # when failed: why, for the student
        self.cancelled = ""  # when stopped by the server, not a Stop: why ("the teacher stopped it", ...)
        self.paused = False  # a long run waiting between two batches while another session's short run trains
        self.stop_requested = threading.Event()
        self.done = threading.Event()  # set once the job is finished, stopped or failed
        self.queued_at, self.started_at = time.monotonic(), 0.0
        self.elsewhere = False  # True while another replica trains this Config and the job follows its progress
        self._snapshot: tuple[dict[str, torch.Tensor], tuple[EpochMetrics, ...], tuple[Snapshot, ...]] | None = None
        self._lock = threading.Lock()

    def record(self, model: BilinearMLP, metrics: EpochMetrics, snapshot: Snapshot | None = None) -> None:
        """An epoch finished: keep its weights and history (what a Stop hands out), and its snapshot."""
        weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        with self._lock:
            self.history = (*self.history, metrics)
            if snapshot is not None:
                self.snapshots = (*self.snapshots, snapshot)
            self._snapshot = (weights, self.history, self.snapshots)

    def observe(self, snapshot: Snapshot | None) -> None:
        """A snapshot taken between epochs (before the first step, inside the first epoch)."""
        if snapshot is not None:
            with self._lock:
                self.snapshots = (*self.snapshots, snapshot)

    def settle(self) -> None:
        """The run finished and `result` is its model: the copy of the last epoch's weights goes (a session
        that still holds the job, e.g. a closed tab's, kept 11 MB more per width-1024 run)."""
        with self._lock:
            self._snapshot = None

    def model_so_far(self, trained_by: str = "") -> TrainedModel | None:
        """The model at the end of the last finished epoch (a fresh copy; once finished, the server's model), or
        None before the first; credited to `trained_by` (the student who stopped it), else to the job's submitter."""
        with self._lock:
            snapshot = self._snapshot
        if snapshot is None:
            return self.result if self.state == "finished" else None
        weights, history, snapshots = snapshot
        model = new_model(self.config)
        model.load_state_dict(copy.deepcopy(weights))
        origin = "trained" if len(history) == self.config.epochs else "stopped"
        return TrainedModel(
            model, self.config, history, origin, trained_by=trained_by or self.trained_by, snapshots=snapshots
        )

    def seconds_left(self, factor: float) -> float:
        """Estimated training time still to go (the whole run while queued)."""
        elapsed = time.monotonic() - self.started_at if self.state == "running" else 0.0
        return seconds_left(self.history, estimate_seconds(self.config, factor), elapsed)


def idle_cores_meter() -> Callable[[], float] | None:
    """A meter of the machine's idle cores (Linux /proc/stat), or None where there is none: each call
    returns the average number of idle cores since the previous call (0 before any time has passed)."""

    def ticks() -> tuple[int, int]:
        with open("/proc/stat", "rb") as f:
            values = [int(v) for v in f.readline().split()[1:]]  # user nice system idle iowait irq softirq steal...
        return values[3] + values[4], sum(values[:8])

    try:
        last = ticks()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1

    def idle_cores() -> float:
        nonlocal last
        now = ticks()
        idle, total = now[0] - last[0], now[1] - last[1]
        last = now
        return cores * idle / total if total > 0 else 0.0

    return idle_cores


SLOW_BATCH = 4  # a batch on more threads this many times slower than on one: the cores are busy


class ThreadChoice:
    """How many intra-op threads a lone training's next batch uses: `many` only where it is measured
    to be faster, which it is only on idle cores.

    `next` is called before every batch (`skip` when more than a batch ran since, e.g. an epoch's
    evaluation). A lone stretch starts with `first` batches on `one` thread.
    Then, if the machine had an idle core meanwhile (`idle`, e.g. idle_cores_meter(); without one,
    timing alone decides), it runs `probe` batches on `one` thread and `probe` on `many` and keeps
    the count whose median batch time was lower for `period` batches, then decides again. On `many`
    it keeps timing and goes back to one thread as soon as a batch takes SLOW_BATCH times as long as
    one thread did, or the median of its last `probe` batches is slower (load came: on 2 busy cores a
    batch on two threads took 40 times as long, each parallel region waiting for a descheduled thread;
    an idle machine's odd batch took 2 times as long). Each time one thread wins, the wait before the
    next decision doubles. Not alone: `one`.
    """

    def __init__(
        self,
        many: int,
        one: int = 1,
        probe: int = 3,
        period: int = 48,
        first: int = 16,
        clock: Callable[[], float] = time.perf_counter,
        idle: Callable[[], float] | None = None,
    ) -> None:
        self.many, self.one, self.probe, self.period, self.first = many, one, probe, period, first
        self.clock, self.idle = clock, idle
        self._plan: list[int] = []  # the counts the probe still has to run
        self._times: dict[int, list[float]] | None = None  # the probe's batch seconds by count, while probing
        self._recent: list[float] = []  # batch seconds on `many` since the probe
        self._settled, self._left, self._wait = one, first, period  # the kept count, for _left more batches
        self._one_seconds = math.inf  # a batch on one thread, as the last probe measured it
        self._last: tuple[float, int] | None = None  # the previous batch's start and count
        self._alone = False

    def next(self, alone: bool) -> int:
        now = self.clock()
        if self._last is not None:
            self._observe(self._last[1], now - self._last[0])
            self._last = None
        if not alone or self.many <= self.one:
            self._plan, self._times, self._recent, self._alone = [], None, [], False
            self._settled, self._left = self.one, self.first  # a lone stretch starts on one thread
            return self.one
        if not self._alone:
            self._alone = True
            if self.idle is not None:
                self.idle()  # the meter's window starts here
        if self._times is None and self._left <= 0:
            if self._settled == self.many or self.idle is None or self.idle() >= 0.7 * (self.many - self.one):
                self._plan, self._times = [self.one] * self.probe + [self.many] * self.probe, {}
            else:
                self._settle(self.one)  # no idle core to give the other threads
        if self._plan:
            count = self._plan.pop(0)
        else:
            if self._times is not None:
                self._decide(self._times)
            self._left -= 1
            count = self._settled
        self._last = (now, count)
        return count

    def skip(self) -> None:
        """Not one batch ran since the last `next`: leave that interval out."""
        self._last = None

    def _observe(self, count: int, seconds: float) -> None:
        if self._times is not None:
            self._times.setdefault(count, []).append(seconds)
            if count == self.many and seconds > SLOW_BATCH * statistics.median(self._times.get(self.one, [math.inf])):
                self._plan = []  # far slower already: the probe ends here
        elif count == self.many:
            self._recent.append(seconds)
            if seconds > SLOW_BATCH * self._one_seconds or (
                len(self._recent) >= self.probe and statistics.median(self._recent[-self.probe :]) > self._one_seconds
            ):
                self._settle(self.one)  # slower than one thread: the machine got busy

    def _decide(self, times: dict[int, list[float]]) -> None:
        self._one_seconds = statistics.median(times.get(self.one, [math.inf]))
        many = statistics.median(times.get(self.many, [math.inf]))
        self._times = None
        self._settle(self.many if many < self._one_seconds else self.one)

    def _settle(self, count: int) -> None:
        self._settled, self._recent = count, []
        self._wait = self.period if count == self.many else 2 * self._wait
        self._left = self._wait
        if self.idle is not None and count == self.one:
            self.idle()  # the next decision looks at the cores while this one-thread stretch runs


def _use_threads(n: int, default: int) -> None:
    """This thread's torch intra-op threads become n; threads that start later keep `default`.

    torch.set_num_threads sets the calling thread's count (OpenMP's and MKL's are per thread) and
    also the count a thread takes when it first runs a torch op; a short-lived thread sets the latter
    back, so the page scripts that start meanwhile stay on `default`.
    """
    torch.get_num_threads()  # a thread's first call takes the default: it would undo a count set before it
    torch.set_num_threads(n)
    if n != default:
        reset = threading.Thread(target=torch.set_num_threads, args=(default,), name="torch-threads-default")
        reset.start()
        reset.join()


def _lower_priority(nice: int) -> None:
    """Make this thread (and the threads it starts) yield the CPU to the page scripts (Linux)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class TrainingPool:
    """Jobs by Config, at most `workers` training at once, the others queued fairly (see the module)."""

    def __init__(
        self,
        trainer: Trainer,
        publish: Callable[[TrainedModel], TrainedModel],
        workers: int | None = None,
        nice: int = NICE,
        threads_alone: int | None = None,
        thread_choice: Callable[[int, int], ThreadChoice] | None = None,
        claims: Claims | None = None,
        fetch: Callable[[Config], TrainedModel | None] | None = None,
        target: Callable[[Config], torch.Tensor] | None = None,
        snapshot_budget: float | None = BUDGET,
        max_seconds: float | Callable[[], float] = math.inf,
        connected: Callable[[str], bool] | None = None,
        grace: float = GRACE_SECONDS,
        speed: Speed | None = None,
        owner: Callable[[str], str] = str,
        after_run: Callable[[], None] | None = None,
    ) -> None:
        self._trainer, self._publish = trainer, publish  # publish: e.g. the registry's add
        self._after_run = after_run  # called by a worker after each run ends (server.memory.Reclaimer)
        # claims: the replicas' shared claims (server.room); fetch: a model another replica finished (the store)
        self._claims, self._fetch = claims, fetch
        # the target image of a Config: given, each job snapshots its weights (core.snapshot) and the trainer
        # is asked to `watch` steps of the first epoch; at most `snapshot_budget` of the training time
        self._target, self._snapshot_budget = target, snapshot_budget
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._nice = nice
        # intra-op threads of a training: `threads_alone` while it is the only job in flight, else the
        # server's default (the app sets 1, streamlit_app.THREADS)
        self._threads_default = torch.get_num_threads()
        self.threads_alone = max(1, threads_alone or os.cpu_count() or 1)
        self._thread_choice = thread_choice or (lambda many, one: ThreadChoice(many, one, idle=idle_cores_meter()))
        self._lock = threading.Condition()
        self._jobs: dict[Config, TrainingJob] = {}  # queued or running
        self._queue: list[TrainingJob] = []  # in arrival order; `_order` says which starts next
        self._threads: list[threading.Thread] = []
        self.speed = speed or Speed()
        # the teacher's cap on one run's estimated seconds: a number, or what the room says now (server.room,
        # every replica reads the same), asked at each check
        self._max_seconds = max_seconds
        # whether a follower's tab is still open (None: never asked, e.g. tests); absent `grace` s = left
        self._connected, self._grace = connected, grace
        self._absent: dict[tuple[int, str], float] = {}  # (job, follower) -> when first seen gone
        self._sweeper: threading.Thread | None = None
        self._used: dict[str, tuple[float, float]] = {}  # owner -> (training seconds, when), decaying
        self._owner = owner  # a submitter's token -> whose turn it is in the fair queue (their browser)

    @property
    def max_seconds(self) -> float:
        """The cap on one run's estimated seconds now."""
        cap = self._max_seconds
        return float(cap() if callable(cap) else cap)

    @max_seconds.setter
    def max_seconds(self, seconds: float | Callable[[], float]) -> None:
        self._max_seconds = seconds

    # --- what sessions call -----------------------------------------------------------------

    def estimate(self, config: Config) -> float:
        """Seconds `config` takes to train alone on this server."""
        return estimate_seconds(config, self.speed.factor)

    def check(self, config: Config) -> None:
        """Raise TooLong (with the nearest settings that fit) if `config` is past the cap."""
        seconds, cap = self.estimate(config), self.max_seconds
        if seconds > cap:
            raise TooLong(config, seconds, cap, nearest_allowed(config, cap, self.estimate))

    def submit(self, config: Config, splits: Splits, follower: str) -> TrainingJob:
        """Train `config` for `follower`; joins the job already queued or running for it, if any.

        A new job comes with its first snapshot (the initial weights' top eigenvector, a few milliseconds,
        taken here outside the lock), so the page run that follows the Train click already has a picture.
        Raises TooLong past the cap, OneRunEach if `follower` follows another run still in flight."""
        joined = self._join(config, follower)
        if joined is not None:
            return joined
        self._admit(config, follower)  # before the snapshot: a refused run costs nothing
        first = self._first_snapshot(config, splits)
        with self._lock:
            joined = self._join(config, follower)
            if joined is not None:
                return joined
            self._admit(config, follower)
            job = TrainingJob(config, splits, {follower}, trained_by=follower)
            job.observe(first)
            self._jobs[config] = job
            self._queue.append(job)
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=f"training-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            if self._connected is not None and self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep, name="training-sweeper", daemon=True)
                self._sweeper.start()
            self._lock.notify_all()
            return job

    def _admit(self, config: Config, follower: str) -> None:
        """Raise OneRunEach if `follower` follows another run still in flight, TooLong if `config` is past the cap."""
        with self._lock:
            other = next((j for j in self._jobs.values() if follower in j.followers), None)
            if other is not None and not other.stop_requested.is_set():
                raise OneRunEach(
                    "you already have a run queued or training on this server: stop it, or wait for it to end, "
                    "before you start another"
                )
        self.check(config)

    def _join(self, config: Config, follower: str) -> TrainingJob | None:
        with self._lock:
            job = self._jobs.get(config)
            if job is not None and not job.stop_requested.is_set():  # a stopping job cannot be joined
                job.followers.add(follower)
                return job
            return None

    def _first_snapshot(self, config: Config, splits: Splits) -> Snapshot | None:
        """The snapshot of a run's initial weights (deterministic in the Config), or None without a target."""
        if self._target is None:
            return None
        return take(new_model(config), self._target(config), 0, max(1, len(splits.train_x) // config.batch_size))

    def in_flight(self) -> list[TrainingJob]:
        """The jobs queued or running, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def follow(self, job: TrainingJob, follower: str) -> bool:
        """Attach `follower` to a job still in flight (a reload reattaches); False if it has ended."""
        with self._lock:
            if job.stop_requested.is_set() or self._jobs.get(job.config) is not job:
                return False
            job.followers.add(follower)
            return True

    def leave(self, job: TrainingJob, follower: str) -> None:
        """`follower` stops following; the job stops (or leaves the queue) when nobody follows it."""
        with self._lock:
            job.followers.discard(follower)
            if job.followers or job.done.is_set():
                return
            self._stop(job, "")

    def cancel(self, job: TrainingJob, reason: str = "the teacher stopped it") -> None:
        """Stop a run for everyone who follows it (the teacher's control on the class board)."""
        with self._lock:
            if not job.done.is_set():
                self._stop(job, reason)

    def _stop(self, job: TrainingJob, reason: str) -> None:
        """Under the lock: stop a job (a queued one ends here, a running one at its next batch)."""
        job.cancelled = job.cancelled or reason
        job.stop_requested.set()
        if job in self._queue:  # never started: it ends here
            self._queue.remove(job)
            self._end(job, "stopped")
        self._lock.notify_all()

    def _used_before(self, owner: str, now: float) -> float:
        """Under the lock: `owner`'s finished training seconds, halved every 10 minutes."""
        seconds, when = self._used.get(owner, (0.0, now))
        return seconds * 0.5 ** ((now - when) / 600.0)

    def _usage(self, owner: str, now: float) -> float:
        """Under the lock: `owner`'s training seconds lately, its running jobs' included."""
        return self._used_before(owner, now) + sum(
            now - j.started_at
            for j in self._jobs.values()
            if j.state == "running" and self._owner(j.trained_by) == owner
        )

    def _order(self) -> list[TrainingJob]:
        """Under the lock: the queue in the order its jobs start (who trained least lately first)."""
        now = time.monotonic()
        return sorted(self._queue, key=lambda j: (self._usage(self._owner(j.trained_by), now), j.queued_at))

    def is_long(self, job: TrainingJob) -> bool:
        """A long run (estimated past EXPRESS_SECONDS on RATES, whatever this server's speed): it never takes
        the last free trainer."""
        return self.workers > 1 and estimate_seconds(job.config) > EXPRESS_SECONDS

    def _next(self) -> TrainingJob | None:
        """Under the lock: the job a free worker starts now, if any (long runs never take the last trainer)."""
        long_running = sum(self.is_long(j) for j in self._jobs.values() if j.state == "running" and not j.elsewhere)
        return next((j for j in self._order() if not self.is_long(j) or long_running < self.workers - 1), None)

    def position(self, job: TrainingJob) -> int:
        """1 for the next job to start, 2 after it...; 0 when not queued."""
        with self._lock:
            return next((i for i, queued in enumerate(self._order(), 1) if queued is job), 0)

    def seconds_to_start(self, job: TrainingJob) -> float:
        """Estimated wait before a queued job starts: the work ahead of it shared by the workers."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.state == "running"]
            order = self._order()
            ahead = order[: order.index(job)] if job in order else None
        if ahead is None:
            return 0.0
        factor = self.speed.factor
        # Greedy list scheduling: each job starts on the worker that frees up first; a short job has its
        # express lane, so only the short runs ahead of it and one trainer's running job delay it.
        if not self.is_long(job) and self.workers > 1:
            ahead = [j for j in ahead if not self.is_long(j)]
            running = [j for j in running if not self.is_long(j)] or running[:0]
        free_at = sorted(j.seconds_left(factor) for j in running) + [0.0] * max(0, self.workers - len(running))
        for queued in ahead:
            free_at.sort()
            free_at[0] += queued.seconds_left(factor)
        return min(free_at)

    def status(self) -> tuple[int, int]:
        """(running, queued) jobs on this server."""
        with self._lock:
            return sum(j.state == "running" for j in self._jobs.values()), len(self._queue)

    # --- followers whose tab closed ---------------------------------------------------------------

    def sweep(self) -> None:
        """Drop the followers `connected` has said no to for `grace` seconds; a job nobody follows stops."""
        if self._connected is None:
            return
        now = time.monotonic()
        with self._lock:
            pairs = [(job, f) for job in self._jobs.values() for f in job.followers if not job.stop_requested.is_set()]
        gone = {(id(job), f) for job, f in pairs if not self._connected(f)}
        with self._lock:
            self._absent = {key: self._absent.get(key, now) for key in gone}
            for job, follower in pairs:
                if now - self._absent.get((id(job), follower), now) >= self._grace:
                    log.info("the tab following %s closed: it no longer follows the run", config_id(job.config))
                    job.followers.discard(follower)
                    if not job.followers and not job.done.is_set():
                        self._stop(job, "everyone who followed it closed their page")

    def _sweep(self) -> None:
        while True:
            time.sleep(min(1.0, self._grace / 3))
            try:
                self.sweep()
            except Exception:  # never let the sweeper die: a closed tab would then hold its run
                log.exception("sweeping the training pool's followers failed")

    # --- the worker threads -----------------------------------------------------------------

    def _end(self, job: TrainingJob, state: JobState) -> None:
        """Under the lock: the job is over; the next session asking for its Config starts afresh."""
        if job.state == "running":  # what its submitter used, for the fair queue
            now = time.monotonic()
            owner = self._owner(job.trained_by)
            self._used[owner] = (self._used_before(owner, now) + now - job.started_at, now)
        job.state = state
        if state == "finished":
            job.settle()
        if self._jobs.get(job.config) is job:
            del self._jobs[job.config]
        job.done.set()
        self._lock.notify_all()

    def _work(self) -> None:
        _lower_priority(self._nice)
        while True:
            with self._lock:
                while (job := self._next()) is None:
                    self._lock.wait(timeout=5.0)
                self._queue.remove(job)
                job.state, job.started_at = "running", time.monotonic()
            if self._claims is not None and not self._claims.claim(config_id(job.config), job.config.epochs):
                job.elsewhere = True  # another replica trains it: follow its progress without taking a worker
                threading.Thread(
                    target=self._follow_elsewhere, args=(job,), name="training-elsewhere", daemon=True
                ).start()
                continue
            state = self._train(job)
            with self._lock:
                self._end(job, state)
            self._reclaim()

    def _reclaim(self) -> None:
        """A run ended: its weights, optimiser state and buffers are free; `after_run` gives them back."""
        if self._after_run is not None:
            self._after_run()

    def _follow_elsewhere(self, job: TrainingJob) -> None:
        """Mirror another replica's claim on `job`'s Config: its epochs as they finish, then its model (from the
        store). If that replica stops, dies or its model cannot be read here, this server claims and trains."""
        _lower_priority(self._nice)
        assert self._claims is not None
        key, state = config_id(job.config), None
        while state is None:
            if job.stop_requested.wait(FOLLOW_SECONDS):
                state = "stopped"  # every follower here left; the other replica's training goes on
                break
            claim = self._claims.progress(key)
            if claim is not None and claim.history:
                with contextlib.suppress(ValueError):  # a malformed row: keep the last good progress
                    job.history = tuple(EpochMetrics.from_dict(h) for h in claim.history)
            if claim is not None and claim.state == "finished":
                job.result = self._fetch(job.config) if self._fetch is not None else None
                if job.result is not None:
                    state = "finished"
                    break
            if claim is not None and claim.state != "finished" and claim.alive(time.time()):
                continue
            if self._claims.claim(key, job.config.epochs):  # gone, stopped, failed or unreadable here: train it
                job.elsewhere, job.history = False, ()
                state = self._train(job)
        with self._lock:
            self._end(job, state)
        self._reclaim()

    def _released(self, job: TrainingJob, state: JobState) -> JobState:
        if self._claims is not None:
            self._claims.release(config_id(job.config), state)
        return state

    def _alone(self, job: TrainingJob) -> bool:
        """Nothing but `job` is training: the others wait in the queue (every trainer is busy) or are long runs
        paused for a short one, so `job` may take every idle core."""
        with self._lock:
            return all(j is job or j.state != "running" or j.paused or j.elsewhere for j in self._jobs.values())

    def _short_one_running(self, job: TrainingJob) -> bool:
        """Another student's short run is training (a long `job` then waits)."""
        with self._lock:
            return any(
                j.state == "running"
                and not j.elsewhere  # another replica trains it: not on this server's cores
                and self._owner(j.trained_by) != self._owner(job.trained_by)
                and not self.is_long(j)
                for j in self._jobs.values()
            )

    def _watcher(self, job: TrainingJob, model: BilinearMLP) -> tuple[Watcher | None, dict]:
        """The job's snapshot taker, its first snapshot (the initial weights: a picture at once) taken, and what
        the trainer is given to call it inside the first epoch; (None, {}) without a target."""
        if self._target is None:
            return None, {}
        steps_per_epoch = max(1, len(job.splits.train_x) // job.config.batch_size)
        watcher = Watcher(self._target(job.config), steps_per_epoch, self._snapshot_budget)
        if not job.snapshots:  # submit took the initial weights' snapshot already
            job.observe(watcher.look(model, 0))

        def watch(model: BilinearMLP, step: int) -> None:
            job.observe(watcher.look(model, step))

        return watcher, {"watch": watch, "watch_steps": first_epoch_steps(steps_per_epoch)}

    def _train(self, job: TrainingJob) -> JobState:
        config, threads = job.config, 0
        choice = self._thread_choice(self.threads_alone, self._threads_default)

        def poll() -> bool:  # the trainer asks between batches: also fit its threads to the pool's load
            nonlocal threads
            if self.is_long(job) and self._short_one_running(job):  # a classmate's quick run goes as if alone
                job.paused = True
                while self._short_one_running(job) and not job.stop_requested.is_set():
                    time.sleep(PAUSE_POLL)
                job.paused = False
                choice.skip()  # the pause was not a batch
            wanted = choice.next(self._alone(job))
            if wanted != threads:
                _use_threads(wanted, self._threads_default)
                threads = wanted
            return job.stop_requested.is_set()

        try:
            model = new_model(config)
            watcher, watching = self._watcher(job, model)
            for metrics in self._trainer(model, job.splits, config, poll, **watching):
                snapshot = None
                if watcher is not None:  # the epoch's end: always its last, within the budget before
                    step = metrics.epoch * watcher.steps_per_epoch
                    snapshot = watcher.look(model, step, final=metrics.epoch == config.epochs)
                job.record(model, metrics, snapshot)
                choice.skip()  # the epoch's evaluation (and the snapshot) ran since the last batch began
                if self._claims is not None:  # the other replicas' followers see the epoch (and that we live)
                    self._claims.report(config_id(config), [m.to_dict() for m in job.history])
        except TrainingDiverged as error:
            job.error = str(error)
            return self._released(job, "failed")
        except Exception as error:  # a bug: the followers get a message, the log the traceback
            log.exception("training %s failed", config)
            job.error = f"Training failed ({type(error).__name__}: {error})."
            return self._released(job, "failed")
        if len(job.history) < config.epochs:
            return self._released(job, "stopped")  # every follower left (Stop): the run ends where it was
        job.result = self._publish(
            TrainedModel(model, config, job.history, "trained", trained_by=job.trained_by, snapshots=job.snapshots)
        )
        self._released(job, "finished")  # after the publish: the model is in the store for the other replicas
        self.speed.observe(config, job.history[-1].seconds)  # the next estimates use this server's speed
        return "finished"
