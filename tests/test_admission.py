"""Page scripts take turns (ui.admission.PageTurns): a bounded number at once, the rest first come, first served."""

from __future__ import annotations

import threading
import time

import pytest

from ui.admission import PageTurns

WAIT = 10.0  # seconds a test waits for a thread it expects to move; never reached when the code is right


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def test_waiters_are_served_in_the_order_they_arrived() -> None:
    turns = PageTurns(1)
    assert turns.acquire(timeout=0)
    served: list[int] = []
    threads = []
    for i in range(5):  # each queues only once the previous one is waiting: a known arrival order
        thread = threading.Thread(target=lambda i=i: (turns.acquire(WAIT), served.append(i), turns.release()))
        thread.start()
        threads.append(thread)
        until(lambda i=i: turns.waiting == i + 1, f"waiter {i} to queue")
    assert served == []
    turns.release()
    for thread in threads:
        thread.join(WAIT)
    assert served == [0, 1, 2, 3, 4]
    assert turns.acquire(timeout=0), "every slot is free again"


def test_a_newcomer_does_not_overtake_a_waiter() -> None:
    turns = PageTurns(1)
    assert turns.acquire(timeout=0)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: turns.acquire(WAIT) and got.set())
    waiter.start()
    until(lambda: turns.waiting == 1, "the waiter to queue")
    turns.release()  # the slot goes to the waiter, not back to the pool
    assert not turns.acquire(timeout=0.05)
    waiter.join(WAIT)
    assert got.is_set()


def test_at_most_slots_run_at_once() -> None:
    turns, lock = PageTurns(2), threading.Lock()
    inside = most = 0

    def page() -> None:
        nonlocal inside, most
        with turns.turn(patience=WAIT) as holds:
            assert holds
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=page) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert most == 2


def test_a_page_that_waited_too_long_runs_without_a_slot_and_leaves_none_behind() -> None:
    turns = PageTurns(1)
    assert turns.acquire(timeout=0)
    with turns.turn(patience=0.02) as holds:
        assert not holds
        assert turns.waiting == 0, "a waiter that gave up leaves the queue"
    turns.release()  # the holder's own release: the impatient page did not release it for them
    with pytest.raises(RuntimeError, match="not taken"):
        turns.release()
    assert turns.acquire(timeout=0)


def test_a_page_that_raises_gives_its_slot_back() -> None:
    turns = PageTurns(1)
    with pytest.raises(KeyError), turns.turn(patience=WAIT):
        raise KeyError("a page's bug")
    assert turns.acquire(timeout=0)


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PageTurns(0)
