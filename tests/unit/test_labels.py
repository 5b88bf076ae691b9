"""core.labels against the seed's formula, written out directly."""

import pytest
import torch
import torch.nn.functional as F

from core.config import Config
from core.labels import class_balance_problem, cosine_similarities, labels_from_similarities, make_splits


def seed_cosines(x_uint8, target_uint8):
    """The notebook's make_label_one_similarity, verbatim in spirit (float32, as the seed computes it)."""
    x = x_uint8.float().flatten(1) / 255
    t = target_uint8.float().flatten()[None] / 255
    return F.cosine_similarity(x, t), F.cosine_similarity(x, 1 - t)


@pytest.mark.parametrize("threshold", [0.3, 0.4, 0.5, 0.7])
def test_labels_match_the_seed_rule(mnist, threshold):
    """Same labels as the seed's float32 rule, except where float32 rounding (which differs between
    CPUs) puts a cosine within 1e-6 of the threshold: there the exact computation decides."""
    x, target = mnist.train_x[:20000], mnist.train_x[6]
    pos, neg = seed_cosines(x, target)
    seed_labels = ((pos > threshold) | (neg > threshold)).long()
    ours = labels_from_similarities(cosine_similarities(x, target), threshold, include_inverse=True)
    on_the_edge = ((pos - threshold).abs() < 1e-6) | ((neg - threshold).abs() < 1e-6)
    assert torch.equal(ours[~on_the_edge], seed_labels[~on_the_edge])
    assert on_the_edge.sum() <= 2


def test_similarities_match_torch_cosine(mnist):
    x, target = mnist.test_x[:500], mnist.train_x[6]
    sims = cosine_similarities(x, target)
    xf, t = x.float().flatten(1) / 255, target.float().flatten()[None] / 255
    assert torch.allclose(sims.to_target, F.cosine_similarity(xf, t).double(), atol=1e-6)
    assert torch.allclose(sims.to_inverse, F.cosine_similarity(xf, 1 - t).double(), atol=1e-6)


def test_target_is_its_own_positive(mnist):
    sims = cosine_similarities(mnist.train_x[6:7], mnist.train_x[6])
    assert sims.to_target.item() == pytest.approx(1.0, abs=1e-6)


def test_cosines_are_exact_so_the_rule_has_no_rounding_edges(mnist):
    """Integer dot products in float64 are exact on every CPU: the target's cosine with itself is
    exactly 1, none exceeds 1, and the edges of the rule hold (tau = 1 labels nothing true)."""
    target = mnist.train_x[6]
    sims = cosine_similarities(mnist.train_x, target)
    assert sims.to_target[6].item() == 1.0
    assert sims.to_target.max().item() <= 1.0 and sims.to_inverse.max().item() <= 1.0
    assert sims.to_target.min().item() >= 0.0  # pixels are never negative
    assert labels_from_similarities(sims, 1.0, include_inverse=True).sum().item() == 0
    blank = torch.zeros(1, 28, 28, dtype=torch.uint8)  # no ink at all: cosine 0, never NaN
    assert cosine_similarities(blank, target).to_target.item() == 0.0
    again = cosine_similarities(mnist.train_x[:1000].flip(0), target)  # another order, other chunks
    assert torch.equal(again.to_target.flip(0), sims.to_target[:1000])


def test_inverse_toggle_only_removes_positives(mnist):
    sims = cosine_similarities(mnist.train_x, mnist.train_x[6])
    with_inverse = labels_from_similarities(sims, 0.4, include_inverse=True)
    without = labels_from_similarities(sims, 0.4, include_inverse=False)
    assert (without <= with_inverse).all()
    assert without.sum() < with_inverse.sum()


def test_seed_positive_fraction(mnist):
    splits = make_splits(mnist, Config())
    assert splits.train_y.float().mean().item() == pytest.approx(0.4624, abs=1e-3)
    assert len(splits.train_x) == 60000 and len(splits.test_y) == 10000


def test_slices(mnist):
    splits = make_splits(mnist, Config(n_train=100, n_test=50, batch_size=64))
    assert splits.train_x.shape == (100, 28, 28) and splits.test_y.shape == (50,)


def test_class_balance_messages():
    assert class_balance_problem(torch.tensor([0, 1] * 50)) is None
    assert "No image is labelled true" in class_balance_problem(torch.zeros(100, dtype=torch.long))
    assert "No image is labelled false" in class_balance_problem(torch.ones(100, dtype=torch.long))
    assert "Only 2 of 100 images (2.0 %) are labelled true" in class_balance_problem(torch.tensor([1] * 2 + [0] * 98))
    one = class_balance_problem(torch.tensor([1] + [0] * 59_999))  # counted, never rounded away to "0.0 %"
    assert "Only 1 of 60,000 images (0.002 %)" in one and "scores 99.998 %" in one
