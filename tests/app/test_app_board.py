"""The class board and the teacher's controls, driven headless (AppTest).

Every AppTest is a session of its own, and st.cache_resource (the registry, the slots, the room) is shared
by all of them, as by the students of one class on one server: a model trained in one AppTest is "trained
by another student" for the next. The room is reset around every test.
"""

from __future__ import annotations

import re
import time

import pytest
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from core import store as store_module
from core.board import PRECOMPUTED, nickname
from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import Config
from core.eigen import decompose, top_eigenvector
from core.findings import verdict_view
from core.grid import grid_config, grid_path, grid_points
from core.identity import TrainedModel, config_id
from tests.app.test_app import APP, HOME, SMALL_RUN, assert_clean, badge_caption, open_page, press_train, set_training
from tests.app.test_app_alt_text import check as check_alt_texts
from ui import board, resources

BOARD = "app_pages/class_board.py"
SEED = 1207  # a seed no other test trains: this module's run is a real training
PASSCODE = "heron-7-lantern"


pytestmark = pytest.mark.usefixtures("fresh_room")  # tests/conftest.py


@pytest.fixture(scope="module")
def classmate():
    """A model another student trained on the Train page: (the model, that student's session token)."""
    at = open_page("app_pages/train.py")
    set_training(at, **SMALL_RUN, seed=SEED)
    press_train(at)
    assert_clean(at)
    trained = at.session_state["active"]
    assert (trained.origin, trained.config) == ("trained", Config(**SMALL_RUN, seed=SEED))
    return trained, at.session_state["_session_token"]


def has(at: AppTest, kind: str, key: str) -> bool:
    """Whether the page shows a widget of this kind with this key (AppTest's lookup raises when not)."""
    return any(getattr(element, "key", None) == key for element in getattr(at, kind))


def table_of(at: AppTest):
    return at.dataframe[0].value


def row_of(at: AppTest, model_id: str):
    table = table_of(at)
    found = table[table["model"] == model_id]
    assert len(found) == 1, f"{model_id} is on the board once"
    return found.iloc[0]


def texts(at: AppTest) -> str:
    """Everything the page says in text elements."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def unlocked_board() -> AppTest:
    at = open_page(BOARD)
    at.text_input(key=board.PASSCODE_WIDGET).input(PASSCODE)
    at.button(key="teacher_unlock").click().run()
    assert_clean(at)
    assert has(at, "button", "teacher_pin"), "the right passcode unlocks the controls"
    return at


def test_the_board_lists_the_grid_and_a_model_trained_in_another_session(classmate):
    trained, token = classmate
    at = open_page(BOARD)
    assert_clean(at)
    row = row_of(at, trained.model_id)
    assert row["who"] == nickname(token) and token not in table_of(at).to_string()
    assert row["when"].endswith(" UTC"), "a clock time (no browser in AppTest: UTC)"
    assert (row["target"], row["threshold τ"], row["weight decay"], row["noise"]) == (6, 0.4, 1.0, 0.1)
    assert (row["epochs"], row["data (train / test)"]) == ("2", "4,096 / 1,000")
    assert row["val acc"] == pytest.approx(trained.history[-1].val_acc)
    target = resources.mnist().train_x[trained.config.target_index]
    free = decompose(trained.model, "true_minus_false", "bias_free")
    exact = top_eigenvector(free, target).cos
    assert row["|cos|"] == pytest.approx(exact, abs=1e-9), "|cos| of the bias-free True − False top eigenvector"
    values = free.eigenvalues
    assert row["top share of Σλ²"] == pytest.approx(float(values.max() ** 2 / (values**2).sum()), abs=1e-9)

    for t, wd in grid_points():  # the backdrop: all 15, each with its bias-free |cos|
        grid_row = row_of(at, config_id(grid_config(t, wd)))
        assert grid_row["who"] == PRECOMPUTED and grid_row["when"] == "before class"
        model, _, _ = load_checkpoint(grid_path(t, wd).read_bytes())
        grid_cos = top_eigenvector(decompose(model, "true_minus_false", "bias_free"), target).cos
        assert grid_row["|cos|"] == pytest.approx(grid_cos, abs=1e-6)
    assert list(table_of(at)["model"]).index(trained.model_id) < list(table_of(at)["model"]).index(
        config_id(grid_config(0.3, 0.0))
    ), "the class's models first, then the backdrop"

    (scatter,) = at.get("vega_lite_chart")
    assert '"weight decay"' in scatter.proto.spec and '"who"' in scatter.proto.spec, "tooltips say whose"
    captions = [c for image in at.image for c in image.captions]
    assert f"{nickname(token)} · " in " ".join(captions) and f"|cos| {exact:.2f}" in " ".join(captions)
    closed = check_alt_texts(at, "class board")  # the class's models (other tests' trainings count too)
    at.session_state["board_backdrop"] = True
    at.run()
    opened = check_alt_texts(at, "class board")
    assert opened == closed + 15 and opened >= 16, (
        "a thumbnail per model, each with its alt text; the backdrop's 15 are sent only once its expander is opened"
    )


def test_the_board_shows_how_the_target_appeared_in_a_classmates_model(classmate):
    trained, token = classmate
    direction, view = verdict_view()
    moments = [s for s in trained.snapshots if (s.direction, s.view) == (direction, view) and s.thumbnail]
    assert len(moments) >= 2, "a run on the Train page keeps snapshots with thumbnails"
    at = open_page(BOARD)

    def strip_captions() -> list[str]:
        return [c for image in at.image for c in image.captions if "→" in c]

    assert strip_captions() == [], "the strips are sent only once their expander is opened"
    at.session_state["board_strips"] = True
    at.run()
    assert_clean(at)
    mine = [c for c in strip_captions() if c.startswith(f"{nickname(token)} · ")]
    assert len(mine) == 1, "one strip for the classmate's model"
    shown = [float(x) for x in mine[0].rsplit("|cos| ", 1)[1].split(" → ")]
    assert shown[0] == pytest.approx(moments[0].cos, abs=0.005) and shown[-1] == pytest.approx(
        moments[-1].cos, abs=0.005
    ), "from the first snapshot to the last, as the model recorded them"
    assert 2 <= len(shown) <= board.STRIP_LENGTH
    check_alt_texts(at, "class board with strips")


def test_use_this_model_makes_it_the_students_active_model(classmate):
    trained, _ = classmate
    at = open_page(BOARD)
    assert at.session_state["active"].origin == "pretrained"
    at.button(key=f"board_use_{trained.model_id}").click().run()
    assert_clean(at)
    assert at.session_state["active"] is trained, "the server's model, shared, not a copy"
    assert f"The model {nickname(classmate[1])} trained is now your active model" in at.success[0].value
    assert "seed 1207" in badge_caption(at)
    assert row_of(at, trained.model_id)["status"] == "yours"
    assert not has(at, "button", f"board_use_{trained.model_id}"), "no button for the model already in use"
    at.switch_page("app_pages/eigenvectors.py").run()
    assert_clean(at)
    assert at.session_state["active"] is trained and at.query_params["model"] == trained.model_id

    grid = config_id(grid_config(0.3, 0.0))  # a precomputed one works the same way
    at.switch_page(BOARD)
    at.session_state["board_backdrop"] = True  # the precomputed models' buttons are in the backdrop's expander
    at.run()
    at.button(key=f"board_use_{grid}").click().run()
    assert (at.session_state["active"].model_id, at.session_state["active"].origin) == (grid, "grid")


def test_a_new_model_changes_the_boards_revision_so_every_board_redraws(classmate):
    """The boards' fragment (ui.board.watch) reruns a page when `revision()` differs from what it drew:
    a model finished anywhere changes it at once; nothing else does."""
    at = open_page(BOARD)
    drawn = board.snapshot().key
    assert board.revision() == drawn, "nothing happened: no redraw"
    at.run()
    assert board.revision() == drawn, "drawing a board changes nothing"
    trained, _ = classmate
    other = trained.config.replace(seed=SEED + 1)
    arrived = resources.registry().add(
        TrainedModel(trained.model, other, trained.history, "trained", trained_by="someone")
    )
    assert board.revision() != drawn, "a new model: every board's next wake redraws it"
    at.run()
    assert row_of(at, arrived.model_id)["who"] == nickname("someone")
    assert board.REFRESH_SECONDS <= 3, "a board wakes often enough to show it within 5 s"


def wake(drawn: tuple[int, int, int], missing: int = 0, drawn_at: float = 0.0) -> None:
    """One wake of a board's fragment (AppTest.from_function): ui.board.watch with the key a board drew.

    AppTest fires no run_every timer, so the test runs the fragment itself, in a real script run; "runs"
    counts this script's runs, and a second run means watch asked for the page's rerun (on the real page
    that rerun draws a new snapshot, whose key then matches: the script stands in for it by not waking again).
    """
    import streamlit as st

    from ui import board

    runs = st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    if runs == 1:
        board.watch(drawn, missing, drawn_at)


def test_a_boards_fragment_redraws_the_page_when_a_model_arrives_after_it_was_drawn(classmate):
    """The first render draws the board; a model arrives in the server's registry; the fragment's next wake
    (run here by hand: AppTest fires no run_every timer) reruns the page, and the rerun shows the new row.
    A wake with nothing new reruns nothing."""
    at = open_page(BOARD)
    drawn = board.snapshot().key
    quiet = AppTest.from_function(wake, args=(drawn,), default_timeout=60).run()
    assert not quiet.exception, [e.value for e in quiet.exception]
    assert quiet.session_state["runs"] == 1, "nothing arrived: the wake redraws nothing"
    assert any("Live: this board looks for new models" in c.value for c in quiet.caption)

    trained, _ = classmate
    arrived = resources.registry().add(
        TrainedModel(trained.model, trained.config.replace(seed=SEED + 3), trained.history, "trained")
    )
    assert arrived.model_id not in set(table_of(at)["model"])
    woken = AppTest.from_function(wake, args=(drawn,), default_timeout=60).run()
    assert not woken.exception, [e.value for e in woken.exception]
    assert woken.session_state["runs"] == 2, "a model arrived since the board was drawn: the wake reruns the page"
    at.run()  # the rerun it asked for
    assert_clean(at)
    assert arrived.model_id in set(table_of(at)["model"])
    settled = AppTest.from_function(wake, args=(board.snapshot().key,), default_timeout=60).run()
    assert settled.session_state["runs"] == 1, "once redrawn, the next wakes are quiet again"


def test_a_model_the_room_lists_but_the_store_cannot_give_yet_is_named_and_looked_for_again(classmate, monkeypatch):
    trained, _ = classmate
    late = TrainedModel(trained.model, trained.config.replace(seed=SEED + 5), trained.history, "trained")
    # another replica listed it in the room; its write to the shared store has not landed (yet)
    assert resources.room().record_model(late.model_id, "trained", late.config.to_dict(), "calm heron")
    at = open_page(BOARD)
    assert "Models the class trained that the model store cannot give yet: 1 " in texts(at)
    assert late.model_id not in set(table_of(at)["model"])
    shown = board.snapshot()
    assert shown.missing == 1
    early = AppTest.from_function(wake, args=(shown.key, shown.missing, time.time()), default_timeout=60).run()
    assert early.session_state["runs"] == 1, "not before MISSING_RETRY_SECONDS"

    monkeypatch.setattr(store_module, "MISS_SECONDS", 0.0)  # the board's retry comes after the remembered miss
    data = save_checkpoint(late.model, late.config, list(late.history))
    resources.model_store().put(late.model_id, data)  # the other replica's write landed: no revision changed
    assert board.revision() == shown.key
    due = time.time() - board.MISSING_RETRY_SECONDS
    woken = AppTest.from_function(wake, args=(shown.key, shown.missing, due), default_timeout=60).run()
    assert woken.session_state["runs"] == 2, "the board asks again: the page reruns"
    at.run()
    assert_clean(at)
    assert late.model_id in set(table_of(at)["model"]) and "model store cannot give yet" not in texts(at)

    gone = trained.config.replace(seed=SEED + 6)  # listed, never in the store, and cleared by the teacher
    assert resources.room().record_model(config_id(gone), "trained", gone.to_dict(), "calm heron")
    assert board.snapshot().missing == 1
    resources.room().clear([config_id(gone)])
    assert board.snapshot().missing == 0, "a cleared model is not looked for"


def test_each_models_top_eigenvector_is_computed_once_for_the_server(monkeypatch, classmate):
    calls = []
    real = resources.decompose
    monkeypatch.setattr(resources, "decompose", lambda model, *args: calls.append(args) or real(model, *args))
    resources.eigen_cache().clear()
    resources.board_top.clear()
    for _ in range(2):  # two students, each opening the board and rerunning it
        at = open_page(BOARD)
        at.run()
        assert_clean(at)
    n_models = len(table_of(at))
    # one decomposition per model for the board, in the verdict's view; Home's punchline (ui.punchline) adds the
    # seed model's two views at most once, through the pages' cache
    board_calls = calls.count(verdict_view())
    others = [call for call in calls if call != verdict_view()]
    assert (
        n_models >= 16
        and n_models <= board_calls <= n_models + 1
        and others in ([], [("true_minus_false", "augmented")])
    )


def test_without_a_passcode_the_controls_are_hidden_and_the_page_says_how_to_enable_them():
    at = open_page(BOARD)
    assert_clean(at)
    assert not at.text_input and not has(at, "button", "teacher_pin")
    assert any("teacher_passcode" in i.value and board.PASSCODE_ENV in i.value for i in at.info)

    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["teacher_passcode"] = PASSCODE  # the Community Cloud way: a root-level secret
    at.run().switch_page(BOARD).run()
    assert has(at, "text_input", board.PASSCODE_WIDGET), "a passcode in the secrets enables the controls"
    assert PASSCODE not in texts(at)


def test_a_wrong_passcode_waits_says_so_and_unlocks_nothing(monkeypatch):
    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    at = open_page(BOARD)
    assert at.text_input(key=board.PASSCODE_WIDGET).proto.type == TextInputProto.PASSWORD, "dots, not the text"
    start = time.perf_counter()
    at.text_input(key=board.PASSCODE_WIDGET).input("heron-7-lanterm").run()
    assert time.perf_counter() - start >= board.WRONG_PASSCODE_DELAY, "a wrong guess waits"
    assert not at.exception, [e.value for e in at.exception]
    assert "That passcode is wrong" in at.error[0].value
    assert not has(at, "button", "teacher_pin") and "_teacher" not in at.session_state
    assert at.text_input(key=board.PASSCODE_WIDGET).value == "", "the guess does not stay in the session"
    assert "heron-7-lanter" not in texts(at) and PASSCODE not in str(at.query_params)


def test_guessing_locks_the_tab_out_with_the_time_left_and_compares_no_passcode_meanwhile(monkeypatch):
    """Issue 25: one tab made 60 guesses in 16 s; now the fifth wrong one in a minute locks it out."""
    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    at = open_page(BOARD)
    for guess in range(5):
        at.text_input(key=board.PASSCODE_WIDGET).input(f"guess-{guess}").run()
    assert (
        "Too many wrong passcodes on this server" in at.error[0].value
        and " more (guessing is slow" in at.error[0].value
    )
    assert any(re.search(r"accept no passcode for 1 min \d+ s more", w.value) for w in at.warning), "time left"
    at.text_input(key=board.PASSCODE_WIDGET).input(PASSCODE).run()  # even the right one, during the lockout
    assert not has(at, "button", "teacher_pin") and "_teacher" not in at.session_state
    assert "Too many wrong passcodes" in at.error[0].value
    other = open_page(BOARD)  # another tab may still try (the server-wide limit is 30 a minute)
    other.text_input(key=board.PASSCODE_WIDGET).input(PASSCODE)
    other.button(key="teacher_unlock").click().run()
    assert has(other, "button", "teacher_pin")


def test_the_teacher_pins_unpins_clears_and_shows_the_answers(monkeypatch, classmate):
    trained, token = classmate
    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    teacher = unlocked_board()
    assert "Teacher controls unlocked" in teacher.success[0].value
    assert PASSCODE not in texts(teacher) and PASSCODE not in str(teacher.query_params), "nowhere on the page"
    assert board.PASSCODE_WIDGET not in teacher.session_state or not teacher.session_state[board.PASSCODE_WIDGET]

    teacher.selectbox(key=board.PIN_CHOICE).set_value(trained.model_id)
    teacher.button(key="teacher_pin").click().run()
    assert_clean(teacher)
    assert board.classroom().state().pinned == trained.model_id
    assert row_of(teacher, trained.model_id)["status"] == "pinned"

    student = open_page(HOME)  # another student's Home page offers it
    assert_clean(student)
    assert any(f"pinned the model {nickname(token)} trained" in m.value for m in student.markdown)
    student.button(key="home_use_pinned").click().run()
    assert_clean(student)
    assert student.session_state["active"] is trained
    assert not has(student, "button", "home_use_pinned")
    assert any("It is your active model" in c.value for c in student.caption)

    teacher.button(key="teacher_unpin").click().run()
    assert board.classroom().state().pinned is None
    assert not has(open_page(HOME), "button", "home_use_pinned"), "unpinned: Home offers nothing"

    teacher.button(key="teacher_clear").click().run()
    assert_clean(teacher)
    said = [m for i in teacher.info if (m := re.match(r"Cleared (\d+) (models?) from the board;", i.value))]
    assert said and (said[0][1] == "1") == (said[0][2] == "model"), "the count agrees with its noun"
    assert trained.model_id not in set(table_of(teacher)["model"]), "cleared from the board"
    assert (table_of(teacher)["who"] == PRECOMPUTED).sum() == 15, "the backdrop stays"
    student.run()
    assert student.session_state["active"] is trained, "nobody loses the model they use"
    later = resources.registry().add(
        TrainedModel(trained.model, trained.config.replace(seed=SEED + 2), trained.history, "trained")
    )
    teacher.run()
    assert later.model_id in set(table_of(teacher)["model"]), "a model trained after the clear shows"

    room = board.classroom()
    assert not room.answers_visible
    teacher.button(key="teacher_answers").click().run()
    assert room.answers_visible and teacher.button(key="teacher_answers").label == "Hide the lesson's answers"
    teacher.button(key="teacher_answers").click().run()
    assert not room.answers_visible

    teacher.button(key="teacher_lock").click().run()
    assert not has(teacher, "button", "teacher_pin") and has(teacher, "text_input", board.PASSCODE_WIDGET)


def forge(model_id: str) -> None:
    """A script that calls the teacher's callbacks without having unlocked them (AppTest.from_function)."""
    import streamlit as st

    from ui import board

    st.session_state["_teacher"] = "an unlocked look-alike"
    board.pin(model_id)
    board.clear()
    board.show_answers(True)


def test_a_student_without_the_passcode_cannot_pin_or_clear(monkeypatch, classmate):
    trained, _ = classmate
    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    before = board.classroom().state()

    student = open_page(BOARD)
    student.session_state["_teacher"] = True  # forged session state
    student.session_state[board.PIN_CHOICE] = trained.model_id
    student.run()
    assert_clean(student)
    assert not has(student, "button", "teacher_pin") and not has(student, "button", "teacher_clear")

    forged = AppTest.from_function(forge, args=(trained.model_id,), default_timeout=60).run()
    assert not forged.exception, [e.value for e in forged.exception]
    assert board.classroom().state() == before, "nothing pinned, cleared or shown"
    notices = [message for _, message in forged.session_state["notices"]]
    assert len(notices) == 3 and all(message.startswith("Only the teacher can") for message in notices)

    teacher = unlocked_board()
    monkeypatch.setenv(board.PASSCODE_ENV, "a-new-passcode")  # changed on the server: unlocked sessions lock
    teacher.run()
    assert not has(teacher, "button", "teacher_pin") and has(teacher, "text_input", board.PASSCODE_WIDGET)


def test_the_teachers_cap_is_kept_in_the_room_and_refuses_a_run_past_it_in_another_session(monkeypatch):
    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    teacher = unlocked_board()
    default = resources.default_max_run_seconds() / 60
    assert cap_input(teacher).value == default, "no cap set: the server's default"
    cap_input(teacher).set_value(0.5).run()
    assert_clean(teacher)
    assert board.classroom().state().max_run_seconds == 30.0, "in the room, which every replica reads"
    assert resources.training_pool().max_seconds == 30.0
    assert any("on every server of the class" in e.value for e in teacher.success), "the board says where it holds"

    student = open_page("app_pages/train.py")
    set_training(student, n_train=60000, n_test=10000, batch_size=16, epochs=20)  # minutes on any server
    assert any("can't be trained" in e.value and "30 s" in e.value for e in student.error), [
        e.value for e in student.error
    ]
    assert student.button(key="train_button").disabled

    board.classroom().set_max_run_seconds(300.0)  # as another replica's board would
    teacher.run()
    assert cap_input(teacher).value == 5.0, "the board shows the room's cap"


def cap_input(at: AppTest):
    """The board's cap widget (its key names the cap it shows: ui.board.cap_widget)."""
    (widget,) = [n for n in at.number_input if n.key and n.key.startswith(board.CAP_WIDGET)]
    return widget


def test_a_student_cannot_change_the_cap(monkeypatch):
    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    forged = AppTest.from_function(forge_cap, default_timeout=60).run()
    assert not forged.exception, [e.value for e in forged.exception]
    assert board.classroom().state().max_run_seconds is None, "the room's cap is unchanged"


def forge_cap() -> None:
    """A session that never unlocked calls the cap's callback with a value of its own."""
    import streamlit as st

    from ui import board

    key, _ = board.cap_widget()
    st.session_state[key] = 600.0
    board.set_cap(key)
