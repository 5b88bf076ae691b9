"""One room across replicas and restarts, in a real browser (issue 26).

Two app replicas share a throwaway PostgreSQL 15 cluster (the room's state, server.room) and moto's S3
server (the models, core.store), as a department would run them behind sticky sessions:
- the same settings pressed on A and then on B train once: B follows A's claim, epoch by epoch, and takes
  A's model from the bucket;
- that model appears on both replicas' boards by itself, with the same trainer and the same time;
- a pin, the answers' switch and a clear made on A reach B's pages by themselves, and so does the teacher's
  cap on a run: B's Train page refuses a link past the cap set on A's board;
- a replica whose store and database cannot be reached says so on the page and still works, fast.
Then one server with the defaults (a SQLite file beside a local model store) keeps its room across a restart.

The services start once for the module (harness/services.py); the servers bind the ports PORTS names.
"""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest
from playwright.sync_api import expect

from core.config import Config
from core.identity import config_id
from harness.browser import (
    NO_THROTTLING_ARGS,
    ROOT,
    error_texts,
    launch_chromium,
    require_chromium,
    streamlit_server,
    wait_idle,
)
from harness.services import BUCKET, port_from, postgres, postgres_available, require, s3
from server.room import Room

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "artifacts" / "replicas"
WAIT = 60_000  # ms for a page on a loaded 2-core machine
TRAIN_WAIT = 180_000
BOUND = 20.0  # s for a change on one replica to show on the other (the goal: a few seconds)
MAIN = '[data-testid="stMain"]'
PASSCODE = "replica-teacher"
# ports the kernel picks unless the environment names them ("8690,8691,8692,8693"): no two runs meet on one
PORTS = [int(p) for p in os.environ.get("BILINEAR_LAB_TEST_APP_PORTS", "").split(",") if p] or [
    port_from("") for _ in range(4)
]
CLOSED_PORT = port_from("BILINEAR_LAB_TEST_CLOSED_PORT")  # nothing listens there
# A training long enough for B to press Train while A's runs (a seed no other test trains).
LONG = {"n_train": 16384, "n_test": 1000, "batch_size": 512, "epochs": 30, "seed": 2626}
LONG_LINK = "/train?slice=true&n_train=16384&n_test=1000&batch=512&epochs=30&seed=2626"
ELSEWHERE = "training on another server of the class"  # ui.models.progress of a job another replica trains
SHORT_LINK = "/train?slice=true&n_train=4096&n_test=1000&batch=512&epochs=2&seed=2627"
OVER_THE_CAP_LINK = "/train?epochs=20&batch=16&seed=2628"  # minutes on any server: past a 30 s cap


def tile(model_id: str) -> str:
    return f"{MAIN} .st-key-board_use_{model_id}"


def caption_of(page, model_id: str) -> str:
    button = page.locator(f".st-key-board_use_{model_id}")
    column = page.locator(f'{MAIN} [data-testid="stColumn"]').filter(has=button)
    return column.locator('[data-testid="stImageCaption"]').inner_text()


def open_board(page, url: str) -> None:
    page.goto(f"{url}/class_board")
    expect(page.locator(MAIN).get_by_text("Live: this board looks for new models")).to_be_visible(timeout=WAIT)
    wait_idle(page)


def assert_clean(page, where: str) -> None:
    assert error_texts(page) == [], where


def unlock(page) -> None:
    field = page.locator(".st-key-teacher_passcode input")
    field.fill(PASSCODE)
    field.press("Enter")
    expect(page.locator(".st-key-teacher_pin")).to_be_visible(timeout=WAIT)
    wait_idle(page)


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    expect.set_options(timeout=WAIT)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, NO_THROTTLING_ARGS)

        def page():
            made = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            made.set_default_timeout(WAIT)  # clicks wait for a page drawn on a loaded machine
            return made

        yield page
        chromium.close()


@pytest.fixture(scope="module")
def replicas(browser):
    """PostgreSQL, moto, and two replicas A and B using both (the second starts while the first migrates)."""
    require("PostgreSQL 15 (Debian's postgresql package)", postgres_available())
    started = time.perf_counter()
    with postgres() as database, s3() as aws:
        services = time.perf_counter() - started
        env = {
            **aws,
            "BILINEAR_LAB_ROOM_URL": database,
            "BILINEAR_LAB_MODEL_STORE": f"s3://{BUCKET}/models",
            "BILINEAR_LAB_TEACHER_PASSCODE": PASSCODE,
        }
        with (
            streamlit_server(ARTIFACTS / "A.log", port=PORTS[0], env=env) as (a, _),
            streamlit_server(ARTIFACTS / "B.log", port=PORTS[1], env=env) as (b, _),
        ):
            print(f"\nPostgreSQL and moto started in {services:.1f} s")
            yield {"A": a, "B": b, "database": database, "aws": aws}


def test_the_same_settings_on_two_replicas_train_once_and_reach_both_boards(replicas, browser):
    a, b = replicas["A"], replicas["B"]
    model_id = config_id(Config(**LONG))
    boards = {"A": browser(), "B": browser()}
    for name, page in boards.items():
        open_board(page, replicas[name])
        assert page.locator(tile(model_id)).count() == 0

    trainer_a, trainer_b = browser(), browser()
    trainer_a.goto(a + LONG_LINK)
    trainer_b.goto(b + LONG_LINK)
    for page in (trainer_a, trainer_b):
        expect(page.locator(".st-key-epochs input")).to_have_value("30")
    trainer_a.locator(".st-key-train_button button").first.click()
    expect(trainer_a.locator(MAIN).get_by_text(re.compile(r"Epoch \d+ / 30"))).to_be_visible(timeout=TRAIN_WAIT)
    trainer_b.locator(".st-key-train_button button").first.click()
    # One replica trains, the other follows its claim epoch by epoch and says so. Usually A trains and B follows;
    # on a loaded machine B's claim can land first (A's page shows its job running just before A claims it).
    following = {name: page.locator(MAIN).get_by_text(ELSEWHERE) for name, page in (("A", trainer_a), ("B", trainer_b))}
    deadline = time.monotonic() + WAIT / 1000
    while not any(f.count() for f in following.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    followers = [name for name, f in following.items() if f.count()]
    assert len(followers) == 1, f"exactly one replica follows the other's training: {followers}"
    (trainer_b if followers == ["B"] else trainer_a).screenshot(path=ARTIFACTS / f"1_{followers[0]}_follows.png")
    for page in (trainer_a, trainer_b):
        expect(page.locator(MAIN).get_by_text("Training finished")).to_be_visible(timeout=TRAIN_WAIT)
        expect(page).to_have_url(re.compile(f"model={model_id}"))
    finished = time.time()

    arrived = {}
    for name, page in boards.items():
        expect(page.locator(tile(model_id))).to_be_visible(timeout=BOUND * 1000)
        arrived[name] = time.time() - finished
        page.screenshot(path=ARTIFACTS / f"2_{name}_board.png")
        assert_clean(page, f"{name}'s board")
    print("\nthe model on each replica's board, seconds after both trainers showed it finished:", arrived)
    captions = {name: caption_of(page, model_id) for name, page in boards.items()}
    assert captions["A"] == captions["B"], "the same trainer and the same training time on both replicas"

    from sqlalchemy import create_engine, text

    engine = create_engine(replicas["database"])
    with engine.connect() as conn:
        claims = conn.execute(text("SELECT replica, state FROM claims WHERE model_id = :m"), {"m": model_id}).all()
        listed = conn.execute(text("SELECT count(*) FROM models WHERE model_id = :m"), {"m": model_id}).scalar()
    engine.dispose()
    assert len(claims) == 1 and claims[0].state == "finished" and listed == 1, (claims, listed)
    for log in ("A", "B"):
        assert "Traceback" not in (ARTIFACTS / f"{log}.log").read_text(), f"{log}'s log has an error"


def test_pin_answers_and_clear_on_one_replica_reach_the_other(replicas, browser):
    a, b = replicas["A"], replicas["B"]
    model_id = config_id(Config(**LONG))
    teacher, board_b, home_b = browser(), browser(), browser()
    open_board(teacher, a)
    open_board(board_b, b)
    home_b.goto(b)
    wait_idle(home_b)
    unlock(teacher)

    teacher.locator(".st-key-teacher_pin button").first.click()  # the newest model of the class: the one trained above
    start = time.time()
    expect(home_b.locator(MAIN).get_by_text(re.compile("Your teacher pinned the model"))).to_be_visible(
        timeout=BOUND * 1000
    )
    pinned = time.time() - start
    expect(home_b.locator(f"{MAIN} .st-key-home_use_pinned")).to_be_visible()
    home_b.screenshot(path=ARTIFACTS / "3_B_home_pinned.png")

    teacher.locator(".st-key-teacher_answers button").first.click()
    start = time.time()
    # in the tally's caption, which stays folded until a vote comes (issue 24): in the page, not necessarily visible
    expect(board_b.locator(MAIN).get_by_text("The teacher has shown the answers")).to_be_attached(timeout=BOUND * 1000)
    answers = time.time() - start

    expect(board_b.locator(tile(model_id))).to_be_visible()
    teacher.locator(".st-key-teacher_clear button").first.click()
    start = time.time()
    expect(board_b.locator(tile(model_id))).to_have_count(0, timeout=BOUND * 1000)
    cleared = time.time() - start
    board_b.screenshot(path=ARTIFACTS / "4_B_board_cleared.png")
    print(f"\nfrom A to B: pin {pinned:.1f} s on Home, answers {answers:.1f} s, clear {cleared:.1f} s on the board")
    for page in (teacher, board_b, home_b):
        assert_clean(page, page.url)


def test_the_teachers_cap_set_on_one_replica_refuses_a_run_on_the_other(replicas, browser):
    teacher, student = browser(), browser()
    open_board(teacher, replicas["A"])
    unlock(teacher)
    cap = teacher.locator('[class*="st-key-teacher_cap_minutes"] input')  # the key names the cap it shows
    cap.fill("0.5")
    cap.press("Enter")
    expect(teacher.locator(MAIN).get_by_text("on every server of the class")).to_be_visible()
    try:
        start = time.time()
        student.goto(replicas["B"] + OVER_THE_CAP_LINK)
        wait_idle(student)
        while "at most 30 s" not in student.locator(MAIN).inner_text() and time.time() - start < BOUND:
            student.reload()  # B reads the room at most once a second
            wait_idle(student)
        refusal = student.locator(f'{MAIN} [data-testid="stAlertContentError"]')
        expect(refusal.filter(has_text=re.compile("can't be trained.*at most 30 s"))).to_be_visible()
        expect(student.locator(".st-key-train_button button").first).to_be_disabled()
        print(f"\nthe cap set on A: B's Train page refused the link {time.time() - start:.1f} s later (loads included)")
        assert [e for e in error_texts(student) if "can't be trained" not in e] == [], "the refusal, nothing else"
    finally:
        Room(replicas["database"], "test").set_max_run_seconds(None)  # the other tests' servers' own default


def test_a_replica_whose_store_and_database_are_unreachable_says_so_and_keeps_working(replicas, browser):
    env = {
        **replicas["aws"],
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{CLOSED_PORT}",  # the bucket's server is gone
        "BILINEAR_LAB_MODEL_STORE": f"s3://{BUCKET}/models",
        "BILINEAR_LAB_ROOM_URL": f"postgresql+psycopg://lab@127.0.0.1:{CLOSED_PORT}/lab",
    }
    with streamlit_server(ARTIFACTS / "down.log", port=PORTS[2], env=env) as (url, _):
        page = browser()
        start = time.perf_counter()
        page.goto(url + SHORT_LINK)
        expect(page.locator(".st-key-epochs input")).to_have_value("2")
        wait_idle(page)
        opened = time.perf_counter() - start
        notices = page.locator(f'{MAIN} [data-testid="stAlertContentWarning"]')
        expect(notices.filter(has_text="The model store")).to_contain_text("cannot be reached")
        expect(notices.filter(has_text="database cannot be reached")).to_contain_text("will not survive a restart")
        page.screenshot(path=ARTIFACTS / "5_down_notices.png")
        epochs = page.locator(".st-key-epochs input")  # each run of the Train page asks the store for the settings
        start = time.perf_counter()
        epochs.fill("3")
        epochs.press("Enter")
        expect(page).to_have_url(re.compile("epochs=3"))
        wait_idle(page)
        changed = time.perf_counter() - start
        page.locator(".st-key-train_button button").first.click()
        expect(page.locator(MAIN).get_by_text("Training finished")).to_be_visible(timeout=TRAIN_WAIT)
        assert_clean(page, "a training with the store and the database down")
        print(f"\nstore and database unreachable: Train page opened in {opened:.1f} s, Epochs set in {changed:.1f} s")
        assert changed < 8, "a page run does not wait on the unreachable store (botocore's retries took 8-11 s)"


def test_one_server_keeps_its_room_across_a_restart_with_the_default_sqlite(browser, tmp_path):
    store = tmp_path / "models"  # local: the room's SQLite file goes beside the models
    env = {"BILINEAR_LAB_ROOM_URL": None, "BILINEAR_LAB_TEACHER_PASSCODE": PASSCODE}
    model_id = config_id(Config(n_train=4096, n_test=1000, batch_size=512, epochs=2, seed=2627))
    with streamlit_server(ARTIFACTS / "sqlite-1.log", port=PORTS[3], env=env, model_store=str(store)) as (url, _):
        page = browser()
        page.goto(url + SHORT_LINK)
        page.locator(".st-key-train_button button").first.click()
        expect(page.locator(MAIN).get_by_text("Training finished")).to_be_visible(timeout=TRAIN_WAIT)
        board = browser()
        open_board(board, url)
        unlock(board)
        board.locator(".st-key-teacher_pin button").first.click()
        expect(board.locator(".st-key-teacher_unpin button").first).to_be_enabled()
        before = caption_of(board, model_id)
    assert (store / "room.sqlite3").exists()
    with streamlit_server(ARTIFACTS / "sqlite-2.log", port=PORTS[3], env=env, model_store=str(store)) as (url, _):
        board = browser()
        open_board(board, url)
        expect(board.locator(tile(model_id))).to_be_visible()
        assert caption_of(board, model_id) == before, "the same trainer and training time after the restart"
        home = browser()
        home.goto(url)
        expect(home.locator(MAIN).get_by_text(re.compile("Your teacher pinned the model"))).to_be_visible()
        board.screenshot(path=ARTIFACTS / "6_board_after_restart.png")
        assert_clean(board, "the board after a restart")
    print(f"\nafter the restart: {before!r}")
