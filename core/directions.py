"""The three outputs a quadratic form can stand for, by name (pure Python: links read them before torch loads).

- "true": B_1, whose form is logit_1 + 1 (the seed notebook plots class 1);
- "false": B_0, logit_0 + 1;
- "true_minus_false": B_1 - B_0, logit_1 - logit_0 (the paper's text for Figure 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["true", "false", "true_minus_false"]


@dataclass(frozen=True)
class DirectionInfo:
    label: str  # short, for a control on a projector
    description: str  # one line: which matrix, and where it comes from
    output: str  # what its quadratic form computes


DIRECTIONS: dict[str, DirectionInfo] = {
    "true": DirectionInfo(
        "Class 1 (seed)", "B_1, class 1 (similar to the target), as in the seed's plot", "logit₁ + 1"
    ),
    "false": DirectionInfo("Class 0", "B_0, class 0 (not similar)", "logit₀ + 1"),
    "true_minus_false": DirectionInfo(
        "True − False (paper)", "B_1 − B_0, as in the paper's text for Figure 6", "logit₁ − logit₀"
    ),
}
