"""Small derived tables the pages show, assembled from core functions (no new science here)."""

from __future__ import annotations

import pandas as pd
import torch

from core.data import to_float
from core.model import BilinearMLP
from core.tensor import augment, interaction_matrices, quadratic_form


@torch.no_grad()
def logit_check(model: BilinearMLP, images: torch.Tensor, labels: torch.Tensor) -> pd.DataFrame:
    """Per image: logit_a + 1 from the model's forward pass next to x~^T W_e'^T B_a W_e' x~ (float64).

    The logits are computed in float64, as in core.tensor.reconstruction_error, so the columns
    agree to ~1e-12 and any visible difference would be a real error in the construction.
    """
    x = to_float(images).double()  # (N, 784)
    aug = augment(model)
    forms = quadratic_form(interaction_matrices(aug), aug.W_e, x)  # (N, 2)
    params = {name: p.double() for name, p in model.named_parameters()}  # a copy: the model may be shared
    logits = torch.func.functional_call(model, params, (x,))  # (N, 2)
    return pd.DataFrame({
        "label": labels.tolist(),
        "logit₀ + 1": (logits[:, 0] + 1).tolist(),
        "x̃ᵀB₀x̃": forms[:, 0].tolist(),
        "logit₁ + 1": (logits[:, 1] + 1).tolist(),
        "x̃ᵀB₁x̃": forms[:, 1].tolist(),
        "max |difference|": (forms - (logits + 1)).abs().amax(dim=1).tolist(),
    })
