"""How many eigenvectors does the computation need? Accuracy with only some of them kept.

Two claims of the paper, tested on the model on screen:
- §4.2 (its 10-class MNIST model): a handful of eigenvectors carry the computation. Truncate a
  symmetric interaction matrix B = sum_i lambda_i v_i v_i^T to its k eigenvectors of largest
  |lambda| (the order in which they matter most for a unit-norm input direction).
- §4.3 (this experiment): "the most positive eigenvector is sufficient". Keep only the top (most
  positive) eigenvector of the bias-free True − False block and the exact bias terms:
  out(x) = lambda_0 (v_0 . h)^2 + 2 b . h + c, with b = B[:-1, -1], c = B[-1, -1] (`top_only`).

Truncation by |lambda|:

    B_k = sum_{i in top-k |lambda|} lambda_i v_i v_i^T,   out_k(x) = sum_{top k} lambda_i (v_i . h~)^2

with h~ = W_e' x~ = [W_e x, 1]. Two ways to classify with truncated matrices:

- "class_logits": truncate B_0 and B_1 separately (each to its own top-k); predict class 1 iff
  out_k^{(1)}(x) > out_k^{(0)}(x), i.e. argmax of the truncated logits (the +1s cancel).
- "true_minus_false": truncate B_1 - B_0 to its top-k; predict class 1 iff out_k(x) > 0.

With k = H+1 (all 65) both equal the full model: out(x) is then exactly the logit (difference).
Ties go to class 0, like torch's argmax, so k = 0 (every form 0) predicts class 0 everywhere.

Calibrated offset. A truncated form keeps the offset the model learnt together with *all* its terms
(the constant c, or the constant part of the dropped eigenvectors), so a low score can measure a stale
offset rather than the eigenvectors kept. The calibrated accuracies therefore refit one number, the
decision threshold θ (predict class 1 iff the kept terms exceed θ), on the *training* images, and score
the test images with it: `top_only_calibrated` refits it for the top eigenvector alone, λ_0 (v_0 . h)^2 > θ
(θ replaces both bias terms: §4.3's claim), `top_only_linear_calibrated` for λ_0 (v_0 . h)^2 + 2 b . h > θ
(θ replaces c), `true_minus_false_calibrated` for every k. Beside every accuracy stands the constant answer's: the
training set's majority answer, scored on the same test images (`constant_baseline`). A score at or
below it says nothing about the eigenvectors kept.

Speed: the projections P[n, i] = v_i . h~_n are one (N, H+1) @ (H+1, H+1) product; the terms
lambda_i P[n, i]^2, in |lambda| order, are cumulatively summed along i, which gives out_k for
every k at once. 10 000 test images take a few tens of milliseconds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int, UInt8
from torch import Tensor

from core.eigen import Eigen, decompose
from core.model import BilinearMLP

MODES: dict[str, str] = {
    "class_logits": "B_0 and B_1 each keep their top-k eigenvectors; predict the larger logit",
    "true_minus_false": "B_1 − B_0 keeps its top-k eigenvectors; predict class 1 iff the form > 0",
}
CHUNK = 8192  # images converted to float64 at a time (8192 x 784 x 8 B = 51 MB)


@dataclass(frozen=True)
class TruncationCurves:
    k: np.ndarray  # (H+2,) 0, 1, ..., H+1 eigenvectors kept
    class_logits: np.ndarray  # (H+2,) accuracy with B_0, B_1 truncated to top-k each
    true_minus_false: np.ndarray  # (H+2,) accuracy with B_1 - B_0 truncated to top-k
    full_model: float  # accuracy of the untruncated model (its own float64 forward pass from h)
    order_true: np.ndarray  # (H+1,) eigen indices of B_1 (descending-lambda order) by |lambda|
    order_false: np.ndarray  # (H+1,) same for B_0
    order_true_minus_false: np.ndarray  # (H+1,) same for B_1 - B_0
    n_images: int
    share_true: float  # fraction of the images labelled 1: a constant answer scores this or 1 - this
    largest_true_minus_false: float  # the eigenvalue of B_1 - B_0 with the largest |lambda| (k = 1 keeps it)
    top_only: float  # accuracy of lambda_0 (v_0 . h)^2 + 2 b . h + c (bias-free top eigenvector, exact bias terms)
    top_only_eigenvalue: float  # that lambda_0: the most positive eigenvalue of the bias-free block
    top_only_calibrated: float  # accuracy of lambda_0 (v_0 . h)^2 > theta, theta refit on `calibration_set`
    top_only_threshold: float  # that theta
    top_only_linear_calibrated: float  # accuracy of lambda_0 (v_0 . h)^2 + 2 b . h > theta', theta' refit likewise
    top_only_linear_threshold: float  # that theta' (the trained offset corresponds to theta' = -c)
    trained_offset: float  # c = B[-1, -1] of True − False
    true_minus_false_calibrated: np.ndarray  # (H+2,) accuracy of out_k > theta_k, theta_k refit per k
    constant_answer: int  # the majority label of `calibration_set` (1 = true)
    constant_baseline: float  # accuracy of always answering `constant_answer` on the evaluated images
    calibration_set: str  # "training" (the model's training images) or "evaluated" (no training set was given)
    class_k1_true_share: float  # share of the evaluated images the per-class k = 1 truncation calls true

    def accuracy(self, mode: str) -> np.ndarray:
        if mode == "true_minus_false_calibrated":
            return self.true_minus_false_calibrated
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
        return getattr(self, mode)


def order_by_magnitude(eigenvalues: Float[Tensor, " n"]) -> Int[Tensor, " n"]:
    """Indices sorting eigenvalues by descending |lambda| (stable: ties keep their order)."""
    return torch.argsort(eigenvalues.abs(), descending=True, stable=True)


def hidden_augmented(x_uint8: UInt8[Tensor, "n 28 28"], W_e: Float[Tensor, "h 784"]) -> Float[Tensor, "n h1"]:
    """float64 h~ = [W_e x, 1] for uint8 images, a chunk at a time (h1 = h + 1)."""
    W_e = W_e.double()
    out = torch.ones(len(x_uint8), W_e.shape[0] + 1, dtype=torch.float64)
    for start in range(0, len(x_uint8), CHUNK):
        x = x_uint8[start : start + CHUNK].reshape(-1, 784).double()  # (chunk, 784) still 0-255
        out[start : start + CHUNK, :-1] = (x @ W_e.T) / 255.0  # scale the (chunk, H) result: cheaper
    return out


def cumulative_forms(h_aug: Float[Tensor, "n h1"], eig: Eigen, order: Int[Tensor, " h1"]) -> Float[Tensor, "n k"]:
    """(N, H+2) column k = sum of the k largest-|lambda| terms lambda_i (v_i . h~)^2 (column 0 = 0)."""
    projections = h_aug @ eig.vectors[order].T  # (N, H+1), columns in |lambda| order
    terms = eig.eigenvalues[order] * projections**2  # (N, H+1)
    return torch.cat([torch.zeros(len(h_aug), 1, dtype=terms.dtype), terms.cumsum(dim=1)], dim=1)


def fit_thresholds(scores: Float[Tensor, "n k"], y: Int[Tensor, " n"]) -> Float[Tensor, " k"]:
    """Per column, the threshold theta maximising the accuracy of "class 1 iff score > theta" on labels y.

    Sort each column; a cut after the i-th smallest score predicts 0 for those i and 1 for the rest, and is
    only possible between two different scores. The best cut (the first of equals) gives theta halfway
    between its two neighbours (or one unit beyond the ends: everything 1, or everything 0).
    """
    values, order = torch.sort(scores, dim=0)  # (N, K) ascending
    labels = y.double()[order]  # (N, K) labels in score order
    zeros_below = torch.cat([torch.zeros(1, scores.shape[1], dtype=torch.float64), (1 - labels).cumsum(0)])
    ones_above = labels.sum(0, keepdim=True) - torch.cat(
        [torch.zeros(1, scores.shape[1], dtype=torch.float64), labels.cumsum(0)]
    )
    correct = zeros_below + ones_above  # (N+1, K): cut i predicts 0 for the i smallest
    possible = torch.ones_like(correct, dtype=torch.bool)
    possible[1:-1] = values[1:] > values[:-1]  # a cut between two equal scores is not a threshold
    best = torch.where(possible, correct, torch.full_like(correct, -1.0)).argmax(0)  # (K,) first of the maxima
    low = torch.cat([values[:1] - 1, values])  # (N+1, K) the score just below cut i
    high = torch.cat([values, values[-1:] + 1])  # ... just above
    columns = torch.arange(scores.shape[1])
    return (low[best, columns] + high[best, columns]) / 2


def _accuracy(predict_true: Tensor, y: Tensor) -> np.ndarray:  # (N, K) bool -> (K,)
    return (predict_true.long() == y[:, None]).double().mean(dim=0).numpy()


@torch.no_grad()
def truncation_curves(
    model: BilinearMLP,
    x_uint8: UInt8[Tensor, "n 28 28"],
    y: Int[Tensor, " n"],
    train: tuple[UInt8[Tensor, "m 28 28"], Int[Tensor, " m"]] | None = None,
) -> TruncationCurves:
    """Accuracy on uint8 images (N, 28, 28) with labels y (N,) for every k = 0 ... H+1.

    `train`: the model's training images and labels, on which the calibrated thresholds and the constant
    answer are fitted (without it they are fitted on the evaluated images themselves, and say so).
    """
    if len(x_uint8) != len(y):
        raise ValueError(f"{len(x_uint8)} images but {len(y)} labels")
    if len(y) == 0:
        raise ValueError("no images to evaluate")
    h_aug = hidden_augmented(x_uint8, model.W_e)  # (N, H+1), computed once
    y = y.reshape(-1)

    eigs = {name: decompose(model, name) for name in ("true", "false", "true_minus_false")}
    orders = {name: order_by_magnitude(e.eigenvalues) for name, e in eigs.items()}
    forms = {name: cumulative_forms(h_aug, eigs[name], orders[name]) for name in eigs}  # (N, H+2)

    def accuracy(predict_true: torch.Tensor) -> np.ndarray:  # (N, K) bool -> (K,)
        return _accuracy(predict_true, y)

    free = decompose(model, "true_minus_false", "bias_free")  # (H, H) block: the top eigenvector alone
    B = eigs["true_minus_false"].matrix

    def top_term(h: Float[Tensor, "n h"]) -> Float[Tensor, " n"]:  # lambda_0 (v_0 . h)^2
        return free.eigenvalues[0] * (h @ free.vectors[0]) ** 2

    def kept_terms(h: Float[Tensor, "n h"]) -> Float[Tensor, " n"]:  # lambda_0 (v_0 . h)^2 + 2 b . h, no constant
        return top_term(h) + 2 * (h @ B[:-1, -1])

    h = h_aug[:, :-1]  # (N, H)
    top_only = kept_terms(h) + B[-1, -1]  # (N,)
    if train is not None:
        fit_x, fit_y, calibration_set = train[0], train[1].reshape(-1), "training"
        if len(fit_x) != len(fit_y) or len(fit_y) == 0:
            raise ValueError(f"{len(fit_x)} training images but {len(fit_y)} labels")
        fit_h_aug = hidden_augmented(fit_x, model.W_e)
    else:
        fit_h_aug, fit_y, calibration_set = h_aug, y, "evaluated"
    fit_forms = cumulative_forms(fit_h_aug, eigs["true_minus_false"], orders["true_minus_false"])  # (M, H+2)
    fit_h = fit_h_aug[:, :-1]
    thresholds = fit_thresholds(
        torch.cat([fit_forms, top_term(fit_h)[:, None], kept_terms(fit_h)[:, None]], dim=1), fit_y
    )  # (H+4,): one per k, then the top term's alone, then with the linear term
    constant_answer = int(fit_y.double().mean() > 0.5)
    logits = copy.deepcopy(model).double().from_hidden(h)  # (N, 2) float64 forward pass
    full = logits[:, 1] > logits[:, 0]  # argmax, ties to class 0
    n_kept = h_aug.shape[1] + 1
    return TruncationCurves(
        k=np.arange(n_kept),
        class_logits=accuracy(forms["true"] > forms["false"]),
        true_minus_false=accuracy(forms["true_minus_false"] > 0),
        full_model=float((full.long() == y).double().mean()),
        order_true=orders["true"].numpy(),
        order_false=orders["false"].numpy(),
        order_true_minus_false=orders["true_minus_false"].numpy(),
        n_images=len(y),
        share_true=float(y.double().mean()),
        largest_true_minus_false=float(eigs["true_minus_false"].eigenvalues[orders["true_minus_false"][0]]),
        top_only=float(((top_only > 0).long() == y).double().mean()),
        top_only_eigenvalue=float(free.eigenvalues[0]),
        top_only_calibrated=float(((top_term(h) > thresholds[-2]).long() == y).double().mean()),
        top_only_threshold=float(thresholds[-2]),
        top_only_linear_calibrated=float(((kept_terms(h) > thresholds[-1]).long() == y).double().mean()),
        top_only_linear_threshold=float(thresholds[-1]),
        trained_offset=float(B[-1, -1]),
        true_minus_false_calibrated=accuracy(forms["true_minus_false"] > thresholds[None, :-2]),
        constant_answer=constant_answer,
        constant_baseline=float((y == constant_answer).double().mean()),
        calibration_set=calibration_set,
        class_k1_true_share=float((forms["true"][:, 1] > forms["false"][:, 1]).double().mean()),
    )


def smallest_k_within(curves: TruncationCurves, mode: str, tolerance: float) -> int | None:
    """The fewest eigenvectors whose accuracy in `mode` is within `tolerance` of the full model's
    (None if no k is)."""
    close = np.nonzero(curves.accuracy(mode) >= curves.full_model - tolerance)[0]
    return int(curves.k[close[0]]) if len(close) else None
