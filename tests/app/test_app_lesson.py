"""Lesson mode, driven headless (AppTest): predict, reveal, see the result, and the room's tally.

Every AppTest is a session of its own while the ClassRoom (st.cache_resource) is the server's, so a vote
cast in one AppTest shows on the class board of the next, as between the students of one class. The room
is reset around every test.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.checkpoint import load_checkpoint
from core.eigen import decompose
from core.findings import decay_row
from core.grid import grid_path
from core.lesson import BY_ID, STEPS, balance_question, weight_decay_question
from server.room import voter_key
from tests.app.test_app import assert_clean, open_page
from tests.app.test_app_board import BOARD, PASSCODE, has, unlocked_board
from tests.app.test_app_links import open_link, warnings
from ui import board, resources

EIGEN = "app_pages/eigenvectors.py"


pytestmark = pytest.mark.usefixtures("fresh_room")  # tests/conftest.py


def texts(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "success", "subheader")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def in_lesson(page: str) -> AppTest:
    """A student on `page` who has just switched lesson mode on in the sidebar."""
    at = open_page(page)
    at.toggle(key="lesson").set_value(True).run()
    assert_clean(at)
    return at


def predict(at: AppTest, step: str, choice: int) -> AppTest:
    at.radio(key=f"lesson_choice_{step}").set_value(choice).run()
    at.button(key=f"lesson_reveal_{step}").click().run()
    assert_clean(at)
    return at


def grid_question(threshold: float = 0.4):
    """The Eigenvectors step's question at a grid threshold, from the shipped checkpoints."""
    rows = []
    for weight_decay in (0.0, 1.0):
        model, config, history = load_checkpoint(grid_path(threshold, weight_decay).read_bytes())
        target = resources.mnist().train_x[config.target_index]
        aug, free = decompose(model, "true_minus_false"), decompose(model, "true_minus_false", "bias_free")
        rows.append(decay_row(aug, free, target, weight_decay, history[-1].val_acc))
    return weight_decay_question(rows, threshold)


def eigen_answer() -> int:
    """The right answer of the Eigenvectors step at the default grid threshold, from the shipped grid."""
    return grid_question().answer


def test_a_page_hides_its_result_until_the_prediction_is_revealed():
    at = in_lesson(EIGEN)
    assert at.query_params["lesson"] == "true"
    assert not has(at, "segmented_control", "eig_direction") and not at.image, "no result before Reveal"
    assert at.radio(key="lesson_choice_eigenvectors").value is None, "no prediction is made for the student"
    assert at.button(key="lesson_reveal_eigenvectors").disabled, "Reveal waits for a choice"
    assert at.radio(key="lesson_choice_eigenvectors").label == "Your prediction"
    assert any("Lesson: 0 of 4 steps revealed" in c.value for c in at.sidebar.caption)
    assert any(d.label == "Download it (.safetensors)" for d in at.sidebar.get("download_button")), "the sidebar draws"

    right = eigen_answer()
    wrong = (right + 1) % len(BY_ID["eigenvectors"].choices)
    at.radio(key="lesson_choice_eigenvectors").set_value(wrong).run()
    assert not at.button(key="lesson_reveal_eigenvectors").disabled
    assert not at.image, "choosing is not revealing"
    at.button(key="lesson_reveal_eigenvectors").click().run()
    assert_clean(at)

    assert has(at, "segmented_control", "eig_direction") and at.image, "the page's live result"
    shown = texts(at)
    explanation = grid_question().explanation
    assert " ".join(explanation) in shown, "the two computed sentences"
    assert "Not this time" in shown and BY_ID["eigenvectors"].choices[right] in shown
    assert at.query_params["picked"] == f"eigenvectors-{wrong}", "progress in the URL"
    assert any("Lesson: 1 of 4 steps revealed" in c.value for c in at.sidebar.caption)
    (vote,) = board.classroom().state().votes
    assert (vote.step, vote.choice, vote.right) == ("eigenvectors", wrong, right)
    assert vote.voter == voter_key(at.session_state["_session_token"]), "keyed by a hash of the session's token"


def test_every_step_gates_its_page_and_a_right_prediction_says_so():
    for step in STEPS:
        at = in_lesson(step.page)
        assert not at.metric and not at.image, f"{step.id}: no result before Reveal"
        assert has(at, "radio", f"lesson_choice_{step.id}")
        predict(at, step.id, 0)
        assert at.metric or at.image, f"{step.id}: the result after Reveal"
        (vote,) = [v for v in board.classroom().state().votes if v.step == step.id]
        verdict = "**Right**" if vote.right == 0 else "**Not this time**"
        assert any(verdict in m.value for m in at.markdown), step.id
    tensor = next(v for v in board.classroom().state().votes if v.step == "tensor")
    assert tensor.right == 0, "the shipped model's form equals its logits up to rounding"


def test_no_lesson_mode_no_question():
    at = open_page(EIGEN)
    assert not has(at, "radio", "lesson_choice_eigenvectors") and at.image
    assert "lesson" not in at.query_params and "picked" not in at.query_params


def test_progress_survives_a_reload_without_voting_twice():
    at = predict(in_lesson(EIGEN), "eigenvectors", 1)
    query = dict(at.query_params)
    assert query["picked"] == "eigenvectors-1"
    reloaded = open_link(query, EIGEN)
    assert_clean(reloaded)
    assert not has(reloaded, "radio", "lesson_choice_eigenvectors") and reloaded.image, "still revealed"
    assert any(f"You predicted **{BY_ID['eigenvectors'].choices[1]}" in m.value for m in reloaded.markdown)
    assert len(board.classroom().state().votes) == 1, "a reload does not vote again"

    reloaded.switch_page("app_pages/label.py").run()  # the next step still asks
    assert has(reloaded, "radio", "lesson_choice_label")
    reloaded.button(key="lesson_start_over").click().run()
    assert reloaded.session_state["_lesson_progress"] == () and "picked" not in reloaded.query_params


def test_reloading_and_revealing_again_adds_no_vote():
    """Issue 25: one tab reloading and revealing five times counted five predictions."""
    at = predict(in_lesson(EIGEN), "eigenvectors", 1)
    for choice in (0, 2, 1, 0, 2):
        reloaded = open_link(dict(at.query_params), EIGEN)  # a reload: a new session, the link's picked=
        reloaded.button(key="lesson_start_over").click().run()
        at = predict(reloaded, "eigenvectors", choice)
        assert at.query_params["picked"] == f"eigenvectors-{choice}", "the new prediction is the tab's own"
    assert len(board.classroom().state().votes) == 1, "one vote per step per student"
    fresh = predict(in_lesson(EIGEN), "eigenvectors", 0)  # a classmate, with no such link
    assert_clean(fresh)
    assert len(board.classroom().state().votes) == 2, "another student still counts"


@pytest.mark.parametrize("picked", ["eigenvectors-9", "sideways-1", "eigenvectors", "label-1.label-x"])
def test_a_bad_progress_link_is_ignored_with_a_notice(picked):
    at = open_link({"lesson": "true", "picked": picked}, EIGEN)
    assert not at.exception, [e.value for e in at.exception]
    assert any("picked=" in w for w in warnings(at))
    assert has(at, "radio", "lesson_choice_eigenvectors"), "nothing counts as revealed"


def test_the_board_tallies_the_room_and_shows_answers_only_when_the_teacher_does(monkeypatch):
    right = eigen_answer()
    for choice in (right, right, (right + 1) % 3):  # three students
        predict(in_lesson(EIGEN), "eigenvectors", choice)

    student = open_page(BOARD)
    assert_clean(student)
    shown = texts(student)
    assert f"3 prediction(s); the most common: “{BY_ID['eigenvectors'].choices[right]}” (2 of 3)" in shown
    assert "Right answer" not in shown
    assert "Nobody has revealed this step yet." in shown, "the other steps"
    tally_charts = [c for c in student.get("vega_lite_chart") if "predictions for" in c.proto.spec]
    assert len(tally_charts) == 1 and "Right answer" not in tally_charts[0].proto.spec, "its description too"

    monkeypatch.setenv(board.PASSCODE_ENV, PASSCODE)
    teacher = unlocked_board()
    teacher.button(key="teacher_answers").click().run()
    assert_clean(teacher)
    student.run()
    shown = texts(student)
    assert f"Right answer on the students' screens: “{BY_ID['eigenvectors'].choices[right]}” for 3" in shown
    assert "2 of 3 predicted right" in shown
    (chart,) = [c for c in student.get("vega_lite_chart") if "predictions for" in c.proto.spec]
    assert "Right answer on the students' screens" in chart.proto.spec, "the chart's description names its second bar"

    teacher.button(key="teacher_clear_votes").click().run()
    assert board.classroom().state().votes == ()
    student.run()
    assert "Nobody has revealed this step yet." in texts(student) and "3 prediction(s)" not in texts(student)
    assert not has(student, "button", "teacher_clear_votes"), "students have no such control"


def test_the_label_steps_verdict_follows_the_target_and_threshold_on_screen():
    at = predict(in_lesson("app_pages/label.py"), "label", 2)
    assert at.slider(key="threshold") and at.metric, "the Label page's result"
    for target in (6, 7):  # image #7 (a 3) is balanced at τ = 0.50, #6 (a 1) at τ = 0.40
        at.number_input(key="target_index").set_value(target).run()
        at.slider(key="threshold").set_value(0.3).run()
        assert_clean(at)
        sims = resources.similarities(target)
        expected = balance_question(sims.train, True, 0.3, target, int(resources.mnist().train_y[target]))
        shown = texts(at)
        assert " ".join(expected.explanation) in shown, target
        assert ("**Right**" in shown) == (expected.answer == 2), target
        assert "your slider's τ = 0.30" in shown
    assert len(board.classroom().state().votes) == 1, "changing the settings afterwards does not vote again"
