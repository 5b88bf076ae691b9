"""Eigendecomposition of an interaction matrix, and its eigenvectors seen as images.

B is symmetric, so B = sum_i lambda_i v_i v_i^T with orthonormal v_i, and for an input x

    x~^T W_e'^T B W_e' x~ = sum_i lambda_i (v_i . W_e' x~)^2 = sum_i lambda_i (u_i . x~)^2,

with u_i = W_e'^T v_i (785 values: a 28x28 image plus the constant coordinate). A large positive
lambda_i makes inputs that look like +/-u_i raise the output; a negative one lowers it. The sign
of an eigenvector is arbitrary, only the pattern (and |cos|) is meaningful.

`decompose(model, direction, view)` is the one entry every page, script and benchmark calls, like
the authors' `Model.decompose()`: augment -> interaction matrices -> direction -> eigh -> pixels.
Two views of the same matrix:
- "augmented": the whole (H+1, H+1) bias-augmented B of core.tensor; its form is exactly the
  direction's output (logit difference or logit + 1).
- "bias_free": the hidden-by-hidden block B[:-1, :-1], the quadratic part alone (the paper's
  plain bilinear layer without biases). The biases couple the constant coordinate to the vector
  b = B[:-1, -1]; dropping that coupling removes the +/- pair of eigenvalues it creates.
"Top" eigenvector, everywhere in the app: the one with the largest (most positive) eigenvalue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Float, UInt8
from torch import Tensor

from core.data import to_float
from core.directions import VIEWS, View
from core.model import BilinearMLP
from core.tensor import Direction, interaction_tensor


@dataclass(frozen=True)
class Eigen:
    """One symmetric interaction matrix of a model, decomposed (float64, eigenvalues descending)."""

    direction: Direction
    view: View
    matrix: Float[Tensor, "n n"]  # the decomposed matrix: B (n = H+1) or B[:-1, :-1] (n = H)
    eigenvalues: Float[Tensor, " n"]  # descending
    vectors: Float[Tensor, "n n"]  # row i = eigenvector i (in the hidden space of `matrix`)
    pixel_vectors: Float[Tensor, "n 785"]  # row i = W_e'^T [v_i (, 0)]: 784 pixels + constant coordinate

    @property
    def n_bytes(self) -> int:
        """Memory held by its tensors (what a cache of decompositions counts)."""
        return sum(
            t.nelement() * t.element_size() for t in (self.matrix, self.eigenvalues, self.vectors, self.pixel_vectors)
        )

    def images(self) -> Float[Tensor, "n 28 28"]:
        """The pixel part of every eigenvector."""
        return self.pixel_vectors[:, :-1].reshape(-1, 28, 28)

    @property
    def bias_vector(self) -> Float[Tensor, " h"]:
        """b = B[:-1, -1] of the augmented matrix (augmented view only): what the biases couple."""
        if self.view != "augmented":
            raise ValueError("the bias-free view has no bias coupling")
        return self.matrix[:-1, -1]


def eigh_descending(
    matrix: Float[Tensor, "n n"], W_e_aug: Float[Tensor, "h1 785"]
) -> tuple[Float[Tensor, " n"], Float[Tensor, "n n"], Float[Tensor, "n 785"]]:
    """eigh of a symmetric matrix, sorted by descending eigenvalue, rows projected to pixels.

    `matrix` is either the augmented (H+1, H+1) B or its (H, H) hidden block; in the second case
    each eigenvector v is read as [v, 0] in the augmented hidden space before W_e'^T maps it.
    """
    values, vectors = torch.linalg.eigh(matrix)  # ascending; columns are eigenvectors
    values, vectors = values.flip(0), vectors.flip(1).T  # descending; rows are eigenvectors
    return values, vectors, vectors @ W_e_aug[: len(matrix)]


@torch.no_grad()
def decompose(model: BilinearMLP, direction: Direction, view: View = "augmented") -> Eigen:
    """The direction's interaction matrix of `model`, decomposed and mapped to pixels (see module doc)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {list(VIEWS)}")
    tensor = interaction_tensor(model)
    matrix = tensor.direction(direction)  # (H+1, H+1)
    if view == "bias_free":
        matrix = matrix[:-1, :-1]
    values, vectors, pixels = eigh_descending(matrix, tensor.weights.W_e)
    return Eigen(direction, view, matrix, values, vectors, pixels)


def linear_term_image(eigen: Eigen, W_e: Float[Tensor, "h 784"]) -> Float[Tensor, "28 28"]:
    """The linear (bias) term of the augmented form, W_e^T (2 B[:-1, -1]): one weight per pixel."""
    return (W_e.double().T @ (2 * eigen.bias_vector)).reshape(28, 28)


def centered(image: UInt8[Tensor, "28 28"]) -> Float[Tensor, " 784"]:
    """An image as float64 pixels in [0, 1] minus their mean."""
    x = to_float(image).double()
    return x - x.mean()


def cos_with_centered_target(
    pixel_vectors: Float[Tensor, "n _"], target: UInt8[Tensor, "28 28"]
) -> Float[Tensor, " n"]:
    """|cos| between each eigenvector's pixel part (784 or 785 columns) and target - mean(target)."""
    return F.cosine_similarity(pixel_vectors[:, :784], centered(target)[None], dim=1).abs()


class TopEigenvector(NamedTuple):
    image: Float[Tensor, "28 28"]  # pixel part of the top eigenvector u_0, signed to match the target
    cos: float  # |cos(u_0, target - mean)|
    eigenvalue: float  # lambda_0, the largest eigenvalue


def top_eigenvector(eigen: Eigen, target: UInt8[Tensor, "28 28"]) -> TopEigenvector:
    """The top eigenvector as an image, flipped so that it correlates positively with the target.

    An eigenvector's sign is arbitrary; flipped this way, several of them are comparable side by side.
    """
    image = eigen.images()[0]
    sign = 1.0 if float(image.flatten() @ centered(target)) >= 0 else -1.0
    cos = cos_with_centered_target(eigen.pixel_vectors[:1], target)[0]
    return TopEigenvector(sign * image, float(cos), float(eigen.eigenvalues[0]))
