"""Everything the lab computes and says about one model, as JSON: `python -m core.reproduce analyze PATH`.

`summarize` is what a training run's JSON holds about its model (the reconstruction error and, per
direction and view, the eigenvalues, the top eigenvector's |cos| with the centred target and the
spectrum's concentration, core.spectrum). `analyze` adds, for a saved model and without training:
truncation's accuracies (with the trained offset, with the threshold refit on the training images, and
the constant answer's), and `findings`: every sentence the pages would state about this model, each
with the numbers behind it, so any checkpoint can be audited from the command line.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from core import findings
from core.config import Config
from core.data import MNIST, to_float
from core.directions import DIRECTIONS, VIEWS
from core.eigen import cos_with_centered_target, decompose
from core.explain import contribution_sizes, explain
from core.labels import labels_for, make_splits, target_similarities
from core.model import BilinearMLP
from core.spectrum import concentration_of
from core.tensor import reconstruction_error
from core.train import EpochMetrics
from core.truncation import smallest_k_within, truncation_curves

TOLERANCE = 0.005  # "as good as the full model": the Truncation page's half a percentage point
EXPLAINED_IMAGES = 2000  # test images over which the contributions' sizes are averaged


def summarize(model: BilinearMLP, mnist: MNIST, config: Config, n_check: int = 1000) -> dict:
    """Reconstruction error on test images and, per direction, eigenvalues, top-vector |cos| and the spectrum's
    concentration (the augmented matrix at the top level, the bias-free block under "bias_free")."""
    target = mnist.train_x[config.target_index]

    def spectrum(name: str, view: str) -> dict[str, Any]:
        eig = decompose(model, name, view)
        return {
            "eigenvalues": eig.eigenvalues.tolist(),
            "top_cos_centered_target": cos_with_centered_target(eig.pixel_vectors[:1], target).item(),
            **concentration_of(eig).to_dict(),
        }

    directions = {
        name: {**spectrum(name, "augmented"), "bias_free": spectrum(name, "bias_free")} for name in DIRECTIONS
    }
    return {
        "reconstruction_max_abs_err": reconstruction_error(model, to_float(mnist.test_x[:n_check])),
        "directions": directions,
    }


def _numbers(finding: Any) -> dict[str, Any]:
    """A finding's fields as JSON values."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(finding).items()}


def _entry(page: str, name: str, finding: Any, **where: Any) -> dict[str, Any]:
    return {"page": page, "finding": name, **where, "sentences": finding.sentences(), "numbers": _numbers(finding)}


@torch.no_grad()
def analyze(model: BilinearMLP, config: Config, history: list[EpochMetrics], mnist: MNIST) -> dict[str, Any]:
    """What a training run's JSON holds for this model, plus truncation and every finding (see module doc)."""
    start = time.perf_counter()
    sims = target_similarities(mnist, config.target_index)
    splits = make_splits(mnist, config, sims)
    test_y = labels_for(sims, config)[1]  # the pages evaluate on all 10 000 test images
    target = mnist.train_x[config.target_index]
    eig = {(d, v): decompose(model, d, v) for d in DIRECTIONS for v in VIEWS}

    curves = truncation_curves(model, mnist.test_x, test_y, train=(splits.train_x, splits.train_y))
    truncation = {
        "n_images": curves.n_images,
        "full_model": curves.full_model,
        "constant_answer": "true" if curves.constant_answer else "false",
        "constant_baseline": curves.constant_baseline,
        "calibration_set": curves.calibration_set,
        "top_only_trained_offset": curves.top_only,
        "top_only_calibrated": curves.top_only_calibrated,
        "top_only_threshold": curves.top_only_threshold,
        "top_only_linear_calibrated": curves.top_only_linear_calibrated,
        "top_only_linear_threshold": curves.top_only_linear_threshold,
        "trained_offset": curves.trained_offset,
        "class_logits": curves.class_logits.tolist(),
        "true_minus_false": curves.true_minus_false.tolist(),
        "true_minus_false_calibrated": curves.true_minus_false_calibrated.tolist(),
        "k_needed": smallest_k_within(curves, "true_minus_false", TOLERANCE),
        "k_needed_calibrated": smallest_k_within(curves, "true_minus_false_calibrated", TOLERANCE),
        "tolerance": TOLERANCE,
    }

    stated = []
    for d, info in DIRECTIONS.items():
        aug, free = eig[(d, "augmented")], eig[(d, "bias_free")]
        stated.append(
            _entry("eigenvectors", "target", findings.target_finding(aug, free, target, info.name), direction=d)
        )
        if float(aug.bias_vector.norm()) > 0:
            stated.append(_entry("eigenvectors", "bias_pair", findings.bias_pair(aug, free, target), direction=d))
    stated.append(
        _entry("eigenvectors", "figure_code", findings.figure_code_finding(eig[("true", "augmented")], target))
    )
    stated.append(_entry("truncation", "truncation", findings.truncation_finding(curves, TOLERANCE)))

    # Explain: which terms are large for every input, and the first test image's split as an example
    aug = eig[("true_minus_false", "augmented")]
    pair = (
        findings.bias_pair(aug, eig[("true_minus_false", "bias_free")], target)
        if float(aug.bias_vector.norm()) > 0
        else None
    )
    sizes = contribution_sizes(aug, mnist.test_x[:EXPLAINED_IMAGES], model.W_e)
    example = explain(model, mnist.test_x[0], "true_minus_false", aug)
    stated.append(
        _entry(
            "explain",
            "contributions",
            findings.contribution_finding(example.contributions, pair),
            direction="true_minus_false",
            image="test #0",
        )
    )
    members = list(pair.indices) if pair is not None and pair.is_biases_pair else []
    rest = np.delete(sizes, members)
    explain_sizes = {
        "images": min(EXPLAINED_IMAGES, len(mnist.test_x)),
        "mean_abs_contribution": sizes.tolist(),
        "biases_pair": members,
        "biases_pair_mean_abs": [float(sizes[i]) for i in members],
        "others_median_mean_abs": float(np.median(rest)),
    }

    last = history[-1] if history else None
    result = {
        "config": config.to_dict(),
        "preset": None,  # a checkpoint does not record its preset or training loop
        "loop": None,
        "val_acc": last.val_acc if last else None,
        "train_acc": last.train_acc if last else None,
        "positive_fraction": splits.train_y.float().mean().item(),
        "seconds": None,  # this analysis, set below
        "train_seconds": last.seconds if last else None,  # the training loop, as recorded in the checkpoint
        **summarize(model, mnist, config),
        "history": [m.to_dict() for m in history],
        "truncation": truncation,
        "explain": explain_sizes,
        "findings": stated,
    }
    result["seconds"] = time.perf_counter() - start
    return result
