"""Eigendecomposition of an interaction matrix, and its eigenvectors seen as images.

B is symmetric, so B = sum_i lambda_i v_i v_i^T with orthonormal v_i, and for an input x

    x~^T W_e'^T B W_e' x~ = sum_i lambda_i (v_i . W_e' x~)^2 = sum_i lambda_i (u_i . x~)^2,

with u_i = W_e'^T v_i (785 values: a 28x28 image plus the constant coordinate). A large positive
lambda_i makes inputs that look like +/-u_i raise the output; a negative one lowers it. The sign
of an eigenvector is arbitrary, only the pattern (and |cos|) is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.data import to_float


@dataclass(frozen=True)
class Eigen:
    eigenvalues: torch.Tensor  # (H+1,) descending
    vectors: torch.Tensor  # (H+1, H+1) row i = eigenvector i in the augmented hidden space
    pixel_vectors: torch.Tensor  # (H+1, 785) row i = W_e'^T v_i: 784 pixels + constant coordinate

    def images(self) -> torch.Tensor:
        """(H+1, 28, 28) pixel part of every eigenvector."""
        return self.pixel_vectors[:, :-1].reshape(-1, 28, 28)


def decompose(B: torch.Tensor, W_e_aug: torch.Tensor) -> Eigen:
    """eigh of symmetric B (H+1, H+1), sorted by descending eigenvalue, projected to pixels."""
    values, vectors = torch.linalg.eigh(B)  # ascending; columns are eigenvectors
    values, vectors = values.flip(0), vectors.flip(1).T  # descending; rows are eigenvectors
    return Eigen(values, vectors, vectors @ W_e_aug)


def linear_term_image(B: torch.Tensor, W_e: torch.Tensor) -> torch.Tensor:
    """(28, 28) the linear (bias) term of the form: W_e^T (2 B[:-1, -1]), one weight per pixel."""
    return (W_e.double().T @ (2 * B[:-1, -1])).reshape(28, 28)


def centered(image: torch.Tensor) -> torch.Tensor:
    """uint8 (28, 28) image -> float64 (784,) pixels in [0, 1] minus their mean."""
    x = to_float(image).double()
    return x - x.mean()


def cos_with_centered_target(pixel_vectors: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|cos| between each eigenvector's pixel part (N, 785 or 784) and target - mean(target)."""
    return F.cosine_similarity(pixel_vectors[:, :784], centered(target)[None], dim=1).abs()
