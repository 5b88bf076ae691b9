"""Lesson mode's questions (core.lesson): every right answer and explanation comes from the data it is given."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.eigen import decompose
from core.findings import DecayRow, decay_row
from core.grid import grid_path
from core.labels import Similarities, cosine_similarities
from core.lesson import (
    BALANCE_THRESHOLDS,
    BY_ID,
    STEPS,
    Vote,
    balance_question,
    format_progress,
    k_choice,
    parse_progress,
    record,
    tally,
    tensor_question,
    truncation_question,
    weight_decay_question,
)
from core.truncation import TruncationCurves
from server.classroom import ClassRoom


def similarities(to_target: list[float], to_inverse: list[float] | None = None) -> Similarities:
    target = torch.tensor(to_target, dtype=torch.float64)
    inverse = torch.tensor(to_inverse, dtype=torch.float64) if to_inverse is not None else torch.zeros_like(target)
    return Similarities(target, inverse)


def test_the_balance_answer_is_the_threshold_nearest_half_and_moves_with_the_data():
    # 10 images; at τ = 0.2 / 0.3 / 0.4 / 0.5 / 0.6, 9 / 7 / 5 / 2 / 0 are above it
    sims = similarities([0.25, 0.25, 0.35, 0.35, 0.45, 0.45, 0.45, 0.55, 0.55, 0.1])
    question = balance_question(sims, False, 0.3, 6, 1)
    assert BALANCE_THRESHOLDS[question.answer] == 0.4
    assert "At τ = 0.40, 50.0 % of the training images are labelled true" in question.explanation[0]
    assert "your slider's τ = 0.30 labels 70.0 % true and 30.0 % false" in question.explanation[1]
    assert "training image #6, a handwritten 1" in question.prompt and "or its inverse" not in question.prompt

    shifted = similarities([x + 0.1 for x in sims.to_target.tolist()])
    assert BALANCE_THRESHOLDS[balance_question(shifted, False, 0.3, 6, 1).answer] == 0.5, "the data moved, so did it"

    inverted = similarities([0.25] * 5 + [0.05] * 5, [0.05] * 5 + [0.45] * 5)  # half look like the inverse
    assert BALANCE_THRESHOLDS[balance_question(inverted, False, 0.3, 6, 1).answer] == 0.2
    with_inverse = balance_question(inverted, True, 0.3, 6, 1)
    assert BALANCE_THRESHOLDS[with_inverse.answer] == 0.3 and "or its inverse" in with_inverse.prompt


def test_the_balance_question_on_mnist_follows_the_target_and_the_inverse_toggle(mnist):
    sims = cosine_similarities(mnist.train_x, mnist.train_x[6])
    answers = {inverse: balance_question(sims, inverse, 0.4, 6, 1) for inverse in (True, False)}
    for inverse, question in answers.items():
        labelled = []
        for t in BALANCE_THRESHOLDS:
            true = (sims.to_target > t) | ((sims.to_inverse > t) if inverse else False)
            labelled.append(float(true.double().mean()))
        assert question.answer == int(np.argmin(np.abs(np.array(labelled) - 0.5)))
        assert f"{labelled[question.answer] * 100:.1f} %" in question.explanation[0]


def test_the_tensor_answer_follows_the_measured_error():
    assert [tensor_question(error, 256).answer for error in (3e-14, 1e-9, 5e-3, 0.2)] == [0, 1, 1, 2]
    exact = tensor_question(3e-14, 256)
    assert "3.0e-14" in exact.explanation[0] and "exact" in exact.explanation[0]
    assert "no approximation" not in tensor_question(0.2, 256).explanation[1], "never claims what the number denies"


def decay(weight_decay: float, n_90: int, share: float, cos: float = 0.9) -> DecayRow:
    return DecayRow(weight_decay, cos - 0.1, cos, 0.5, 0.96, share, n_90)


def test_the_weight_decay_answer_comes_from_the_spectra_of_the_two_models():
    for rows, answer in (
        ([decay(0.0, 14, 0.47), decay(1.0, 2, 0.88)], 0),
        ([decay(0.0, 3, 0.80), decay(1.0, 3, 0.82)], 1),
        ([decay(0.0, 2, 0.90), decay(1.0, 6, 0.60)], 2),
        ([decay(0.0, 3, 0.60), decay(1.0, 3, 0.80), decay(0.5, 9, 0.1)], 0),  # the same n: the share decides
    ):
        question = weight_decay_question(rows, 0.4)
        assert question.answer == answer, rows
        without, paper = rows[0], rows[1]
        assert f"{without.top_share:.0%} of Σλ² and {without.n_90} eigenvectors" in question.explanation[0]
        assert f"{paper.top_share:.0%} and {paper.n_90}" in question.explanation[0]
        assert "they need not be the model on screen" in question.prompt and "τ = 0.40" in question.about
    assert weight_decay_question([decay(0.0, 14, 0.47), decay(0.5, 2, 0.88)], 0.4) is None, "no weight decay 1 row"


def test_the_weight_decay_question_on_the_shipped_grid(mnist):
    for threshold in (0.3, 0.4, 0.5):
        rows, n_90 = [], {}
        for weight_decay in (0.0, 1.0):
            model, _, history = load_checkpoint(grid_path(threshold, weight_decay).read_bytes())
            aug, free = decompose(model, "true_minus_false"), decompose(model, "true_minus_false", "bias_free")
            rows.append(decay_row(aug, free, mnist.train_x[6], weight_decay, history[-1].val_acc))
            squares = np.sort(np.linalg.eigvalsh(free.matrix.numpy()) ** 2)[::-1]  # numpy, by |λ|
            n_90[weight_decay] = int(np.searchsorted(np.cumsum(squares) / squares.sum(), 0.9) + 1)
        question = weight_decay_question(rows, threshold)
        expected = 0 if n_90[1.0] < n_90[0.0] else 2 if n_90[1.0] > n_90[0.0] else None
        if expected is not None:
            assert question.answer == expected, threshold
        assert f"{n_90[0.0]} eigenvectors reach 90 %" in question.explanation[0], threshold


def curves(true_minus_false: list[float], full: float, top_only: float) -> TruncationCurves:
    n = len(true_minus_false)
    return TruncationCurves(
        k=np.arange(n),
        class_logits=np.array(true_minus_false),
        true_minus_false=np.array(true_minus_false),
        full_model=full,
        order_true=np.arange(n - 1),
        order_false=np.arange(n - 1),
        order_true_minus_false=np.arange(n - 1),
        n_images=10_000,
        share_true=0.5,
        largest_true_minus_false=1.0,
        top_only=top_only,
        top_only_eigenvalue=1.0,
        top_only_calibrated=top_only,
        top_only_threshold=0.0,
        top_only_linear_calibrated=top_only,
        top_only_linear_threshold=0.0,
        trained_offset=0.0,
        true_minus_false_calibrated=np.array(true_minus_false),
        constant_answer=0,
        constant_baseline=0.5,
        calibration_set="training",
        class_k1_true_share=0.0,
    )


def test_the_truncation_answer_is_the_fewest_eigenvectors_within_the_tolerance():
    accuracies = [0.5, 0.8, 0.9, 0.95, 0.962, 0.966] + [0.966] * 20  # k = 0 .. 25
    question = truncation_question(curves(accuracies, 0.966, 0.9), 0.005)
    assert question.answer == 1, "k = 4 is the first within half a point: '2 to 5'"
    assert "top 4 of the 25 eigenvectors" in question.explanation[0] and "96.20%" in question.explanation[0]
    assert (
        "refit on the training images, reaches 90.00%; always answering false scores 50.00%"
        in (question.explanation[1])
    )
    assert truncation_question(curves([0.5, 0.97, 0.97], 0.97, 0.97), 0.005).answer == 0
    never = truncation_question(curves([0.5, 0.6, 0.7], 0.97, 0.6), 0.005)
    assert never.answer == 3 and "No truncation" in never.explanation[0]
    assert [k_choice(k) for k in (1, 2, 5, 6, 20, 21, None)] == [0, 1, 1, 2, 2, 3, 3]


def test_progress_round_trips_through_the_url_and_rejects_garbage():
    progress = parse_progress("truncation-3.label-4")
    assert progress == (("label", 4), ("truncation", 3)), "in the lesson's order"
    assert parse_progress(format_progress(progress)) == progress and format_progress(()) == ""
    assert parse_progress("") == ()
    for bad in ("nonsense-1", "label-5", "label-x", "label", "tensor--1"):
        with pytest.raises(ValueError):
            parse_progress(bad)


def test_votes_one_per_session_and_step_bounded_and_tallied():
    votes: tuple[Vote, ...] = ()
    votes = record(votes, Vote("a", "label", 0, 2), cap=10)
    votes = record(votes, Vote("a", "label", 2, 2), cap=10)  # a's new prediction replaces the old one
    votes = record(votes, Vote("b", "label", 1, 2), cap=10)
    votes = record(votes, Vote("b", "tensor", 0, 0), cap=10)
    counted = tally(votes, BY_ID["label"])
    assert (counted.predicted, counted.right_for) == ((0, 1, 1, 0, 0), (0, 0, 2, 0, 0))
    assert (counted.n_right, counted.n) == (1, 2)
    hidden, shown = counted.sentences(False), counted.sentences(True)
    assert len(hidden) == 1 and "Right answer" not in hidden[0]
    assert "“τ = 0.40” for 2" in shown[1] and "1 of 2 predicted right" in shown[1]
    assert tally(votes, BY_ID["truncation"]).sentences(True) == ["Nobody has revealed this step yet."]

    many = ()
    for i in range(25):
        many = record(many, Vote(str(i), "label", 0, 0), cap=10)
    assert len(many) == 10 and many[-1].voter == "24", "the newest `cap` votes"
    with pytest.raises(ValueError):
        Vote("a", "label", 5, 0)
    with pytest.raises(ValueError):
        Vote("a", "nonsense", 0, 0)


def test_the_room_counts_concurrent_votes_once_each():
    room = ClassRoom()
    steps = [step.id for step in STEPS]

    def student(i: int) -> None:
        for step in steps:
            room.vote(Vote(f"student{i}", step, 0, 0))
            room.vote(Vote(f"student{i}", step, 1, 0))  # changes their mind: still one vote

    threads = [threading.Thread(target=student, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = room.state()
    assert len(state.votes) == 30 * len(steps) and all(v.choice == 1 for v in state.votes)
    assert state.revision == 2 * 30 * len(steps)
    room.clear_votes()
    assert room.state().votes == ()
