"""Explain one input: split a direction's output exactly into per-eigenvector contributions.

For one pixel vector x (784,) let h~ = W_e' x~ = [W_e x, 1] (H+1,) be the augmented hidden vector
and B the direction's symmetric interaction matrix (core.tensor): B_1 ("true"), B_0 ("false") or
B_1 - B_0 ("true_minus_false"). The direction's output is the quadratic form

    out(x) = h~^T B h~  =  logit_1 + 1,  logit_0 + 1,  or  logit_1 - logit_0  respectively.

Two exact ways to split it:

(a) by eigenvector. With B = sum_i lambda_i v_i v_i^T (core.eigen.decompose, lambda descending),

        out(x) = sum_i lambda_i (v_i . h~)^2,

    so contribution_i = lambda_i (v_i . h~)^2 says how much eigenvector i adds (lambda_i > 0) or
    removes (lambda_i < 0). The sign of v_i is irrelevant here: it enters squared.

(b) by degree in h = W_e x. Writing h~ = [h, 1] and splitting B into blocks,

        out(x) = h^T B[:-1, :-1] h  +  2 B[:-1, -1] . h  +  B[-1, -1]
                 (quadratic)           (linear)            (constant)

    the last two come from the biases of the bilinear layer (and the +1 of the head).

Both splits are compared with the model's own forward pass (in float64), so `error` measures
the identity itself: ~1e-12, not float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from jaxtyping import Float, Int, UInt8
from torch import Tensor

from core.data import to_float
from core.eigen import Eigen, decompose
from core.model import BilinearMLP
from core.tensor import DIRECTIONS, Direction, logits64


@dataclass(frozen=True)
class Explanation:
    eigen: Eigen  # the direction's augmented decomposition the split uses (eigenvalues descending)
    projections: np.ndarray  # (H+1,) v_i . h~
    contributions: np.ndarray  # (H+1,) lambda_i (v_i . h~)^2; sums to the output
    quadratic: float  # h^T B[:-1, :-1] h
    linear: float  # 2 B[:-1, -1] . h
    constant: float  # B[-1, -1]
    model_output: float  # the same quantity from the model's forward pass (float64)

    @property
    def direction(self) -> Direction:
        return self.eigen.direction

    @property
    def eigenvalues(self) -> np.ndarray:
        """(H+1,) lambda_i, descending."""
        return self.eigen.eigenvalues.numpy()

    @property
    def total(self) -> float:
        """sum_i lambda_i (v_i . h~)^2: the output as the eigenvectors explain it."""
        return float(self.contributions.sum())

    @property
    def error(self) -> float:
        """total - model_output: float64 round-off only (see `rounding_bound`)."""
        return self.total - self.model_output

    @property
    def rounding_bound(self) -> float:
        """How large float64 round-off can make `error` here: eps * n * (sum |terms| + |output|).

        A sum of n terms in float64 is off by at most about n * eps * sum |terms| (the forward pass
        adds as much again), so an |error| below this is round-off, and one above it is a real mistake.
        """
        n = len(self.contributions)
        return float(np.finfo(np.float64).eps * n * (np.abs(self.contributions).sum() + abs(self.model_output)))

    def exactness(self) -> str:
        """One sentence on |error|, compared with the round-off bound computed for this input."""
        if abs(self.error) <= self.rounding_bound:
            return (
                f"|Σ − model| = {abs(self.error):.1e} is below the float64 round-off bound for these numbers "
                f"(ε·n·Σ|terms| = {self.rounding_bound:.1e}): the split is exact, up to rounding."
            )
        return (
            f"|Σ − model| = {abs(self.error):.1e} exceeds the float64 round-off bound {self.rounding_bound:.1e}: "
            "the split does not add up, which is a bug."
        )


class TopContributions(NamedTuple):
    indices: np.ndarray  # (k,) eigenvector indices (into the descending-eigenvalue order)
    values: np.ndarray  # (k,) their contributions, largest |contribution| first


def _pixels(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One image as float64 (784,) pixels in [0, 1]; uint8 input (0-255) is scaled by 1/255."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.numel() != 784:
        raise ValueError(f"expected one 28x28 image (784 pixels), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.reshape(784).double() / 255.0  # float64 division: no float32 round-off
    x = x.reshape(784).double()
    if not torch.isfinite(x).all():
        raise ValueError("the image contains NaN or infinite pixels")
    return x


@torch.no_grad()
def direction_outputs(model: BilinearMLP, x: Float[Tensor, "n 784"], direction: Direction) -> Float[Tensor, " n"]:
    """The direction's output from the forward pass, in float64, for pixels x (N, 784).

    "true" -> logit_1 + 1, "false" -> logit_0 + 1, "true_minus_false" -> logit_1 - logit_0.
    """
    logits = logits64(model, x)  # (N, 2)
    if direction == "true":
        return logits[:, 1] + 1
    if direction == "false":
        return logits[:, 0] + 1
    if direction == "true_minus_false":
        return logits[:, 1] - logits[:, 0]
    raise ValueError(f"unknown direction {direction!r}; choose one of {list(DIRECTIONS)}")


@torch.no_grad()
def explain(
    model: BilinearMLP, x: np.ndarray | torch.Tensor, direction: Direction, eigen: Eigen | None = None
) -> Explanation:
    """Exact per-eigenvector and quadratic/linear/constant split of one image's output.

    x: one image, (784,) or (28, 28), float pixels in [0, 1] (uint8 0-255 is accepted too).
    eigen: the model's `decompose(model, direction)` if the caller already has it (e.g. cached).
    """
    pixels = _pixels(x)  # (784,)
    if eigen is None:
        eigen = decompose(model, direction)
    elif eigen.direction != direction or eigen.view != "augmented":
        raise ValueError(
            f"explain needs the augmented decomposition of {direction!r}, got {eigen.view} {eigen.direction!r}"
        )
    B = eigen.matrix  # (H+1, H+1)
    W_e = model.W_e.double()  # (H, 784)
    h = W_e @ pixels  # (H,)
    h_aug = torch.cat([h, torch.ones(1, dtype=h.dtype)])  # (H+1,) = [W_e x, 1]
    projections = eigen.vectors @ h_aug  # (H+1,) v_i . h~
    return Explanation(
        eigen=eigen,
        projections=projections.numpy(),
        contributions=(eigen.eigenvalues * projections**2).numpy(),
        quadratic=float(h @ B[:-1, :-1] @ h),
        linear=float(2 * B[:-1, -1] @ h),
        constant=float(B[-1, -1]),
        model_output=float(direction_outputs(model, pixels[None], direction)[0]),
    )


def largest_contributions(contributions: np.ndarray | Explanation, k: int = 5) -> TopContributions:
    """The k eigenvectors with the largest |contribution|, largest first (ties: lower index first)."""
    if isinstance(contributions, Explanation):
        contributions = contributions.contributions
    c = np.asarray(contributions, dtype=np.float64)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    order = np.argsort(-np.abs(c), kind="stable")[:k]
    return TopContributions(order, c[order])


@torch.no_grad()
def misclassified_indices(
    model: BilinearMLP, x_uint8: UInt8[Tensor, "n 28 28"], y: Int[Tensor, " n"], chunk: int = 8192
) -> Int[np.ndarray, " wrong"]:
    """Indices (ascending, int64) of the uint8 images (N, 28, 28) the model gets wrong.

    Uses the ordinary float32 forward pass, as core.train.evaluate does, so the count matches
    the reported accuracy.
    """
    if len(x_uint8) != len(y):
        raise ValueError(f"{len(x_uint8)} images but {len(y)} labels")
    wrong = []
    for start in range(0, len(x_uint8), chunk):
        predictions = model(to_float(x_uint8[start : start + chunk])).argmax(-1)  # (chunk,)
        wrong.append(torch.nonzero(predictions != y[start : start + chunk]).flatten() + start)
    if not wrong:
        return np.zeros(0, dtype=np.int64)
    return torch.cat(wrong).numpy().astype(np.int64)


CANCEL_RATIO = 1.0  # "terms cancel" when the smaller side (positive or negative sum) is at least this times |total|


class Cancellation(NamedTuple):
    positive: float  # sum of the positive contributions
    negative: float  # sum of the negative contributions
    largest: int  # eigenvector index of the largest positive contribution (-1 if none)
    smallest: int  # eigenvector index of the most negative contribution (-1 if none)

    @property
    def total(self) -> float:
        return self.positive + self.negative

    @property
    def cancels(self) -> bool:
        """Terms of both signs are large against the total: each side's sum is at least CANCEL_RATIO x |total|."""
        smaller = min(self.positive, -self.negative)
        return smaller > 0 and smaller >= CANCEL_RATIO * abs(self.total)


def cancellation(contributions: np.ndarray) -> Cancellation:
    """How much the positive and the negative eigenvector contributions cancel."""
    c = np.asarray(contributions, dtype=np.float64)
    return Cancellation(
        float(c[c > 0].sum()),
        float(c[c < 0].sum()),
        int(np.argmax(c)) if (c > 0).any() else -1,
        int(np.argmin(c)) if (c < 0).any() else -1,
    )


@torch.no_grad()
def contribution_sizes(
    eigen: Eigen, x_uint8: UInt8[Tensor, "n 28 28"], W_e: Float[Tensor, "h 784"]
) -> Float[np.ndarray, " h1"]:
    """Mean |lambda_i (v_i . h~)^2| over a batch of uint8 images, per eigenvector of an augmented decomposition:
    which terms are large for every input (the affine part) rather than for some (a pattern present)."""
    if eigen.view != "augmented":
        raise ValueError("contribution sizes need the augmented decomposition")
    W_e = W_e.double()
    h = torch.cat(
        [(x_uint8.reshape(-1, 784).double() @ W_e.T) / 255.0, torch.ones(len(x_uint8), 1, dtype=torch.float64)], dim=1
    )
    return (eigen.eigenvalues * (h @ eigen.vectors.T) ** 2).abs().mean(dim=0).numpy()


def oriented_images(explanation: Explanation, indices: np.ndarray) -> list[Float[Tensor, "28 28"]]:
    """The eigenvectors `indices` as images, flipped so that the input's projection v_i . h~ is positive.

    An eigenvector's sign is arbitrary and its contribution lambda_i (v_i . h~)^2 does not see it;
    flipped this way, blue marks where this input's ink increases |v_i . h~|.
    """
    images = explanation.eigen.images()
    return [images[i] if explanation.projections[i] >= 0 else -images[i] for i in indices]


@torch.no_grad()
def margin(model: BilinearMLP, pixels: UInt8[np.ndarray, "28 28"]) -> float:
    """logit_1 - logit_0 for one uint8 image, float64 forward pass: > 0 means class 1 (true)."""
    x = to_float(torch.as_tensor(np.asarray(pixels, dtype=np.uint8)))[None]  # (1, 784)
    return float(direction_outputs(model, x, "true_minus_false")[0])
