"""What the numbers on screen support, in words: every sentence the app states about a model.

Each finding is a small record of numbers computed from one model (or a few), with a `sentences()`
method that words exactly what those numbers say, so a sentence stays true for every setting and
every target. Nothing here is written for one model: tests/unit/test_findings.py renders every finding
for the 15 precomputed models and models with other targets and checks each sentence's claim.

The three views behind the target findings (core.eigen):
- the bias-augmented True − False matrix B (what the model computes, exactly);
- its bias-free block B[:-1, :-1] (the paper's "one high positive eigenvalue");
- class 1 alone without its top eigenpair (what the authors' Figure 6 script plots).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import UInt8
from torch import Tensor

from core.eigen import Eigen, cos_with_centered_target
from core.truncation import smallest_k_within

IS_TARGET = 0.8  # |cos| with the centred target at or above which we say an image "is the target"
RESEMBLES = 0.5  # at or above this (and below IS_TARGET): "resembles the target"


def match_words(cos: float) -> str:
    """How an |cos| with the centred target reads, by the two fixed levels above."""
    if cos >= IS_TARGET:
        return "it is the target, up to noise"
    if cos >= RESEMBLES:
        return "it resembles the target, blurred by other patterns"
    return "it does not look like the target"


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


# --- where the target is -------------------------------------------------------------------


@dataclass(frozen=True)
class TargetFinding:
    """How well the top eigenvectors of the augmented matrix and of its bias-free block match the target."""

    direction_label: str  # e.g. "True − False"
    augmented_eigenvalue: float  # lambda_0 of the augmented matrix
    augmented_cos: float  # |cos| of its eigenvector 0 with the centred target
    bias_free_eigenvalue: float  # lambda_0 of B[:-1, :-1]
    bias_free_cos: float
    best_index: int  # the augmented eigenvector closest to the target
    best_cos: float
    overlap: float  # |v_0(augmented)[:-1] . v_0(bias-free)|: how much of the augmented top vector is the pattern
    constant_weight: float  # v_0(augmented)[-1]^2: how much of it is the constant coordinate

    def sentences(self) -> list[str]:
        out = [
            f"The top eigenvector of the bias-free block (λ = {_signed(self.bias_free_eigenvalue)}) has |cos| "
            f"{self.bias_free_cos:.2f} with the centred target: {match_words(self.bias_free_cos)}.",
            f"The top eigenvector of the bias-augmented {self.direction_label} matrix (λ = "
            f"{_signed(self.augmented_eigenvalue)}) has |cos| {self.augmented_cos:.2f}: "
            f"{match_words(self.augmented_cos)}.",
        ]
        if self.augmented_cos < self.bias_free_cos - 0.05:
            out.append(
                f"The biases mix into it: it overlaps the bias-free top eigenvector by {self.overlap:.2f} and puts "
                f"{self.constant_weight:.0%} of its weight on the constant coordinate."
            )
        if self.best_index != 0 and self.best_cos >= max(RESEMBLES, self.augmented_cos + 0.05):
            out.append(
                f"The augmented eigenvector closest to the target is #{self.best_index} (|cos| {self.best_cos:.2f})."
            )
        return out


def target_finding(augmented: Eigen, bias_free: Eigen, target: UInt8[Tensor, "28 28"], label: str) -> TargetFinding:
    """The target finding of one direction, from its two decompositions (core.eigen.decompose)."""
    if augmented.view != "augmented" or bias_free.view != "bias_free" or augmented.direction != bias_free.direction:
        raise ValueError("target_finding takes the augmented and the bias-free decomposition of one direction")
    cosines = cos_with_centered_target(augmented.pixel_vectors, target)
    best = int(torch.argmax(cosines))
    top = augmented.vectors[0]
    return TargetFinding(
        direction_label=label,
        augmented_eigenvalue=float(augmented.eigenvalues[0]),
        augmented_cos=float(cosines[0]),
        bias_free_eigenvalue=float(bias_free.eigenvalues[0]),
        bias_free_cos=float(cos_with_centered_target(bias_free.pixel_vectors[:1], target)[0]),
        best_index=best,
        best_cos=float(cosines[best]),
        overlap=float(abs(top[:-1] @ bias_free.vectors[0])),
        constant_weight=float(top[-1] ** 2),
    )


# --- the +/- pair the biases add ------------------------------------------------------------


@dataclass(frozen=True)
class BiasPair:
    """The +/- eigenvalue pair that the bias coupling b = B[:-1, -1] adds to the augmented matrix.

    On the plane spanned by (b/|b|, 0) and the constant coordinate e, B acts as [[a, |b|], [|b|, c]]
    with c = B[-1, -1] and a = b^T B[:-1, :-1] b / |b|^2. When a is small, its eigenvalues are
    (c ± sqrt(c^2 + 4 |b|^2)) / 2: one positive, one negative, however small the bias-free block is.
    """

    b_norm: float  # |b|
    c: float  # B[-1, -1]
    a: float  # b^T B[:-1, :-1] b / |b|^2
    predicted: tuple[float, float]  # (c ± sqrt(c^2 + 4|b|^2)) / 2, + first
    measured: tuple[float, float]  # the eigenvalues whose eigenvectors lie most in that plane, + first
    indices: tuple[int, int]  # their indices (descending eigenvalue order)
    in_plane: tuple[float, float]  # the share of each of those eigenvectors inside the plane (0..1)
    largest_magnitude_index: int  # index of the eigenvalue of largest |lambda| in the whole spectrum

    def sentences(self) -> list[str]:
        plus, minus = self.predicted
        out = [
            f"The biases couple the constant coordinate to the vector b = B[:-1, -1] (|b| = {self.b_norm:.2f}, "
            f"c = B[-1, -1] = {_signed(self.c)}). On that plane alone B has the eigenvalues (c ± √(c² + 4|b|²))/2 "
            f"= {_signed(plus)} and {_signed(minus)}; the full spectrum has {_signed(self.measured[0])} (#"
            f"{self.indices[0]}) and {_signed(self.measured[1])} (#{self.indices[1]}), whose eigenvectors lie "
            f"{self.in_plane[0]:.0%} and {self.in_plane[1]:.0%} in that plane."
        ]
        if self.largest_magnitude_index in self.indices:
            out.append(
                f"The eigenvalue of largest |λ| (#{self.largest_magnitude_index}) is a member of this pair, so the "
                "biases, not the pattern, decide which eigenvalue is largest in size."
            )
        return out


def bias_pair(augmented: Eigen) -> BiasPair:
    """The +/- pair of an augmented decomposition: predicted from b and c, and measured."""
    B = augmented.matrix
    b, c = B[:-1, -1], float(B[-1, -1])
    b_norm = float(b.norm())
    if b_norm == 0.0:
        raise ValueError("this model has no bias coupling (b = 0): there is no pair")
    b_hat = b / b_norm
    root = math.sqrt(c * c + 4 * b_norm**2)
    V = augmented.vectors  # rows
    in_plane = (V[:, :-1] @ b_hat) ** 2 + V[:, -1] ** 2  # squared length of each eigenvector's projection
    two = sorted(torch.argsort(in_plane, descending=True)[:2].tolist())  # descending eigenvalue order: + first
    return BiasPair(
        b_norm=b_norm,
        c=c,
        a=float(b_hat @ B[:-1, :-1] @ b_hat),
        predicted=((c + root) / 2, (c - root) / 2),
        measured=(float(augmented.eigenvalues[two[0]]), float(augmented.eigenvalues[two[1]])),
        indices=(two[0], two[1]),
        in_plane=(float(in_plane[two[0]]), float(in_plane[two[1]])),
        largest_magnitude_index=int(torch.argmax(augmented.eigenvalues.abs())),
    )


# --- the authors' figure code --------------------------------------------------------------


@dataclass(frozen=True)
class FigureCodeFinding:
    """Class 1's augmented decomposition as the authors' Figure 6 script reads it: top eigenpair dropped."""

    top_cos: float  # |cos| of class 1's eigenvector 0 with the centred target
    top_constant_weight: float  # v_0[-1]^2
    next_eigenvalue: float  # lambda_1
    next_cos: float  # |cos| of eigenvector 1

    def sentences(self) -> list[str]:
        return [
            f"Class 1's top eigenvector puts {self.top_constant_weight:.0%} of its weight on the constant "
            f"coordinate and has |cos| {self.top_cos:.2f} with the target. Dropped, as the authors' figure code "
            f"does, the next one (λ = {_signed(self.next_eigenvalue)}) has |cos| {self.next_cos:.2f}: "
            f"{match_words(self.next_cos)}."
        ]


def figure_code_finding(class_1: Eigen, target: UInt8[Tensor, "28 28"]) -> FigureCodeFinding:
    if class_1.direction != "true" or class_1.view != "augmented" or len(class_1.eigenvalues) < 2:
        raise ValueError("figure_code_finding takes class 1's augmented decomposition (at least 2 eigenvectors)")
    cosines = cos_with_centered_target(class_1.pixel_vectors[:2], target)
    return FigureCodeFinding(
        top_cos=float(cosines[0]),
        top_constant_weight=float(class_1.vectors[0, -1] ** 2),
        next_eigenvalue=float(class_1.eigenvalues[1]),
        next_cos=float(cosines[1]),
    )


# --- what weight decay does (the precomputed grid) -----------------------------------------


@dataclass(frozen=True)
class DecayRow:
    weight_decay: float
    augmented_cos: float  # top True − False eigenvector, augmented
    bias_free_cos: float  # top eigenvector of the bias-free block
    b_norm: float  # |B[:-1, -1]| of True − False
    val_acc: float


@dataclass(frozen=True)
class WeightDecayFinding:
    rows: tuple[DecayRow, ...]  # by increasing weight decay

    def sentences(self) -> list[str]:
        first, last = self.rows[0], self.rows[-1]
        d_aug, d_free = last.augmented_cos - first.augmented_cos, last.bias_free_cos - first.bias_free_cos
        out = [
            f"From weight decay {first.weight_decay:g} to {last.weight_decay:g}, the top True − False eigenvector's "
            f"|cos| with the target goes {first.augmented_cos:.2f} → {last.augmented_cos:.2f} in the augmented "
            f"matrix and {first.bias_free_cos:.2f} → {last.bias_free_cos:.2f} in its bias-free block, while |b| "
            f"goes {first.b_norm:.2f} → {last.b_norm:.2f} and validation accuracy "
            f"{first.val_acc:.1%} → {last.val_acc:.1%}."
        ]
        if d_aug > 0.05 and abs(d_free) < d_aug / 2 and last.b_norm < first.b_norm:
            out.append(
                "So weight decay sharpens the augmented picture mainly by shrinking the biases, which then mix "
                "less into the top eigenvector; the pattern in the bias-free block changes much less."
            )
        elif d_free > 0.05:
            out.append("Here the bias-free pattern itself sharpens with weight decay too.")
        elif d_aug < -0.05:
            out.append("Here the augmented top eigenvector matches the target less with more weight decay.")
        return out


def weight_decay_finding(rows: Sequence[DecayRow]) -> WeightDecayFinding:
    if len(rows) < 2:
        raise ValueError("a weight-decay finding needs at least two models")
    return WeightDecayFinding(tuple(sorted(rows, key=lambda r: r.weight_decay)))


# --- how many eigenvectors (the Truncation page) -------------------------------------------


@dataclass(frozen=True)
class TruncationFinding:
    """The k = 1 facts, the per-class comparison and the 'sufficient' claim, from TruncationCurves."""

    share_true: float
    largest_eigenvalue: float  # True − False's eigenvalue of largest |lambda|
    tmf_k1: float  # True − False accuracy with 1 eigenvector
    class_k1: float  # per-class accuracy with 1 eigenvector each
    full_model: float
    top_only: float
    top_only_eigenvalue: float
    k_needed: int | None  # fewest largest-|lambda| True − False eigenvectors within `tolerance` of the model
    n_all: int  # all eigenvectors
    tolerance: float

    def sentences(self) -> list[str]:
        answer = "true" if self.largest_eigenvalue > 0 else "false"
        share = self.share_true if answer == "true" else 1 - self.share_true
        out = [
            f"With one eigenvector, the True − False form is a single term λ(v·h̃)² with λ = "
            f"{_signed(self.largest_eigenvalue)} (the largest |λ|). A square is never negative, so the form answers "
            f"{answer} for every image and scores the share of images labelled {answer}: "
            f"{self.tmf_k1:.1%} (that share is {share:.1%})."
        ]
        diff = self.class_k1 - self.tmf_k1
        if abs(diff) < 0.005:
            compare = "about the same as True − False"
        else:
            compare = f"{abs(diff):.1%} {'better' if diff > 0 else 'worse'} than True − False"
        out.append(
            f"The per-class curve compares two one-term forms, one per class, so its answer can change from one "
            f"image to the next: at k = 1 it reaches {self.class_k1:.1%}, {compare}."
        )
        within = "never" if self.k_needed is None else f"{self.k_needed} of {self.n_all}"
        verdict = (
            "sufficient here, as §4.3 says"
            if self.top_only >= self.full_model - self.tolerance
            else f"not sufficient here (by |λ|, True − False needs {within} eigenvectors to come within "
            f"{self.tolerance:.1%} of the model)"
        )
        out.append(
            f"§4.3 says the most positive eigenvector is sufficient. Keeping only the bias-free block's top "
            f"eigenvector (λ = {_signed(self.top_only_eigenvalue)}) and the exact bias terms gives "
            f"{self.top_only:.1%} against {self.full_model:.1%} for the full model: {verdict}."
        )
        return out


def truncation_finding(curves, tolerance: float) -> TruncationFinding:
    """From core.truncation.TruncationCurves."""
    return TruncationFinding(
        share_true=curves.share_true,
        largest_eigenvalue=curves.largest_true_minus_false,
        tmf_k1=float(curves.true_minus_false[1]),
        class_k1=float(curves.class_logits[1]),
        full_model=curves.full_model,
        top_only=curves.top_only,
        top_only_eigenvalue=curves.top_only_eigenvalue,
        k_needed=smallest_k_within(curves, "true_minus_false", tolerance),
        n_all=int(curves.k[-1]),
        tolerance=tolerance,
    )


# --- which matrix the verdict reads ---------------------------------------------------------

VERDICT_DIRECTION, VERDICT_VIEW = "true_minus_false", "augmented"


def verdict_view() -> tuple[str, str]:
    """(direction, view) of the matrix whose top eigenvector the app's verdict reads: the class board's
    number, the Train page's live eigenvector and every model's snapshots (core.snapshot). One place, so
    that a change of the headline view (issue 23) moves all of them together."""
    return VERDICT_DIRECTION, VERDICT_VIEW
