"""Small derived tables the pages show, assembled from core functions (no new science here)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from core.data import to_float
from core.eigen import centered, cos_with_centered_target, decompose
from core.explain import direction_outputs
from core.model import BilinearMLP
from core.tensor import augment, direction_matrix, interaction_matrices, logits64, quadratic_form


@torch.no_grad()
def logit_check(model: BilinearMLP, images: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """Per image: logit_a + 1 from the model's forward pass next to x~^T W_e'^T B_a W_e' x~ (float64).

    The logits are computed in float64, as in core.tensor.reconstruction_error, so the columns
    agree to ~1e-12 and any visible difference would be a real error in the construction.
    """
    x = to_float(images).double()  # (N, 784)
    aug = augment(model)
    forms = quadratic_form(interaction_matrices(aug), aug.W_e, x)  # (N, 2)
    logits = logits64(model, x)  # (N, 2), float64, without touching the (maybe shared) model
    return pd.DataFrame(
        {
            "label": labels.tolist(),
            "logit₀ + 1": (logits[:, 0] + 1).tolist(),
            "x̃ᵀB₀x̃": forms[:, 0].tolist(),
            "logit₁ + 1": (logits[:, 1] + 1).tolist(),
            "x̃ᵀB₁x̃": forms[:, 1].tolist(),
            "max |difference|": (forms - (logits + 1)).abs().amax(dim=1).tolist(),
        }
    )


class TopEigenvector(NamedTuple):
    image: torch.Tensor  # (28, 28) pixel part of the top eigenvector u_0, signed to match the target
    cos: float  # |cos(u_0, target - mean)|
    eigenvalue: float  # lambda_0


@torch.no_grad()
def top_eigenvector(model: BilinearMLP, target: torch.Tensor, direction: str) -> TopEigenvector:
    """The direction's top eigenvector as an image, and its |cos| with the centred target (as step 4).

    An eigenvector's sign is arbitrary; the image is flipped if needed so that it correlates
    positively with the target, which makes several of them comparable side by side.
    """
    aug = augment(model)
    eigen = decompose(direction_matrix(interaction_matrices(aug), direction), aug.W_e)
    image = eigen.images()[0]  # (28, 28)
    sign = 1.0 if float(image.flatten() @ centered(target)) >= 0 else -1.0
    cos = cos_with_centered_target(eigen.pixel_vectors[:1], target)[0]
    return TopEigenvector(sign * image, float(cos), float(eigen.eigenvalues[0]))


class Cancellation(NamedTuple):
    positive: float  # sum of the positive contributions
    negative: float  # sum of the negative contributions
    largest: int  # eigenvector index of the largest positive contribution (-1 if none)
    smallest: int  # eigenvector index of the most negative contribution (-1 if none)


def cancellation(contributions: np.ndarray) -> Cancellation:
    """How much the positive and the negative eigenvector contributions cancel."""
    c = np.asarray(contributions, dtype=np.float64)
    return Cancellation(
        float(c[c > 0].sum()),
        float(c[c < 0].sum()),
        int(np.argmax(c)) if (c > 0).any() else -1,
        int(np.argmin(c)) if (c < 0).any() else -1,
    )


def oriented_images(images: torch.Tensor, projections: np.ndarray) -> list[torch.Tensor]:
    """Eigenvector images flipped so that the input's projection v_i . h~ is positive.

    An eigenvector's sign is arbitrary and its contribution lambda_i (v_i . h~)^2 does not see it;
    flipped this way, blue marks where this input's ink increases |v_i . h~|.
    """
    return [image if p >= 0 else -image for image, p in zip(images, projections, strict=True)]


def smallest_k_within(k: np.ndarray, accuracy: np.ndarray, reference: float, tolerance: float) -> int | None:
    """The fewest eigenvectors whose accuracy is within `tolerance` of the reference (None if never)."""
    close = np.nonzero(np.asarray(accuracy) >= reference - tolerance)[0]
    return int(np.asarray(k)[close[0]]) if len(close) else None


@torch.no_grad()
def margin(model: BilinearMLP, pixels: np.ndarray) -> float:
    """logit_1 - logit_0 for one uint8 (28, 28) image, float64 forward pass: > 0 means class 1 (true)."""
    x = to_float(torch.as_tensor(np.asarray(pixels, dtype=np.uint8)))[None]  # (1, 784)
    return float(direction_outputs(model, x, "true_minus_false")[0])
