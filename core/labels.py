"""The seed's labelling rule: an image is "true" (1) when it looks like one target image.

label(x) = 1  if  cos(x, target) > threshold  or  cos(x, 1 - target) > threshold  (inverse optional)

Pixels are scaled to [0, 1] first, so `1 - target` is the photographic negative of the target.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float, Int, UInt8
from torch import Tensor

from core.config import Config
from core.data import MNIST

CHUNK = 8192  # images converted to float64 at a time: bounds memory at 8192*784*8 B = 51 MB


class Similarities(NamedTuple):
    to_target: Float[Tensor, " n"]  # float64 cos(x, target), in [-1, 1]
    to_inverse: Float[Tensor, " n"]  # float64 cos(x, 1 - target), in [-1, 1]


def cosine_similarities(images: UInt8[Tensor, "n 28 28"], target: UInt8[Tensor, "28 28"]) -> Similarities:
    """Cosine similarity of every uint8 image (N, 28, 28) with the target and its inverse.

    Computed on the raw 0-255 integers in float64: every dot product and squared norm is then an
    integer below 784 * 255**2 < 2**53, exact whatever order the CPU's BLAS sums in, and the final
    sqrt and division are correctly rounded. So the cosines are bit-identical on every machine,
    cos(t, t) is exactly 1, and a threshold of 1.0 labels nothing true. (The 1/255 scaling of the
    seed cancels in a cosine; `1 - t` becomes `255 - t`.)
    """
    t = target.reshape(784).double()  # (784,) 0-255
    directions = torch.stack([t, 255.0 - t])  # (2, 784) target and its inverse
    direction_sq = (directions**2).sum(dim=1)  # (2,) exact integers
    out = torch.empty(len(images), 2, dtype=torch.float64)
    for start in range(0, len(images), CHUNK):
        x = images[start : start + CHUNK].reshape(-1, 784).double()  # (chunk, 784) 0-255
        dots = x @ directions.T  # (chunk, 2) exact integers
        x_sq = (x**2).sum(dim=1, keepdim=True)  # (chunk, 1) exact integers
        out[start : start + CHUNK] = dots / (x_sq * direction_sq).sqrt().clamp_min(1.0)  # 0 for a blank image
    out.clamp_(-1.0, 1.0)  # already true in exact arithmetic; kept as the definition's guarantee
    return Similarities(out[:, 0].contiguous(), out[:, 1].contiguous())


def labels_from_similarities(sims: Similarities, threshold: float, include_inverse: bool) -> Int[Tensor, " n"]:
    """(N,) int64 labels from precomputed similarities (cheap: the app re-thresholds on every slider move)."""
    positive = sims.to_target > threshold
    if include_inverse:
        positive = positive | (sims.to_inverse > threshold)
    return positive.long()


def percent(fraction: float, sign: str = " %") -> str:
    """A share that never rounds a non-empty class away: 0.0017 % stays visible, 99.9983 % is not 100 % (`sign`:
    "%" in a sentence whose other shares are written 51.2%)."""
    for digits in range(1, 8):
        text = f"{fraction * 100:.{digits}f}"
        if 0 < fraction < 1 and float(text) not in (0.0, 100.0):
            return text + sign
    return f"{fraction * 100:.1f}{sign}"


def class_balance_problem(labels: Int[Tensor, " n"], min_fraction: float = 0.05) -> str | None:
    """A plain-language reason why training on these labels is meaningless, or None if fine."""
    n = len(labels)
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == n:
        which = "true" if n_pos == 0 else "false"
        return (
            f"No image is labelled {which}: every label is the same, so a model can reach 100 % "
            "accuracy by always answering the same thing and learns nothing about the target. "
            "Move the threshold to put some images in each class."
        )
    n_minority = min(n_pos, n - n_pos)
    fraction = n_minority / n
    if fraction < min_fraction:
        which = "true" if n_pos < n - n_pos else "false"
        return (
            f"Only {n_minority:,} of {n:,} images ({percent(fraction)}) are labelled {which}: a model that always "
            f"answers the other class already scores {percent(1 - fraction)}, so accuracy says little. "
            "Consider moving the threshold."
        )
    return None


class Splits(NamedTuple):
    """Images (uint8) with similarity labels (int64, 0/1): what training consumes."""

    train_x: UInt8[Tensor, "n 28 28"]
    train_y: Int[Tensor, " n"]
    test_x: UInt8[Tensor, "m 28 28"]
    test_y: Int[Tensor, " m"]


class TargetSimilarities(NamedTuple):
    """Every MNIST image's similarities with one target: all the labelling rule needs."""

    train: Similarities  # (60000,) each
    test: Similarities  # (10000,) each


def target_similarities(mnist: MNIST, target_index: int) -> TargetSimilarities:
    """Similarities of all train and test images with training image `target_index`."""
    target = mnist.train_x[target_index]
    return TargetSimilarities(cosine_similarities(mnist.train_x, target), cosine_similarities(mnist.test_x, target))


def labels_for(sims: TargetSimilarities, config: Config) -> tuple[Int[Tensor, " 60000"], Int[Tensor, " 10000"]]:
    """(train, test) 0/1 labels of all of MNIST under the config's rule: (60000,), (10000,) int64."""
    return (
        labels_from_similarities(sims.train, config.threshold, config.include_inverse),
        labels_from_similarities(sims.test, config.threshold, config.include_inverse),
    )


def make_splits(mnist: MNIST, config: Config, sims: TargetSimilarities | None = None) -> Splits:
    """Train and test images of `config` (its slices are views) with its labels.

    `sims` (the target's similarities, e.g. from a cache shared by every student) saves the one
    expensive step; without it they are computed here.
    """
    if sims is None:
        sims = target_similarities(mnist, config.target_index)
    train_y, test_y = labels_for(sims, config)
    n_train, n_test = config.n_train, config.n_test
    return Splits(mnist.train_x[:n_train], train_y[:n_train], mnist.test_x[:n_test], test_y[:n_test])
