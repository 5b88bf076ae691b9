"""What the numbers on screen support, in words: every sentence the app states about a model.

Each finding is a small record of numbers computed from one model (or a few), with a `sentences()`
method that words exactly what those numbers say, so a sentence stays true for every setting and
every target. Nothing here is written for one model: tests/unit/test_findings.py renders every finding
for the 15 precomputed models and models with other targets and checks each sentence's claim.

Every finding checks its own premises and says less when they fail (the ± pair is called the biases'
only where two eigenvectors lie mostly in the plane of b and the constant coordinate and the coupling
makes their signs; "sufficient" is judged only above the constant answer's accuracy).

The three views behind the target findings (core.eigen):
- the bias-augmented True − False matrix B (what the model computes, exactly; the paper's model has biases);
- its bias-free block B[:-1, :-1] (the quadratic part alone; a view of this lab, the paper never decomposes it);
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
from core.explain import cancellation
from core.labels import percent
from core.spectrum import concentration_of
from core.truncation import smallest_k_within

IS_TARGET = 0.8  # |cos| with the centred target at or above which we say an image "is the target"
RESEMBLES = 0.5  # at or above this (and below IS_TARGET): "resembles the target"


def match_words(cos: float) -> str:
    """How an |cos| with the centred target reads, by the two fixed levels above, judged on the two decimals every
    page shows beside the words: 0.7996 is shown as 0.80, so it reads "is the target", never "0.80: resembles"."""
    shown = float(f"{cos:.2f}")  # the same decimal rounding as the f"{cos:.2f}" beside it
    if shown >= IS_TARGET:
        return "it is the target, up to noise"
    if shown >= RESEMBLES:
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

PAIR_SHARE = 0.5  # an eigenvector "lies in the plane" of b and the constant coordinate when more than half of it does


@dataclass(frozen=True)
class BiasPair:
    """The +/- eigenvalue pair that the bias coupling b = B[:-1, -1] can add to the augmented matrix.

    On the plane spanned by (b/|b|, 0) and the constant coordinate e, B restricts exactly to
    R = [[a, |b|], [|b|, c]] with c = B[-1, -1] and a = b^T B[:-1, :-1] b / |b|^2, whose eigenvalues are
    ((a + c) ± sqrt((a - c)^2 + 4 |b|^2)) / 2. They are eigenvalues of B itself only where that plane is
    (nearly) invariant: where two eigenvectors of B lie mostly in it. The pair is *the biases'* only
    when, in addition, the coupling |b| is at least as large as a, the quadratic part's own value on b
    (then R's opposite signs come from the coupling: with a small, (c ± sqrt(c^2 + 4|b|^2)) / 2).
    """

    b_norm: float  # |b|
    c: float  # B[-1, -1]
    a: float  # b^T B[:-1, :-1] b / |b|^2
    restricted: tuple[float, float]  # the exact eigenvalues of the 2x2 restriction R, + first
    measured: tuple[float, float]  # the eigenvalues of the two eigenvectors lying most in the plane, larger first
    indices: tuple[int, int]  # their indices (descending eigenvalue order)
    in_plane: tuple[float, float]  # the share of each of those eigenvectors inside the plane (0..1)
    member_cos: tuple[float, float]  # their |cos| with the centred target
    largest_magnitude_index: int  # index of the eigenvalue of largest |lambda| in the whole spectrum
    largest_magnitude: float  # that eigenvalue
    largest_in_plane: float  # the share of its eigenvector inside the plane
    largest_cos: float  # its |cos| with the centred target
    largest_bias_free_index: int  # the bias-free eigenvector it overlaps most
    largest_bias_free_overlap: float  # |v_L[:-1] . w_j|
    largest_bias_free_eigenvalue: float  # that bias-free eigenvector's eigenvalue
    bias_free_largest: float  # the bias-free block's own eigenvalue of largest |lambda| (the quadratic part alone)

    @property
    def plane_share(self) -> float:
        """How much of the plane the two eigenvectors span together (1: the plane is exactly invariant)."""
        return (self.in_plane[0] + self.in_plane[1]) / 2

    @property
    def in_the_plane(self) -> bool:
        """Both eigenvectors lie mostly in the plane: the restriction's eigenvalues are (about) B's."""
        return min(self.in_plane) > PAIR_SHARE

    @property
    def opposite_signs(self) -> bool:
        """One positive and one negative eigenvalue, both in the restriction R (a c < |b|²) and in B."""
        return self.restricted[0] > 0 > self.restricted[1] and self.measured[0] > 0 > self.measured[1]

    @property
    def is_biases_pair(self) -> bool:
        """The premises of "the biases' ± pair": in the plane, one + and one −, and the coupling not smaller than a."""
        return self.in_the_plane and self.opposite_signs and self.b_norm >= abs(self.a)

    @property
    def largest_in_pair(self) -> bool:
        return self.is_biases_pair and self.largest_magnitude_index in self.indices

    @property
    def pair_outweighs_quadratic(self) -> bool:
        """On the plane alone the pair is larger in size than anything the quadratic part has by itself."""
        same_sign = self.restricted[0] if self.largest_magnitude > 0 else self.restricted[1]
        return abs(same_sign) > abs(self.bias_free_largest)

    @property
    def largest_is_biases(self) -> bool:
        """The eigenvalue of largest |λ| is the biases': a member of their pair, not target-like, and larger than
        the quadratic part alone could make it."""
        return self.largest_in_pair and self.largest_cos < RESEMBLES and self.pair_outweighs_quadratic

    @property
    def largest_is_quadratic(self) -> bool:
        """The largest |λ| lies mostly outside the plane of b and e: it belongs to the quadratic part."""
        return self.largest_in_plane <= PAIR_SHARE

    def sentences(self) -> list[str]:
        plus, minus = self.restricted
        i, j = self.indices
        out = [
            f"The biases couple the constant coordinate to the vector b = B[:-1, -1] (|b| = {self.b_norm:.2f}, "
            f"c = B[-1, -1] = {_signed(self.c)}; on b the quadratic part gives a = {_signed(self.a)}). Restricted to "
            f"the plane of b and the constant coordinate, B has the eigenvalues {_signed(plus)} and {_signed(minus)}; "
            f"the eigenvectors lying most in that plane are #{i} (λ = {_signed(self.measured[0])}, "
            f"{self.in_plane[0]:.0%} in it) and #{j} (λ = {_signed(self.measured[1])}, {self.in_plane[1]:.0%})."
        ]
        if self.is_biases_pair:
            out.append(
                f"So #{i} and #{j} are the biases' ± pair: the coupling |b| ≥ |a| makes one eigenvalue positive and "
                "one negative, however small the pattern is."
            )
            target_like = [(k, cos) for k, cos in zip(self.indices, self.member_cos, strict=True) if cos >= RESEMBLES]
            for k, cos in target_like:
                out.append(f"#{k} also has |cos| {cos:.2f} with the target: the plane holds part of the pattern.")
        else:
            why = []
            if not self.in_the_plane:
                why.append(f"no two eigenvectors lie mostly in that plane (together {self.plane_share:.0%} of it)")
            if not self.opposite_signs:
                why.append("the restriction's or the two eigenvectors' eigenvalues have the same sign")
            if self.b_norm < abs(self.a):
                why.append(f"the quadratic part on b (|a| = {abs(self.a):.2f}) outweighs the coupling |b|")
            out.append(f"These are not a pair made by the biases: {'; '.join(why)}.")
        L, lam = self.largest_magnitude_index, _signed(self.largest_magnitude)
        same_sign = self.restricted[0] if self.largest_magnitude > 0 else self.restricted[1]
        overlap = (
            f"overlaps the bias-free block's eigenvector #{self.largest_bias_free_index} (λ = "
            f"{_signed(self.largest_bias_free_eigenvalue)}) by {self.largest_bias_free_overlap:.2f}"
        )
        if self.largest_is_biases:
            out.append(
                f"The eigenvalue of largest |λ| (#{L}, {lam}) is a member of this pair, larger than the quadratic "
                f"part's own largest |λ| ({_signed(self.bias_free_largest)}): the biases, not the pattern, decide "
                "which eigenvalue is largest in size."
            )
        elif self.largest_is_quadratic:
            out.append(
                f"The eigenvalue of largest |λ| (#{L}, {lam}) belongs to the quadratic part: its eigenvector lies "
                f"{self.largest_in_plane:.0%} in the plane and {overlap}."
            )
        elif self.largest_in_pair and self.largest_cos >= RESEMBLES:
            out.append(
                f"The eigenvalue of largest |λ| (#{L}, {lam}) is a member of this pair and has |cos| "
                f"{self.largest_cos:.2f} with the target: here b itself carries part of the pattern, so the biases "
                "and the pattern cannot be told apart."
            )
        elif self.pair_outweighs_quadratic:
            out.append(
                f"The eigenvalue of largest |λ| (#{L}, {lam}) lies {self.largest_in_plane:.0%} in the plane and "
                f"{overlap}; the premises of a biases' pair do not all hold, so it is not attributed to the biases."
            )
        else:
            out.append(
                f"The eigenvalue of largest |λ| (#{L}, {lam}) lies {self.largest_in_plane:.0%} in the plane, but the "
                f"quadratic part alone reaches {_signed(self.bias_free_largest)}, more than the plane alone gives "
                f"({_signed(same_sign)}), and its eigenvector {overlap}: the biases and the pattern both shape it."
            )
        return out


def restriction_eigenvalues(a: float, b_norm: float, c: float) -> tuple[float, float]:
    """The eigenvalues of [[a, |b|], [|b|, c]], larger first (exact, in closed form)."""
    root = math.sqrt((a - c) ** 2 + 4 * b_norm**2)
    return ((a + c + root) / 2, (a + c - root) / 2)


def bias_pair(augmented: Eigen, bias_free: Eigen, target: UInt8[Tensor, "28 28"]) -> BiasPair:
    """The +/- pair of an augmented decomposition: the exact 2x2 restriction, and the eigenvectors in its plane."""
    if augmented.view != "augmented" or bias_free.view != "bias_free" or augmented.direction != bias_free.direction:
        raise ValueError("bias_pair takes the augmented and the bias-free decomposition of one direction")
    B = augmented.matrix
    b, c = B[:-1, -1], float(B[-1, -1])
    b_norm = float(b.norm())
    if b_norm == 0.0:
        raise ValueError("this model has no bias coupling (b = 0): there is no pair")
    b_hat = b / b_norm
    a = float(b_hat @ B[:-1, :-1] @ b_hat)
    V = augmented.vectors  # rows
    in_plane = (V[:, :-1] @ b_hat) ** 2 + V[:, -1] ** 2  # squared length of each eigenvector's projection
    two = sorted(torch.argsort(in_plane, descending=True, stable=True)[:2].tolist())  # descending eigenvalue order
    cosines = cos_with_centered_target(augmented.pixel_vectors, target)
    largest = int(torch.argmax(augmented.eigenvalues.abs()))
    overlaps = (bias_free.vectors @ V[largest, :-1]).abs()  # (H,)
    j = int(torch.argmax(overlaps))
    return BiasPair(
        b_norm=b_norm,
        c=c,
        a=a,
        restricted=restriction_eigenvalues(a, b_norm, c),
        measured=(float(augmented.eigenvalues[two[0]]), float(augmented.eigenvalues[two[1]])),
        indices=(two[0], two[1]),
        in_plane=(float(in_plane[two[0]]), float(in_plane[two[1]])),
        member_cos=(float(cosines[two[0]]), float(cosines[two[1]])),
        largest_magnitude_index=largest,
        largest_magnitude=float(augmented.eigenvalues[largest]),
        largest_in_plane=float(in_plane[largest]),
        largest_cos=float(cosines[largest]),
        largest_bias_free_index=j,
        largest_bias_free_overlap=float(overlaps[j]),
        largest_bias_free_eigenvalue=float(bias_free.eigenvalues[j]),
        bias_free_largest=float(bias_free.eigenvalues[int(torch.argmax(bias_free.eigenvalues.abs()))]),
    )


# --- one input's contributions (the Explain page) ---------------------------------------------


@dataclass(frozen=True)
class ContributionFinding:
    """What one input's per-eigenvector split says: the biases' pair (where it is one) and cancellation."""

    total: float  # the output, Σ of every contribution
    positive: float  # Σ of the positive contributions
    negative: float  # Σ of the negative ones
    largest: int  # index of the largest positive contribution (-1: none)
    largest_value: float
    smallest: int  # index of the most negative one (-1: none)
    smallest_value: float
    cancels: bool  # core.explain.Cancellation.cancels
    pair: tuple[int, int] | None  # the biases' ± pair (BiasPair.is_biases_pair), else None
    pair_values: tuple[float, float]  # their contributions here (0, 0 without a pair)
    pair_target_like: tuple[int, ...] = ()  # members whose |cos| with the target is RESEMBLES or more

    def sentences(self) -> list[str]:
        out = []
        if self.pair is not None:
            i, j = self.pair
            rest = self.total - sum(self.pair_values)
            mixed = "".join(f" (#{k} also resembles the target)" for k in self.pair_target_like)
            out.append(
                f"#{i} and #{j} are the biases' ± pair, the model's affine part{mixed}: here they give "
                f"{_signed(self.pair_values[0])} and {_signed(self.pair_values[1])}, together "
                f"{_signed(sum(self.pair_values))}; every other eigenvector together gives {_signed(rest)}."
            )
        if self.cancels:
            out.append(
                f"Large contributions cancel: the positive terms add up to {_signed(self.positive)} and the negative "
                f"ones to {_signed(self.negative)}, for a total of {_signed(self.total)} (#{self.largest} alone gives "
                f"{_signed(self.largest_value)}, #{self.smallest} {_signed(self.smallest_value)}). Read the bars "
                "together: a big bar says a term is large, not that it decided the answer."
            )
        else:
            side = "negative" if self.total < 0 else "positive"
            out.append(
                f"Little cancels: the positive terms add up to {_signed(self.positive)} and the negative ones to "
                f"{_signed(self.negative)}, so the {side} terms set the total {_signed(self.total)}."
            )
        return out


def contribution_finding(contributions, pair: BiasPair | None) -> ContributionFinding:
    """One input's finding from its contributions (core.explain.Explanation.contributions) and the direction's
    BiasPair (None where b = 0)."""
    c = [float(v) for v in contributions]
    parts = cancellation(contributions)
    members = pair.indices if pair is not None and pair.is_biases_pair else None
    return ContributionFinding(
        total=parts.total,
        positive=parts.positive,
        negative=parts.negative,
        largest=parts.largest,
        largest_value=c[parts.largest] if parts.largest >= 0 else 0.0,
        smallest=parts.smallest,
        smallest_value=c[parts.smallest] if parts.smallest >= 0 else 0.0,
        cancels=parts.cancels,
        pair=members,
        pair_values=(c[members[0]], c[members[1]]) if members else (0.0, 0.0),
        pair_target_like=tuple(k for k, cos in zip(members, pair.member_cos, strict=True) if cos >= RESEMBLES)
        if members
        else (),
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

SHARPER = 0.05  # a change of |cos| or of the top share of Σλ² smaller than this reads "about the same"


@dataclass(frozen=True)
class DecayRow:
    weight_decay: float
    augmented_cos: float  # top True − False eigenvector, augmented
    bias_free_cos: float  # top eigenvector of the bias-free block
    b_norm: float  # |B[:-1, -1]| of True − False
    val_acc: float
    top_share: float  # bias-free True − False block: λ_0² / Σλ² (core.spectrum.top_energy_share)
    n_90: int  # ... eigenvectors by |λ| reaching 90 % of Σλ² (core.spectrum.eigenvectors_for_90pct)


@dataclass(frozen=True)
class WeightDecayFinding:
    rows: tuple[DecayRow, ...]  # by increasing weight decay

    @property
    def concentrates(self) -> bool:
        """Fewer eigenvectors carry 90 % of Σλ² at the largest weight decay than at the smallest (or as few, and
        the top one's share grows by SHARPER or more)."""
        first, last = self.rows[0], self.rows[-1]
        return last.n_90 < first.n_90 or (last.n_90 == first.n_90 and last.top_share - first.top_share >= SHARPER)

    @property
    def spreads(self) -> bool:
        first, last = self.rows[0], self.rows[-1]
        return last.n_90 > first.n_90 or (last.n_90 == first.n_90 and first.top_share - last.top_share >= SHARPER)

    def sentences(self) -> list[str]:
        first, last = self.rows[0], self.rows[-1]
        d_aug, d_free = last.augmented_cos - first.augmented_cos, last.bias_free_cos - first.bias_free_cos
        spectrum = (
            f"From weight decay {first.weight_decay:g} to {last.weight_decay:g}, the top eigenvalue of the bias-free "
            f"True − False block carries {first.top_share:.0%} → {last.top_share:.0%} of Σλ², and the eigenvectors "
            f"needed for 90 % of Σλ² go {first.n_90} → {last.n_90}"
        )
        if self.concentrates:
            spectrum += ": weight decay concentrates the spectrum, as §4.3's “one high positive eigenvalue” says."
        elif self.spreads:
            spectrum += ": here weight decay spreads the spectrum over more eigenvectors."
        else:
            spectrum += ": about as concentrated at both ends."
        out = [
            spectrum,
            f"The top eigenvector's |cos| with the target goes {first.bias_free_cos:.2f} → {last.bias_free_cos:.2f} "
            f"in the bias-free block and {first.augmented_cos:.2f} → {last.augmented_cos:.2f} in the augmented "
            f"matrix, while |b| goes {first.b_norm:.2f} → {last.b_norm:.2f} and validation accuracy "
            f"{first.val_acc:.1%} → {last.val_acc:.1%}.",
        ]
        if d_aug > SHARPER and abs(d_free) < d_aug / 2 and last.b_norm < first.b_norm:
            out.append(
                "The augmented |cos| rises more because |b| shrinks, so the biases mix less into its top eigenvector."
            )
        if self.concentrates and abs(d_free) < SHARPER:
            out.append(
                "The top eigenvector's shape barely changes; what weight decay removes are the other eigenvectors "
                "that carried the model too."
            )
        return out


def decay_row(
    augmented: Eigen, bias_free: Eigen, target: UInt8[Tensor, "28 28"], weight_decay: float, val_acc: float
) -> DecayRow:
    """One model's row of the weight-decay comparison, from its True − False decompositions."""
    if augmented.direction != "true_minus_false" or bias_free.direction != "true_minus_false":
        raise ValueError("a weight-decay row compares True − False matrices")
    if augmented.view != "augmented" or bias_free.view != "bias_free":
        raise ValueError("decay_row takes the augmented and the bias-free decomposition")
    share = concentration_of(bias_free)
    return DecayRow(
        weight_decay=float(weight_decay),
        augmented_cos=float(cos_with_centered_target(augmented.pixel_vectors[:1], target)[0]),
        bias_free_cos=float(cos_with_centered_target(bias_free.pixel_vectors[:1], target)[0]),
        b_norm=float(augmented.bias_vector.norm()),
        val_acc=float(val_acc),
        top_share=share.top_energy_share,
        n_90=share.eigenvectors_for_90pct,
    )


def weight_decay_finding(rows: Sequence[DecayRow]) -> WeightDecayFinding:
    if len(rows) < 2:
        raise ValueError("a weight-decay finding needs at least two models")
    return WeightDecayFinding(tuple(sorted(rows, key=lambda r: r.weight_decay)))


# --- how many eigenvectors (the Truncation page) -------------------------------------------


def _points(difference: float) -> str:
    """A difference of two accuracies, in percentage points."""
    return f"{abs(difference) * 100:.1f} percentage points"


@dataclass(frozen=True)
class TruncationFinding:
    """The k = 1 facts, the per-class comparison and the 'sufficient' claim, from TruncationCurves."""

    share_true: float
    largest_eigenvalue: float  # True − False's eigenvalue of largest |lambda|
    tmf_k1: float  # True − False accuracy with 1 eigenvector
    class_k1: float  # per-class accuracy with 1 eigenvector each
    class_k1_true_share: float  # share of the images the per-class k = 1 truncation calls true
    full_model: float
    top_only: float  # with the trained offset c
    top_only_calibrated: float  # with the threshold refit on `calibration_set`
    top_only_eigenvalue: float
    constant_answer: int
    constant_baseline: float
    calibration_set: str
    k_needed: int | None  # fewest largest-|lambda| True − False eigenvectors within `tolerance` of the model
    k_needed_calibrated: int | None  # ... with the threshold refit per k
    n_all: int  # all eigenvectors
    tolerance: float

    @property
    def above_baseline(self) -> bool:
        """The calibrated top-only score beats the constant answer by more than `tolerance`: only then does it tell
        anything about sufficiency."""
        return self.top_only_calibrated > self.constant_baseline + self.tolerance

    @property
    def sufficient(self) -> bool:
        return self.above_baseline and self.top_only_calibrated >= self.full_model - self.tolerance

    def sentences(self) -> list[str]:
        answer = "true" if self.largest_eigenvalue > 0 else "false"
        share = self.share_true if answer == "true" else 1 - self.share_true
        constant = "true" if self.constant_answer else "false"
        out = [
            f"With one eigenvector, the True − False form is a single term λ(v·h̃)² with λ = "
            f"{_signed(self.largest_eigenvalue)} (the largest |λ|). A square is never negative, so the form answers "
            f"{answer} for every image and scores the share of images labelled {answer}: {self.tmf_k1:.1%}"
            + ("." if f"{self.tmf_k1:.1%}" == f"{share:.1%}" else f" (that share is {share:.1%}).")
        ]
        diff = self.class_k1 - self.tmf_k1
        compare = (
            "about the same as True − False"
            if abs(diff) < 0.005
            else f"{_points(diff)} {'better' if diff > 0 else 'worse'} than True − False"
        )
        if self.class_k1_true_share in (0.0, 1.0):
            changes = (
                f"here it still gives one answer ({'true' if self.class_k1_true_share else 'false'}) for every image"
            )
        else:
            changes = (  # never "0.0% called true" beside "changes": core.labels.percent keeps a few images visible
                f"here its answer changes from image to image ({percent(self.class_k1_true_share, '%')} called true)"
            )
        out.append(
            f"The per-class curve compares two one-term forms, one per class: at k = 1 {changes}, and it reaches "
            f"{self.class_k1:.1%}, {compare}."
        )
        where = "the model's training images" if self.calibration_set == "training" else "these same test images"
        scores = (
            f"§4.3 says the most positive eigenvector is sufficient. The bias-free block's top eigenvector alone, "
            f"λ₀(v₀·h)² with λ₀ = {_signed(self.top_only_eigenvalue)}, against a threshold refit on {where}, gives "
            f"{self.top_only_calibrated:.1%}, against {self.full_model:.1%} for the full model and "
            f"{self.constant_baseline:.1%} for always answering {constant}"
        )
        if not self.above_baseline:
            out.append(
                scores + f": not more than {_points(self.tolerance)} above the constant answer, so this score says "
                "nothing about sufficiency."
            )
        elif self.sufficient:
            out.append(scores + ": sufficient here, as §4.3 says.")
        else:
            within = (
                "no number of eigenvectors comes"
                if self.k_needed_calibrated is None
                else f"it takes {self.k_needed_calibrated} of {self.n_all} eigenvectors to come"
            )
            out.append(
                scores + f": {_points(self.top_only_calibrated - self.constant_baseline)} above the constant answer "
                f"but {_points(self.full_model - self.top_only_calibrated)} short of the model, so not sufficient "
                f"here (ranked by |λ|, with the threshold refit, {within} within {_points(self.tolerance)} of the "
                "model)."
            )
        return out


def truncation_finding(curves, tolerance: float) -> TruncationFinding:
    """From core.truncation.TruncationCurves."""
    return TruncationFinding(
        share_true=curves.share_true,
        largest_eigenvalue=curves.largest_true_minus_false,
        tmf_k1=float(curves.true_minus_false[1]),
        class_k1=float(curves.class_logits[1]),
        class_k1_true_share=curves.class_k1_true_share,
        full_model=curves.full_model,
        top_only=curves.top_only,
        top_only_calibrated=curves.top_only_calibrated,
        top_only_eigenvalue=curves.top_only_eigenvalue,
        constant_answer=curves.constant_answer,
        constant_baseline=curves.constant_baseline,
        calibration_set=curves.calibration_set,
        k_needed=smallest_k_within(curves, "true_minus_false", tolerance),
        k_needed_calibrated=smallest_k_within(curves, "true_minus_false_calibrated", tolerance),
        n_all=int(curves.k[-1]),
        tolerance=tolerance,
    )


# --- which matrix the verdict reads ---------------------------------------------------------

VERDICT_DIRECTION, VERDICT_VIEW = "true_minus_false", "bias_free"  # the pattern without the biases' ± pair


def verdict_view() -> tuple[str, str]:
    """(direction, view) of the matrix whose top eigenvector the app's verdict reads: the class board's
    number, the Train page's live eigenvector and every model's snapshots (core.snapshot). One place, so
    that a change of the headline view (issue 23) moves all of them together."""
    return VERDICT_DIRECTION, VERDICT_VIEW
