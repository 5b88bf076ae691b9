"""The bias-augmented interaction matrices B_a that make the model's logits exactly quadratic.

Append a constant 1 to the hidden vector: h~ = [h, 1]. Then W_l h + b_l = W_l' h~ with
W_l' = [[W_l, b_l], [0, 1]] (likewise W_r'), and the extra hidden unit computes 1 * 1 = 1, which
the head adds once with W_u' = [W_u, 1]. With W_e' = diag(W_e, 1) and x~ = [x, 1]:

    logit_a(x) + 1 = x~^T W_e'^T B_a W_e' x~,   B_a = sum_h W_u'[a, h] W_l'[h, :] (x) W_r'[h, :]

B_a is symmetrised, (B + B^T)/2, which leaves every quadratic form unchanged. The paper's
"True - False" direction is B_1 - B_0, whose form is exactly logit_1 - logit_0 (the +1s cancel).
Everything here is float64: the matrices are tiny (65 x 65) and the identity then holds to ~1e-12.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import einsum
from jaxtyping import Float, Int
from torch import Tensor

from core.directions import DIRECTIONS, Direction
from core.model import BilinearMLP


@dataclass(frozen=True)
class AugmentedWeights:
    W_e: Float[Tensor, "h1 785"]  # diag(W_e, 1), h1 = d_hidden + 1
    W_l: Float[Tensor, "h1 h1"]  # [[W_l, b_l], [0, 1]]
    W_r: Float[Tensor, "h1 h1"]  # [[W_r, b_r], [0, 1]]
    W_u: Float[Tensor, "cls h1"]  # [W_u, 1]


def _augment_bilinear(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = torch.block_diag(W, torch.ones(1, 1, dtype=W.dtype))
    out[:-1, -1] = b
    return out


@torch.no_grad()
def augment(model: BilinearMLP) -> AugmentedWeights:
    """The bias-augmented weights W_e', W_l', W_r', W_u' (float64 copies)."""
    W_e, W_u = model.W_e.double(), model.W_u.double()
    return AugmentedWeights(
        W_e=torch.block_diag(W_e, torch.ones(1, 1, dtype=W_e.dtype)),
        W_l=_augment_bilinear(model.W_l.double(), model.b_l.double()),
        W_r=_augment_bilinear(model.W_r.double(), model.b_r.double()),
        W_u=torch.cat([W_u, torch.ones(W_u.shape[0], 1, dtype=W_u.dtype)], dim=1),
    )


def interaction_matrices(aug: AugmentedWeights) -> Float[Tensor, "cls h1 h1"]:
    """(C, H+1, H+1) symmetrised B_a for every output class a."""
    B = einsum(aug.W_u, aug.W_l, aug.W_r, "cls hid, hid in1, hid in2 -> cls in1 in2")
    return 0.5 * (B + B.mT)


def direction_matrix(B: Float[Tensor, "cls h1 h1"], direction: Direction) -> Float[Tensor, "h1 h1"]:
    """Pick B_1, B_0 or B_1 - B_0 out of the (2, H+1, H+1) stack."""
    if direction == "true":
        return B[1]
    if direction == "false":
        return B[0]
    if direction == "true_minus_false":
        return B[1] - B[0]
    raise ValueError(f"unknown direction {direction!r}; choose one of {list(DIRECTIONS)}")


@dataclass(frozen=True)
class InteractionTensor:
    """A model's bias-augmented weights and its symmetrised interaction matrices, float64."""

    weights: AugmentedWeights
    B: Float[Tensor, "cls h1 h1"]  # symmetrised B_a for every class a

    def direction(self, direction: Direction) -> Float[Tensor, "h1 h1"]:
        """(H+1, H+1) B_1, B_0 or B_1 - B_0."""
        return direction_matrix(self.B, direction)


@torch.no_grad()
def interaction_tensor(model: BilinearMLP) -> InteractionTensor:
    """augment -> interaction_matrices: the whole construction of this module in one call."""
    weights = augment(model)
    return InteractionTensor(weights, interaction_matrices(weights))


def augment_inputs(x: Float[Tensor, "n 784"]) -> Float[Tensor, "n 785"]:
    """(N, 784) pixels -> (N, 785) float64 x~ = [x, 1]."""
    x = x.reshape(len(x), -1).double()
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def quadratic_form(
    B: Float[Tensor, "h1 h1"] | Float[Tensor, "cls h1 h1"], W_e_aug: Float[Tensor, "h1 785"], x: Float[Tensor, "n 784"]
) -> Float[Tensor, " n"] | Float[Tensor, "n cls"]:
    """x~^T W_e'^T B W_e' x~ for a batch of pixel vectors x (N, 784); B is (H+1, H+1) or (C, H+1, H+1)."""
    h = augment_inputs(x) @ W_e_aug.T  # (N, H+1): the augmented hidden vector [W_e x, 1]
    if B.ndim == 2:
        return einsum(h, B, h, "n in1, in1 in2, n in2 -> n")
    return einsum(h, B, h, "n in1, cls in1 in2, n in2 -> n cls")


@torch.no_grad()
def logits64(model: BilinearMLP, x: Float[Tensor, "n 784"]) -> Float[Tensor, "n cls"]:
    """The model's logits (N, C) computed in float64 on pixels x (N, 784), without touching the model."""
    params = {name: p.double() for name, p in model.named_parameters()}  # never mutate a shared model
    return torch.func.functional_call(model, params, (x.reshape(len(x), -1).double(),))


@torch.no_grad()
def reconstruction_error(model: BilinearMLP, x: Float[Tensor, "n 784"]) -> float:
    """max |x~^T W_e'^T B_a W_e' x~ - (logit_a(x) + 1)| over the batch x (N, 784) and both classes.

    The model's logits are evaluated in float64 too, so the number measures the identity itself,
    not float32 rounding in the forward pass.
    """
    tensor = interaction_tensor(model)
    quadratic = quadratic_form(tensor.B, tensor.weights.W_e, x)  # (N, C)
    return (quadratic - (logits64(model, x) + 1)).abs().max().item()


@torch.no_grad()
def logit_check(model: BilinearMLP, x: Float[Tensor, "n 784"], labels: Int[Tensor, " n"]) -> dict[str, list]:
    """Per image of pixels x (N, 784): logit_a + 1 from the forward pass beside x~^T W_e'^T B_a W_e' x~.

    Both in float64, as in `reconstruction_error`, so the columns agree to ~1e-12 and any visible
    difference would be a real error in the construction. Columns by name, for a table.
    """
    tensor = interaction_tensor(model)
    forms = quadratic_form(tensor.B, tensor.weights.W_e, x)  # (N, 2)
    logits = logits64(model, x)  # (N, 2)
    return {
        "label": labels.tolist(),
        "logit₀ + 1": (logits[:, 0] + 1).tolist(),
        "x̃ᵀB₀x̃": forms[:, 0].tolist(),
        "logit₁ + 1": (logits[:, 1] + 1).tolist(),
        "x̃ᵀB₁x̃": forms[:, 1].tolist(),
        "max |difference|": (forms - (logits + 1)).abs().amax(dim=1).tolist(),
    }
