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

    def accuracy(self, mode: str) -> np.ndarray:
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


@torch.no_grad()
def truncation_curves(model: BilinearMLP, x_uint8: UInt8[Tensor, "n 28 28"], y: Int[Tensor, " n"]) -> TruncationCurves:
    """Accuracy on uint8 images (N, 28, 28) with labels y (N,) for every k = 0 ... H+1."""
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
        return (predict_true.long() == y[:, None]).double().mean(dim=0).numpy()

    free = decompose(model, "true_minus_false", "bias_free")  # (H, H) block: the top eigenvector alone
    B = eigs["true_minus_false"].matrix
    h = h_aug[:, :-1]  # (N, H)
    top_only = free.eigenvalues[0] * (h @ free.vectors[0]) ** 2 + 2 * (h @ B[:-1, -1]) + B[-1, -1]  # (N,)
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
    )


def smallest_k_within(curves: TruncationCurves, mode: str, tolerance: float) -> int | None:
    """The fewest eigenvectors whose accuracy in `mode` is within `tolerance` of the full model's
    (None if no k is)."""
    close = np.nonzero(curves.accuracy(mode) >= curves.full_model - tolerance)[0]
    return int(curves.k[close[0]]) if len(close) else None
