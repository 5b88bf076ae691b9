"""core.findings: every sentence the app states about a model, rendered for the 15 precomputed models
and for models trained on two other targets, and checked against numbers computed independently
here (numpy, from the paper's definitions), not by the code that wrote the sentence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core import findings
from core.checkpoint import load_checkpoint
from core.config import Config
from core.eigen import decompose
from core.grid import GRID_THRESHOLDS, GRID_WEIGHT_DECAYS, grid_config, grid_path
from core.labels import make_splits
from core.train import fit
from core.truncation import truncation_curves

TOLERANCE = 0.005


def independent(model, target_uint8) -> dict:
    """The paper's construction written out in numpy: B of True − False, its hidden block, |cos| of the tops."""
    W_e = model.W_e.detach().double().numpy()
    H = W_e.shape[0]
    aug = lambda W, b: np.block([[W, b[:, None]], [np.zeros((1, H)), np.ones((1, 1))]])  # noqa: E731
    Wl = aug(model.W_l.detach().double().numpy(), model.b_l.detach().double().numpy())
    Wr = aug(model.W_r.detach().double().numpy(), model.b_r.detach().double().numpy())
    Wu = np.hstack([model.W_u.detach().double().numpy(), np.ones((2, 1))])
    B = np.einsum("ch,hi,hj->cij", Wu, Wl, Wr)
    B = 0.5 * (B + B.transpose(0, 2, 1))
    tmf = B[1] - B[0]
    W_e_aug = np.block([[W_e, np.zeros((H, 1))], [np.zeros((1, 784)), np.ones((1, 1))]])
    t = target_uint8.numpy().reshape(784) / 255.0
    t = t - t.mean()

    def top_cos(matrix):
        values, vectors = np.linalg.eigh(matrix)
        v = vectors[:, -1]  # the largest eigenvalue's
        pixels = (v @ W_e_aug[: len(v)])[:784]
        return values, abs(pixels @ t) / (np.linalg.norm(pixels) * np.linalg.norm(t))

    values, cos = top_cos(tmf)
    free_values, free_cos = top_cos(tmf[:-1, :-1])
    return {
        "values": values,
        "cos": cos,
        "free_values": free_values,
        "free_cos": free_cos,
        "b": np.linalg.norm(tmf[:-1, -1]),
        "c": tmf[-1, -1],
    }


def words_for(cos: float) -> str:
    return "is the target" if cos >= 0.8 else "resembles the target" if cos >= 0.5 else "does not look like"


def grid_models():
    for t in GRID_THRESHOLDS:
        for wd in GRID_WEIGHT_DECAYS:
            model, config, history = load_checkpoint(grid_path(t, wd).read_bytes())
            assert config == grid_config(t, wd)
            yield f"grid t{t} wd{wd}", model, config, history


@pytest.fixture(scope="module")
def models(mnist):
    """The 15 grid models, plus two other targets (a 0 and a 4, the first of each in MNIST) trained briefly."""
    out = list(grid_models())
    for digit in (0, 4):
        index = int((mnist.train_y == digit).nonzero()[0])
        config = Config(target_index=index, epochs=4, batch_size=1024, lr=3e-3)
        model, history = fit(config, make_splits(mnist, config))
        out.append((f"target #{index} (a {digit})", model, config, history))
    return out


def test_target_and_pair_findings_say_what_the_numbers_say(models, mnist):
    for name, model, config, _ in models:
        target = mnist.train_x[config.target_index]
        truth = independent(model, target)
        aug, free = decompose(model, "true_minus_false"), decompose(model, "true_minus_false", "bias_free")
        finding = findings.target_finding(aug, free, target, "True − False")
        text = " ".join(finding.sentences())
        free_sentence, aug_sentence = finding.sentences()[:2]
        assert f"|cos| {truth['free_cos']:.2f}" in free_sentence, name
        assert words_for(truth["free_cos"]) in free_sentence, name
        assert f"|cos| {truth['cos']:.2f}" in aug_sentence, name
        assert words_for(truth["cos"]) in aug_sentence, name
        assert ("The biases mix into it" in text) == (truth["cos"] < truth["free_cos"] - 0.05), name

        pair = findings.bias_pair(aug, free, target)
        text = " ".join(pair.sentences())
        B = aug.matrix.numpy()
        b = B[:-1, -1] / truth["b"]
        a = b @ B[:-1, :-1] @ b
        restricted = np.linalg.eigvalsh(np.array([[a, truth["b"]], [truth["b"], truth["c"]]]))[::-1]
        assert pair.restricted == pytest.approx(tuple(restricted), abs=1e-9), name
        measured = pair.measured
        assert min(abs(truth["values"] - measured[0])) < 1e-9 and min(abs(truth["values"] - measured[1])) < 1e-9
        assert ("are the biases' ± pair" in text) == pair.is_biases_pair, name
        if pair.is_biases_pair:
            assert measured[0] > 0 > measured[1] and min(pair.in_plane) > 0.5 and truth["b"] >= abs(a), name
        largest = int(np.argmax(abs(truth["values"])))  # ascending order here
        in_pair = pair.is_biases_pair and any(abs(truth["values"][largest] - m) < 1e-9 for m in measured)
        if "the biases, not the pattern, decide" in text:
            assert in_pair, name


def test_weight_decay_findings_per_threshold(models, mnist):
    by_threshold: dict[float, list] = {}
    for name, model, config, history in models:
        if not name.startswith("grid"):
            continue
        target = mnist.train_x[config.target_index]
        aug, free = decompose(model, "true_minus_false"), decompose(model, "true_minus_false", "bias_free")
        row = findings.decay_row(aug, free, target, config.weight_decay, history[-1].val_acc)
        truth = independent(model, target)
        squares = np.sort(truth["free_values"] ** 2)[::-1]
        assert row.top_share == pytest.approx(truth["free_values"].max() ** 2 / squares.sum(), abs=1e-9), name
        assert row.bias_free_cos == pytest.approx(truth["free_cos"], abs=1e-9), name
        by_threshold.setdefault(config.threshold, []).append(
            (row, int(np.argmax(np.cumsum(squares) / squares.sum() >= 0.9)) + 1)
        )
    assert sorted(by_threshold) == list(GRID_THRESHOLDS)
    for threshold, pairs in by_threshold.items():
        rows = [row for row, _ in pairs]
        assert [row.n_90 for row, _ in pairs] == [n for _, n in pairs], threshold
        sentences = findings.weight_decay_finding(rows).sentences()
        first, last = min(rows, key=lambda r: r.weight_decay), max(rows, key=lambda r: r.weight_decay)
        assert f"go {first.n_90} → {last.n_90}" in sentences[0], threshold
        assert ("weight decay concentrates the spectrum" in sentences[0]) == (last.n_90 < first.n_90), threshold
        assert f"{first.bias_free_cos:.2f} → {last.bias_free_cos:.2f}" in sentences[1], threshold


def test_truncation_findings(models, mnist):
    for name, model, config, _ in models:
        splits = make_splits(mnist, config.replace(n_test=2000))  # 2000 test images: enough to check the words
        curves = truncation_curves(model, splits.test_x, splits.test_y, train=(splits.train_x, splits.train_y))
        sentences = findings.truncation_finding(curves, TOLERANCE).sentences()
        truth = independent(model, mnist.train_x[config.target_index])
        largest = truth["values"][int(np.argmax(abs(truth["values"])))]
        answer = "true" if largest > 0 else "false"
        share = float(splits.test_y.double().mean()) if answer == "true" else 1 - float(splits.test_y.double().mean())
        assert f"answers {answer} for every image" in sentences[0], name
        assert f"{share:.1%}" in sentences[0] and abs(curves.true_minus_false[1] - share) < 1e-12, name
        diff = curves.class_logits[1] - curves.true_minus_false[1]
        expected = "about the same" if abs(diff) < 0.005 else ("better" if diff > 0 else "worse")
        assert expected in sentences[1], name
        # the "sufficient" claim: never judged at or below the constant answer
        constant = (splits.test_y == int(splits.train_y.double().mean() > 0.5)).double().mean()
        assert curves.constant_baseline == pytest.approx(float(constant), abs=1e-12)
        if curves.top_only_calibrated <= curves.constant_baseline + TOLERANCE:
            assert "says nothing about sufficiency" in sentences[2] and "sufficient here" not in sentences[2], name
        else:
            sufficient = curves.top_only_calibrated >= curves.full_model - TOLERANCE
            assert ("sufficient here, as §4.3 says" in sentences[2]) == sufficient, name


def test_figure_code_finding(models, mnist):
    for name, model, config, _ in models:
        target = mnist.train_x[config.target_index]
        class_1 = decompose(model, "true")
        sentence = findings.figure_code_finding(class_1, target).sentences()[0]
        t = target.double().reshape(784) / 255
        t = t - t.mean()
        second = class_1.pixel_vectors[1, :784]
        cos = float(abs(second @ t) / (second.norm() * t.norm()))
        assert f"has |cos| {cos:.2f}: {findings.match_words(cos)}" in sentence, name
        assert f"{float(class_1.vectors[0, -1] ** 2):.0%} of its weight" in sentence, name
    with pytest.raises(ValueError):
        findings.figure_code_finding(decompose(models[0][1], "false"), mnist.train_x[6])
    assert torch.is_tensor(class_1.vectors)


def test_a_per_class_answer_that_changes_is_never_called_0_percent_true():
    """A threshold-0.8 model's per-class k = 1 truncation called a few of the 10,000 test images true: the page
    read "its answer changes from image to image (0.0% called true)", a contradiction in one clause."""
    finding = findings.TruncationFinding(
        share_true=0.018,
        largest_eigenvalue=-0.543,
        tmf_k1=0.982,
        class_k1=0.983,
        class_k1_true_share=0.0003,
        full_model=0.997,
        top_only=0.98,
        top_only_calibrated=0.987,
        top_only_eigenvalue=0.217,
        constant_answer=0,
        constant_baseline=0.982,
        calibration_set="training",
        k_needed=2,
        k_needed_calibrated=2,
        n_all=65,
        tolerance=0.005,
    )
    (sentence,) = [s for s in finding.sentences() if "per-class curve" in s]
    assert "changes from image to image (0.03% called true)" in sentence, sentence
    assert "labelled false: 98.2%." in finding.sentences()[0], "the score is that share: said once"
    apart = dataclasses.replace(finding, tmf_k1=0.981)
    assert "labelled false: 98.1% (that share is 98.2%)." in apart.sentences()[0]
    almost_all = dataclasses.replace(finding, class_k1_true_share=0.9998)
    (sentence,) = [s for s in almost_all.sentences() if "per-class curve" in s]
    assert "(99.98% called true)" in sentence, sentence


@pytest.mark.parametrize(
    ("cos", "words"),
    [
        (0.7996, "it is the target, up to noise"),  # shown as 0.80: "0.8 or more reads 'is the target'"
        (0.7949, "it resembles the target, blurred by other patterns"),  # shown as 0.79
        (0.4998, "it resembles the target, blurred by other patterns"),  # shown as 0.50
        (0.4949, "it does not look like the target"),  # shown as 0.49
    ],
)
def test_the_words_agree_with_the_cos_shown_beside_them(cos, words):
    """A live training showed "|cos| 0.80: it resembles the target" (the exact |cos| was just under 0.8) while the
    page says 0.8 or more reads "is the target": the words judge the two decimals every page shows."""
    assert findings.match_words(cos) == words, f"|cos| {cos:.2f}"
