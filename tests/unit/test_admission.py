"""Page scripts take turns (server.turns.PageTurns, made by ui.admission): a few at once, the rest by ticket."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from server import turns as turns_module
from server.turns import PageTurns
from ui import admission

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
WAIT = 10.0  # seconds a test waits for a thread it expects to move; never reached when the code is right


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class Threads:
    """Threads whose exceptions fail the test (an assert in a thread alone only warns)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as error:
                self.errors.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
            assert not thread.is_alive(), "a thread is still waiting"
        if self.errors:
            raise self.errors[0]


def take_and_record(turns: PageTurns, served: list[int], i: int, ticket: int | None = None) -> None:
    assert turns.acquire(WAIT, ticket), f"waiter {i} got no slot"
    served.append(i)
    turns.release()


def test_waiters_are_served_in_the_order_they_arrived() -> None:
    turns, threads, served = PageTurns(1), Threads(), []
    assert turns.acquire(timeout=0)
    for i in range(5):  # each queues only once the previous one is waiting: a known arrival order
        threads.start(lambda i=i: take_and_record(turns, served, i))
        until(lambda i=i: turns.waiting == i + 1, f"waiter {i} to queue")
    assert served == []
    turns.release()
    threads.join()
    assert served == [0, 1, 2, 3, 4]
    assert (turns.free, turns.waiting) == (1, 0), "every slot is free again"


def test_an_older_ticket_goes_first_even_if_it_queues_later() -> None:
    """A session whose run a click interrupted keeps its ticket, so its next run gets its place back."""
    turns, threads, served = PageTurns(1), Threads(), []
    kept = turns.ticket()  # the interrupted session's ticket, taken before the others arrived
    assert turns.acquire(timeout=0)
    for i in range(3):
        threads.start(lambda i=i: take_and_record(turns, served, i))
        until(lambda i=i: turns.waiting == i + 1, f"waiter {i} to queue")
    threads.start(lambda: take_and_record(turns, served, 99, kept))
    until(lambda: turns.waiting == 4, "the old ticket to queue")
    turns.release()
    threads.join()
    assert served == [99, 0, 1, 2]


def test_a_newcomer_does_not_overtake_a_waiter() -> None:
    turns, threads, done = PageTurns(1), Threads(), threading.Event()

    def waiter() -> None:
        assert turns.acquire(WAIT)
        done.wait(WAIT)
        turns.release()

    assert turns.acquire(timeout=0)
    threads.start(waiter)
    until(lambda: turns.waiting == 1, "the waiter to queue")
    turns.release()  # the slot goes to the waiter, not back to the pool
    assert not turns.acquire(timeout=0.05)
    done.set()
    threads.join()
    assert turns.free == 1


def test_at_most_slots_run_at_once() -> None:
    turns, threads, lock = PageTurns(2), Threads(), threading.Lock()
    inside, most = 0, 0
    both_in = threading.Barrier(2, timeout=WAIT)  # the first two pages meet inside: an overlap is certain
    entered = [threading.Event() for _ in range(8)]

    def page(i: int) -> None:
        nonlocal inside, most
        with turns.turn(patience=WAIT) as holds:
            assert holds
            with lock:
                inside += 1
                most = max(most, inside)
            entered[i].set()
            if i < 2:
                both_in.wait()
            time.sleep(0.005)
            with lock:
                inside -= 1

    for i in range(8):
        threads.start(lambda i=i: page(i))
        if i < 2:  # an event, not a poll of `free`: both leave 5 ms after they meet, a loaded poller missed it
            assert entered[i].wait(WAIT), f"page {i} inside"
    threads.join()
    assert most == 2 and all(e.is_set() for e in entered)


def test_a_page_that_waited_too_long_runs_without_a_slot_and_leaves_none_behind() -> None:
    turns = PageTurns(1)
    assert turns.acquire(timeout=0)
    with turns.turn(patience=0.02) as holds:
        assert not holds
        assert turns.waiting == 0, "a waiter that gave up leaves the queue"
    assert turns.free == 0, "the impatient page did not release the holder's slot"
    turns.release()
    with pytest.raises(RuntimeError, match="not taken"):
        turns.release()
    assert turns.acquire(timeout=0)


def test_a_slot_handed_over_as_the_wait_runs_out_is_kept(monkeypatch) -> None:
    turns = PageTurns(1)

    class LateEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:  # the slot arrives just after the timeout
            turns.release()
            return False

    monkeypatch.setattr(turns_module, "threading", SimpleNamespace(Lock=threading.Lock, Event=LateEvent))
    assert turns.acquire(timeout=0)
    assert turns.acquire(timeout=0.01), "the waiter was handed the slot: it holds it"
    assert (turns.free, turns.waiting) == (0, 0)
    turns.release()
    assert turns.free == 1


def test_a_page_that_raises_gives_its_slot_back() -> None:
    turns = PageTurns(1)
    with pytest.raises(KeyError), turns.turn(patience=WAIT):
        raise KeyError("a page's bug")
    assert turns.free == 1


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PageTurns(0)


def test_the_app_gives_every_turn_back_and_forgets_the_ticket_after_a_run() -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for page in ("label", "train", "class_board", "home"):
        at.switch_page(f"app_pages/{page}.py")
        at.run()
        assert not at.exception
        turns = admission.page_turns()
        assert (turns.free, turns.waiting) == (turns.slots, 0), f"a slot is still taken after {page}"
        assert "_page_turn_ticket" not in at.session_state, "a finished run keeps no place in line"


@pytest.mark.parametrize("value", ["", "zero", "0", "-3"])
def test_a_bad_slot_setting_falls_back_to_the_default(monkeypatch, value: str) -> None:
    monkeypatch.setenv("BILINEAR_LAB_PAGE_SLOTS", value)
    admission.page_turns.clear()
    try:
        assert admission.page_turns().slots == admission.PAGE_SLOTS
    finally:
        admission.page_turns.clear()
