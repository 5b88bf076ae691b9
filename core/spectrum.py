"""How concentrated a spectrum is: the paper's "one high positive eigenvalue; the rest are (close to) zero".

§4.3 of Pearce et al. (2025) says the True − False matrix "consistently reveals one high positive
eigenvalue; the rest are (close to) zero", and the Figure 6 caption says the other features
disappear with more regularisation. Whether the top eigenvector *looks like* the target (|cos|) is one
question; whether it is *alone* is another, and weight decay mostly answers the second. For a
symmetric B = Σ_i λ_i v_i v_iᵀ the squared Frobenius norm is ||B||²_F = Σ_i λ_i², so λ_i² / Σ λ² is the
share of the matrix that eigenvector i carries:

- `top_energy_share`: the top (most positive) eigenvalue's share, λ_0² / Σ λ²;
- `eigenvectors_for_90pct`: how many eigenvectors, ranked by |λ|, it takes for their λ² to reach
  90 % of Σ λ² (1 = one spike; H = spread over everything).

Both are computed per direction and view from `core.eigen.decompose` (`concentration`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from core.directions import Direction, View
from core.eigen import Eigen, decompose
from core.model import BilinearMLP

ENERGY_TARGET = 0.9  # "how many eigenvectors carry 90 % of Σλ²"


def top_energy_share(eigenvalues: Float[Tensor, " n"]) -> float:
    """λ_max² / Σ λ² with λ_max the most positive eigenvalue (0 if it is not positive, or B = 0)."""
    squares = eigenvalues.double() ** 2
    total = float(squares.sum())
    top = float(eigenvalues.max())
    if total == 0.0 or top <= 0.0:
        return 0.0
    return top * top / total


def eigenvectors_for(eigenvalues: Float[Tensor, " n"], share: float = ENERGY_TARGET) -> int:
    """The fewest eigenvectors, ranked by |λ|, whose λ² add up to at least `share` of Σ λ² (0 if B = 0)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    squares = torch.sort(eigenvalues.double() ** 2, descending=True).values  # ranked by |λ|
    total = float(squares.sum())
    if total == 0.0:
        return 0
    reached = torch.nonzero(squares.cumsum(0) >= share * total).flatten()
    return int(reached[0]) + 1 if len(reached) else len(squares)  # rounding may leave the last sum a hair short


def eigenvectors_for_90pct(eigenvalues: Float[Tensor, " n"]) -> int:
    """How many eigenvectors (largest |λ| first) reach 90 % of Σ λ²."""
    return eigenvectors_for(eigenvalues, ENERGY_TARGET)


@dataclass(frozen=True)
class Concentration:
    """One direction and view of a model: how much of the matrix its top eigenvector is."""

    direction: Direction
    view: View
    top_energy_share: float  # λ_0² / Σ λ² (λ_0 the most positive eigenvalue)
    eigenvectors_for_90pct: int  # fewest eigenvectors by |λ| reaching 90 % of Σ λ²
    n: int  # eigenvectors in all (H or H + 1)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "top_energy_share": self.top_energy_share,
            "eigenvectors_for_90pct": self.eigenvectors_for_90pct,
            "n_eigenvectors": self.n,
        }

    def sentence(self) -> str:
        """What the Eigenvectors page says under the spectrum; each clause checks its premise (a positive top
        eigenvalue, a non-zero matrix) and "1 of n … carries", not "carry"."""
        if self.eigenvectors_for_90pct == 0:
            return "This matrix is zero: no eigenvector carries any of it."
        k = self.eigenvectors_for_90pct
        spread = f"{k} of {self.n} eigenvectors (largest |λ| first) {'carries' if k == 1 else 'carry'} 90 %"
        if self.top_energy_share > 0.0:
            return f"The top eigenvalue carries {self.top_energy_share:.0%} of Σλ²; {spread} of it."
        return f"No eigenvalue is positive; {spread} of Σλ²."


def concentration_of(eigen: Eigen) -> Concentration:
    """The concentration of one decomposition (core.eigen.decompose)."""
    values = eigen.eigenvalues
    return Concentration(
        eigen.direction, eigen.view, top_energy_share(values), eigenvectors_for_90pct(values), len(values)
    )


def concentration(model: BilinearMLP, direction: Direction, view: View) -> Concentration:
    """decompose -> concentration_of."""
    return concentration_of(decompose(model, direction, view))
