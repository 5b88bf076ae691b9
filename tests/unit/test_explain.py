"""core.explain: the per-eigenvector and quadratic/linear/constant splits add up to the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.data import to_float
from core.eigen import decompose
from core.explain import Explanation, direction_outputs, explain, largest_contributions, misclassified_indices
from core.model import BilinearMLP

DIRECTIONS = ["true", "false", "true_minus_false"]


def random_model(seed: int, d_hidden: int = 16, bias_scale: float = 1.0) -> BilinearMLP:
    """A random model with sizeable biases, so the linear and constant terms are not negligible."""
    torch.manual_seed(seed)
    model = BilinearMLP(d_hidden, d_output=2)
    with torch.no_grad():
        model.bilinear.bias.normal_(0.0, bias_scale, generator=torch.Generator().manual_seed(seed))
    return model.eval()


def float32_direction(model: BilinearMLP, x: torch.Tensor, direction: str) -> float:
    """The direction's output from the ordinary float32 forward pass (independent of core.explain)."""
    with torch.no_grad():
        logit_0, logit_1 = model(x.reshape(1, 784).float())[0].tolist()
    return {"true": logit_1 + 1, "false": logit_0 + 1, "true_minus_false": logit_1 - logit_0}[direction]


def check_adds_up(e: Explanation, atol: float = 1e-10) -> None:
    scale = 1.0 + abs(e.model_output)
    assert abs(e.error) < atol * scale
    assert e.total == pytest.approx(e.model_output, abs=atol * scale)
    assert e.quadratic + e.linear + e.constant == pytest.approx(e.model_output, abs=atol * scale)
    assert e.contributions.sum() == pytest.approx(e.quadratic + e.linear + e.constant, abs=atol * scale)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("seed,d_hidden", [(0, 3), (1, 16), (2, 64)])
def test_parts_add_up_on_random_models(direction, seed, d_hidden):
    model = random_model(seed, d_hidden)
    x = torch.rand(784, generator=torch.Generator().manual_seed(100 + seed))
    e = explain(model, x, direction)
    check_adds_up(e)
    assert e.contributions.shape == e.eigenvalues.shape == e.projections.shape == (d_hidden + 1,)
    assert e.model_output == pytest.approx(float32_direction(model, x, direction), abs=1e-4)
    # the split is not trivial: biases give a linear and a constant term
    assert abs(e.linear) > 1e-3 and abs(e.constant) > 1e-3


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), direction=st.sampled_from(DIRECTIONS), bias_scale=st.floats(0.0, 3.0))
def test_parts_add_up_property(seed, direction, bias_scale):
    model = random_model(seed % 1000, d_hidden=8, bias_scale=bias_scale)
    x = torch.rand(784, generator=torch.Generator().manual_seed(seed))
    check_adds_up(explain(model, x, direction))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_parts_add_up_on_trained_model(small_run, direction):
    model, _, splits = small_run
    for i in range(0, 200, 10):
        x = to_float(splits.test_x[i])
        e = explain(model, x, direction)
        check_adds_up(e)
        assert e.model_output == pytest.approx(float32_direction(model, x, direction), abs=1e-3)


def test_directions_are_consistent(small_run):
    """true - false = true_minus_false for the model outputs (the +1s cancel)."""
    model, _, splits = small_run
    x = to_float(splits.test_x[3])
    outs = {d: explain(model, x, d) for d in DIRECTIONS}
    assert outs["true"].model_output - outs["false"].model_output == pytest.approx(
        outs["true_minus_false"].model_output, abs=1e-10
    )
    assert outs["true"].constant - outs["false"].constant == pytest.approx(outs["true_minus_false"].constant, abs=1e-12)


def test_without_biases_only_the_quadratic_term_is_left():
    """With b_l = b_r = 0: linear = 0, constant = the head's +1 (0 for True - False), quadratic = logit."""
    model = random_model(5, d_hidden=10)
    with torch.no_grad():
        model.bilinear.bias.zero_()
    x = torch.rand(784, generator=torch.Generator().manual_seed(5))
    for direction, constant in [("true", 1.0), ("false", 1.0), ("true_minus_false", 0.0)]:
        e = explain(model, x, direction)
        assert e.linear == pytest.approx(0.0, abs=1e-12)
        assert e.constant == pytest.approx(constant, abs=1e-12)
        assert e.quadratic == pytest.approx(e.model_output - constant, abs=1e-10)


def test_contributions_follow_the_decomposition_order():
    model = random_model(7, d_hidden=12)
    x = torch.rand(784, generator=torch.Generator().manual_seed(7))
    eig = decompose(model, "true_minus_false")
    e = explain(model, x, "true_minus_false")
    assert e.eigen.direction == "true_minus_false" and torch.equal(e.eigen.vectors, eig.vectors)
    assert explain(model, x, "true_minus_false", eig).contributions.tolist() == e.contributions.tolist()
    with pytest.raises(ValueError, match="augmented decomposition"):
        explain(model, x, "true", eig)  # a cached decomposition of another direction is refused
    np.testing.assert_allclose(e.eigenvalues, eig.eigenvalues.numpy(), atol=1e-12)
    assert (np.diff(e.eigenvalues) <= 0).all()
    # contribution_i = lambda_i (u_i . x~)^2 with the pixel-space vectors u_i = W_e'^T v_i
    x_aug = torch.cat([x.double(), torch.ones(1, dtype=torch.float64)])
    direct = eig.eigenvalues * (eig.pixel_vectors @ x_aug) ** 2
    np.testing.assert_allclose(e.contributions, direct.numpy(), rtol=1e-9, atol=1e-12)


def test_input_forms():
    model = random_model(3, d_hidden=6)
    img = torch.randint(0, 256, (28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    from_uint8 = explain(model, img, "true")
    from_float = explain(model, img.numpy().astype(np.float64) / 255.0, "true")
    assert from_uint8.model_output == pytest.approx(from_float.model_output, abs=1e-12)
    np.testing.assert_allclose(from_uint8.contributions, from_float.contributions, atol=1e-12)
    with pytest.raises(ValueError, match="784"):
        explain(model, torch.rand(10), "true")
    with pytest.raises(ValueError, match="unknown direction"):
        explain(model, torch.rand(784), "sideways")
    with pytest.raises(ValueError, match="NaN"):
        explain(model, torch.full((784,), float("nan")), "true")


def test_explanation_is_frozen():
    e = explain(random_model(0, 4), torch.rand(784), "true")
    with pytest.raises(AttributeError):
        e.quadratic = 0.0


def test_largest_contributions_known_values():
    c = np.array([0.1, -3.0, 2.0, 0.5, -0.2])
    top = largest_contributions(c, 2)
    assert top.indices.tolist() == [1, 2]
    assert top.values.tolist() == [-3.0, 2.0]
    assert largest_contributions(c, 10).indices.tolist() == [1, 2, 3, 4, 0]
    assert len(largest_contributions(c, 0).indices) == 0
    with pytest.raises(ValueError):
        largest_contributions(c, -1)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=70), st.integers(0, 80))
def test_largest_contributions_property(values, k):
    c = np.array(values)
    top = largest_contributions(c, k)
    assert len(top.indices) == min(k, len(c))
    np.testing.assert_array_equal(c[top.indices], top.values)
    magnitudes = np.abs(top.values)
    assert (np.diff(magnitudes) <= 0).all()
    rest = np.delete(np.abs(c), top.indices)
    if len(rest) and len(magnitudes):
        assert magnitudes.min() >= rest.max()


def test_largest_contributions_accepts_an_explanation():
    e = explain(random_model(1, 8), torch.rand(784), "true_minus_false")
    top = largest_contributions(e, 3)
    assert np.abs(top.values).tolist() == sorted(np.abs(e.contributions).tolist(), reverse=True)[:3]


def test_misclassified_indices_on_trained_model(small_run):
    model, history, splits = small_run
    wrong = misclassified_indices(model, splits.test_x, splits.test_y)
    assert wrong.dtype == np.int64 and (np.diff(wrong) > 0).all()
    n = len(splits.test_y)
    assert len(wrong) == round((1 - history[-1].val_acc) * n)
    with torch.no_grad():
        predictions = model(to_float(splits.test_x)).argmax(-1)
    expected = [i for i in range(n) if predictions[i] != splits.test_y[i]]
    assert wrong.tolist() == expected
    assert 0 < len(wrong) < n // 5  # a trained model makes some, but few, mistakes


def test_misclassified_indices_chunks_and_extremes():
    model = random_model(2, 8)
    x = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        predictions = model(to_float(x)).argmax(-1)
    assert len(misclassified_indices(model, x, predictions, chunk=7)) == 0
    assert misclassified_indices(model, x, 1 - predictions, chunk=7).tolist() == list(range(50))
    y = predictions.clone()
    y[[3, 17, 49]] = 1 - y[[3, 17, 49]]
    assert misclassified_indices(model, x, y, chunk=16).tolist() == [3, 17, 49]
    with pytest.raises(ValueError):
        misclassified_indices(model, x, y[:10])


def test_direction_outputs_rejects_unknown():
    with pytest.raises(ValueError):
        direction_outputs(random_model(0, 4), torch.rand(2, 784), "up")


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), direction=st.sampled_from(DIRECTIONS), scale=st.floats(0.0, 1.0))
def test_the_error_is_within_the_rounding_bound_it_reports(seed, direction, scale):
    """What the page says about |Σ − model| is computed: within the float64 bound on any input, and a
    result pushed off by more than the bound is called a bug."""
    model = random_model(seed)
    x = scale * torch.rand(784, generator=torch.Generator().manual_seed(seed))
    e = explain(model, x, direction)
    assert abs(e.error) <= e.rounding_bound and "exact, up to rounding" in e.exactness()
    broken = Explanation(
        e.eigen,
        e.projections,
        e.contributions,
        e.quadratic,
        e.linear,
        e.constant,
        e.model_output + 10 * e.rounding_bound + 1e-9,
    )
    assert "bug" in broken.exactness()
