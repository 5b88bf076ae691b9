"""The names of what can be decomposed (pure Python: links read them before torch loads).

Directions, the three outputs a quadratic form can stand for:
- "true": B_1, whose form is logit_1 + 1 (the seed notebook plots class 1);
- "false": B_0, logit_0 + 1;
- "true_minus_false": B_1 - B_0, logit_1 - logit_0 (the paper's text for Figure 6).

Views of a direction's matrix (core.eigen.decompose):
- "augmented": the whole bias-augmented (H+1) x (H+1) B: its form is exactly the output;
- "bias_free": the hidden x hidden block B[:-1, :-1]: the quadratic part, without the biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["true", "false", "true_minus_false"]


@dataclass(frozen=True)
class DirectionInfo:
    name: str  # in a sentence: "the True − False matrix"
    label: str  # short, for a control on a projector
    description: str  # one line: which matrix, and where it comes from
    output: str  # what its quadratic form computes


DIRECTIONS: dict[str, DirectionInfo] = {
    "true": DirectionInfo(
        "class 1", "Class 1 (seed)", "B_1, class 1 (similar to the target), as in the seed's plot", "logit₁ + 1"
    ),
    "false": DirectionInfo("class 0", "Class 0", "B_0, class 0 (not similar)", "logit₀ + 1"),
    "true_minus_false": DirectionInfo(
        "True − False", "True − False (paper)", "B_1 − B_0, as in the paper's text for Figure 6", "logit₁ − logit₀"
    ),
}


View = Literal["augmented", "bias_free"]


@dataclass(frozen=True)
class ViewInfo:
    label: str  # short, for a control on a projector
    description: str


VIEWS: dict[str, ViewInfo] = {
    "bias_free": ViewInfo(
        "Bias-free block",
        "B[:-1, :-1], the hidden×hidden part: the quadratic part alone (this lab's view; the paper decomposes "
        "the whole matrix)",
    ),
    "augmented": ViewInfo(
        "Bias-augmented B", "the whole (H+1)×(H+1) B: its form is exactly the output, biases included"
    ),
}
