"""core.truncation: accuracy with only the top-k eigenvectors, checked against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import to_float
from core.eigen import decompose
from core.model import BilinearMLP
from core.tensor import augment, direction_matrix, interaction_matrices, quadratic_form
from core.train import evaluate
from core.truncation import MODES, order_by_magnitude, smallest_k_within, truncation_curves


def random_model(seed: int, d_hidden: int) -> BilinearMLP:
    torch.manual_seed(seed)
    model = BilinearMLP(d_hidden, d_output=2)
    with torch.no_grad():
        model.bilinear.bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(seed))
    return model.eval()


def random_images(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def truncated_matrix(B: torch.Tensor, k: int) -> torch.Tensor:
    """B_k = sum over the k largest-|lambda| eigenpairs of lambda v v^T, built explicitly."""
    values, vectors = torch.linalg.eigh(B)  # columns are eigenvectors
    keep = torch.argsort(values.abs(), descending=True)[:k]
    return (vectors[:, keep] * values[keep]) @ vectors[:, keep].T


def direct_accuracies(model: BilinearMLP, x_uint8: torch.Tensor, y: torch.Tensor, k: int) -> tuple[float, float]:
    """The slow way: truncate the matrices, evaluate x~^T W_e'^T B_k W_e' x~ image by image batch."""
    aug = augment(model)
    B = interaction_matrices(aug)
    x = to_float(x_uint8)
    forms = {
        name: quadratic_form(truncated_matrix(direction_matrix(B, name), k), aug.W_e, x)
        for name in ("true", "false", "true_minus_false")
    }
    class_acc = ((forms["true"] > forms["false"]).long() == y).double().mean().item()
    tmf_acc = ((forms["true_minus_false"] > 0).long() == y).double().mean().item()
    return class_acc, tmf_acc


@pytest.fixture(scope="module")
def tiny():
    """A tiny random model and unbalanced random labels (30 % class 1, so k = 0 is informative)."""
    model = random_model(11, d_hidden=5)
    x = random_images(400, 11)
    y = (torch.rand(400, generator=torch.Generator().manual_seed(12)) < 0.3).long()
    assert 0.2 < y.double().mean() < 0.4
    return model, x, y


def test_shapes_and_orders(tiny):
    model, x, y = tiny
    c = truncation_curves(model, x, y)
    assert c.k.tolist() == list(range(7))  # 0 ... H+1 with H = 5
    for mode in MODES:
        assert c.accuracy(mode).shape == (7,)
    assert c.n_images == 400
    for name, order in [
        ("true", c.order_true),
        ("false", c.order_false),
        ("true_minus_false", c.order_true_minus_false),
    ]:
        assert sorted(order.tolist()) == list(range(6))
        values = decompose(model, name).eigenvalues.abs().numpy()
        assert (np.diff(values[order]) <= 0).all()
    with pytest.raises(ValueError):
        c.accuracy("nope")


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_matches_direct_computation(tiny, k):
    model, x, y = tiny
    c = truncation_curves(model, x, y)
    class_acc, tmf_acc = direct_accuracies(model, x, y, k)
    assert c.class_logits[k] == pytest.approx(class_acc, abs=1e-12)
    assert c.true_minus_false[k] == pytest.approx(tmf_acc, abs=1e-12)


def test_k_all_is_the_full_model(tiny):
    model, x, y = tiny
    c = truncation_curves(model, x, y)
    with torch.no_grad():
        own = (model(to_float(x)).argmax(-1) == y).double().mean().item()
    assert c.full_model == own
    assert c.class_logits[-1] == c.full_model
    assert c.true_minus_false[-1] == c.full_model


def test_k_zero_predicts_class_zero(tiny):
    model, x, y = tiny
    c = truncation_curves(model, x, y)
    fraction_zero = (y == 0).double().mean().item()
    assert fraction_zero != 0.5  # else "always 0" and "always 1" would score the same
    assert c.class_logits[0] == pytest.approx(fraction_zero)
    assert c.true_minus_false[0] == pytest.approx(fraction_zero)


def test_trained_model(small_run):
    model, _history, splits = small_run
    c = truncation_curves(model, splits.test_x, splits.test_y)
    _, float32_acc = evaluate(model, splits.test_x, splits.test_y)
    assert abs(c.full_model - float32_acc) <= 1 / len(splits.test_y)  # float64 vs float32 forward
    assert c.class_logits[-1] == c.full_model
    assert c.true_minus_false[-1] == c.full_model
    for k in (1, 3):
        class_acc, tmf_acc = direct_accuracies(model, splits.test_x, splits.test_y, k)
        assert c.class_logits[k] == pytest.approx(class_acc, abs=1e-12)
        assert c.true_minus_false[k] == pytest.approx(tmf_acc, abs=1e-12)
    assert c.true_minus_false[0] == pytest.approx((splits.test_y == 0).double().mean().item())
    # the paper's point: a handful of True - False eigenvectors already do most of the work
    baseline = max(c.true_minus_false[0], 1 - c.true_minus_false[0])
    assert c.true_minus_false[4] > baseline


def test_rejects_bad_input(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError):
        truncation_curves(model, x, y[:10])
    with pytest.raises(ValueError):
        truncation_curves(model, x[:0], y[:0])


def test_order_by_magnitude():
    assert order_by_magnitude(torch.tensor([3.0, 1.0, -0.5, -4.0])).tolist() == [3, 0, 1, 2]


def test_smallest_k_within_the_full_model(tiny):
    model, x, y = tiny
    c = truncation_curves(model, x, y)
    for mode in MODES:
        k = smallest_k_within(c, mode, tolerance=0.0)  # all H+1 eigenvectors always reproduce the model
        assert k is not None and c.accuracy(mode)[k] >= c.full_model
        assert all(c.accuracy(mode)[j] < c.full_model for j in range(k)), "the fewest, not just some"
    assert smallest_k_within(c, "true_minus_false", tolerance=1.0) == 0
