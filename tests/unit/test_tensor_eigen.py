"""The bias-augmented tensor reproduces the logits exactly; eigen helpers match direct maths."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import Config
from core.data import to_float
from core.eigen import cos_with_centered_target, decompose, linear_term_image
from core.model import BilinearMLP
from core.spectrum import Concentration, eigenvectors_for_90pct, top_energy_share
from core.tensor import (
    augment,
    augment_inputs,
    direction_matrix,
    interaction_matrices,
    quadratic_form,
    reconstruction_error,
)
from core.train import new_model


def random_model(d_hidden: int, seed: int) -> BilinearMLP:
    torch.manual_seed(seed)
    model = BilinearMLP(d_hidden)
    with torch.no_grad():  # make the biases matter: default init keeps them small
        model.bilinear.bias.normal_(0, 1)
    return model


def test_model_names_are_views_of_the_parameters():
    model = random_model(8, 0)
    assert model.W_e.shape == (8, 784) and model.W_l.shape == (8, 8) and model.W_r.shape == (8, 8)
    assert model.W_u.shape == (2, 8) and model.b_l.shape == (8,) and model.b_r.shape == (8,)
    x = torch.rand(5, 784)
    h = x @ model.W_e.T
    direct = ((h @ model.W_l.T + model.b_l) * (h @ model.W_r.T + model.b_r)) @ model.W_u.T
    assert torch.allclose(model(x), direct, atol=1e-5)
    assert torch.allclose(model(x.view(5, 28, 28)), model(x))


@settings(max_examples=25, deadline=None)
@given(d_hidden=st.integers(1, 40), seed=st.integers(0, 10_000), n=st.integers(1, 20))
def test_reconstruction_identity_on_random_models(d_hidden, seed, n):
    model = random_model(d_hidden, seed)
    x = torch.rand(n, 784, generator=torch.Generator().manual_seed(seed))
    assert reconstruction_error(model, x) < 1e-9


def test_augmented_shapes_and_blocks():
    model = random_model(6, 1)
    aug = augment(model)
    assert aug.W_e.shape == (7, 785) and aug.W_l.shape == (7, 7) and aug.W_u.shape == (2, 7)
    assert torch.equal(aug.W_l[:-1, :-1], model.W_l.double().detach())
    assert torch.equal(aug.W_l[:-1, -1], model.b_l.double().detach())
    assert aug.W_l[-1].tolist() == [0] * 6 + [1] and aug.W_r[-1].tolist() == [0] * 6 + [1]
    assert aug.W_u[:, -1].tolist() == [1, 1] and aug.W_e[-1, -1] == 1


def test_symmetrising_keeps_every_quadratic_form():
    aug = augment(random_model(10, 2))
    raw = torch.einsum("ch,hi,hj->cij", aug.W_u, aug.W_l, aug.W_r)
    sym = interaction_matrices(aug)
    assert torch.allclose(sym, sym.mT)
    x = torch.rand(30, 784, dtype=torch.float64)
    h = augment_inputs(x) @ aug.W_e.T
    assert torch.allclose(torch.einsum("ni,cij,nj->nc", h, raw, h), quadratic_form(sym, aug.W_e, x))


def test_true_minus_false_is_the_logit_difference():
    model = random_model(12, 3)
    aug = augment(model)
    B = interaction_matrices(aug)
    x = torch.rand(40, 784)
    logits = model(x).double()
    form = quadratic_form(direction_matrix(B, "true_minus_false"), aug.W_e, x)
    assert torch.allclose(form, logits[:, 1] - logits[:, 0], atol=1e-4)
    with pytest.raises(ValueError, match="unknown direction"):
        direction_matrix(B, "sideways")


def test_reconstruction_does_not_touch_the_model():
    model = random_model(5, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reconstruction_error(model, torch.rand(3, 784))
    assert all(v.dtype == torch.float32 and torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_eigendecomposition_rebuilds_the_matrix_and_the_form():
    model = random_model(9, 5)
    aug = augment(model)
    B = direction_matrix(interaction_matrices(aug), "true")
    eig = decompose(model, "true")
    assert torch.equal(eig.matrix, B) and eig.direction == "true" and eig.view == "augmented"
    assert (eig.eigenvalues[:-1] >= eig.eigenvalues[1:]).all()  # descending
    V = eig.vectors  # rows are eigenvectors
    assert torch.allclose(V.T @ torch.diag(eig.eigenvalues) @ V, B, atol=1e-10)
    x = torch.rand(7, 784, dtype=torch.float64)
    x_aug = augment_inputs(x)
    by_eigen = ((x_aug @ eig.pixel_vectors.T) ** 2 * eig.eigenvalues).sum(1)
    assert torch.allclose(by_eigen, quadratic_form(B, aug.W_e, x), atol=1e-10)
    assert eig.images().shape == (10, 28, 28)


def test_linear_term_image_is_the_linear_part_of_the_form():
    model = random_model(7, 6)
    aug = augment(model)
    B = direction_matrix(interaction_matrices(aug), "false")
    x = torch.rand(4, 784, dtype=torch.float64)
    form, form_of_0 = quadratic_form(B, aug.W_e, x), quadratic_form(B, aug.W_e, torch.zeros(1, 784))
    h = x @ model.W_e.double().detach().T
    quadratic = torch.einsum("ni,ij,nj->n", h, B[:-1, :-1], h)
    linear = x @ linear_term_image(decompose(model, "false"), model.W_e.detach()).flatten()
    assert torch.allclose(form, quadratic + linear + form_of_0, atol=1e-10)


def test_cos_with_centered_target_is_sign_free(mnist):
    target = mnist.train_x[6]
    centred = to_float(target).double() - to_float(target).double().mean()
    vectors = torch.stack([centred, -centred, torch.rand(784, dtype=torch.float64)])
    cos = cos_with_centered_target(vectors, target)
    assert cos[0].item() == pytest.approx(1.0) and cos[1].item() == pytest.approx(1.0)
    assert cos[2].item() < 0.5


def test_shipped_checkpoint_reproduces_figure_6(mnist):
    from pathlib import Path

    from core.checkpoint import load_checkpoint

    model, config, history = load_checkpoint(Path("checkpoints/seed-default.safetensors").read_bytes())
    assert config == Config() and len(history) == config.epochs
    eig = decompose(model, "true_minus_false")
    assert cos_with_centered_target(eig.pixel_vectors[:1], mnist.train_x[6]).item() >= 0.8
    assert reconstruction_error(model, to_float(mnist.test_x[:500])) < 1e-4
    assert new_model(Config()).W_e.shape == model.W_e.shape


@settings(max_examples=15, deadline=None)
@given(d_hidden=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_the_bias_free_view_decomposes_the_hidden_block(d_hidden, seed):
    """decompose(view="bias_free") is the eigendecomposition of B[:-1, :-1], each eigenvector read as
    [v, 0]: its pixel vectors have no constant coordinate and rebuild the block's quadratic form."""
    model = random_model(d_hidden, seed)
    full, free = decompose(model, "true_minus_false"), decompose(model, "true_minus_false", "bias_free")
    assert torch.equal(free.matrix, full.matrix[:-1, :-1]) and free.eigenvalues.shape == (d_hidden,)
    V = free.vectors
    assert torch.allclose(V.T @ torch.diag(free.eigenvalues) @ V, free.matrix, atol=1e-9)
    assert torch.equal(free.pixel_vectors[:, -1], torch.zeros(d_hidden, dtype=torch.float64))
    x = torch.rand(5, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    h = x @ model.W_e.double().T
    by_eigen = ((x @ free.pixel_vectors[:, :784].T) ** 2 * free.eigenvalues).sum(1)
    assert torch.allclose(by_eigen, torch.einsum("ni,ij,nj->n", h, free.matrix, h), atol=1e-8)
    with pytest.raises(ValueError, match="view"):
        decompose(model, "true", "sideways")


def spectrum(*eigenvalues: float) -> Concentration:
    values = torch.tensor(eigenvalues, dtype=torch.float64)
    return Concentration("true_minus_false", "bias_free", top_energy_share(values), eigenvectors_for_90pct(values), 2)


def test_the_spectrums_sentence_checks_its_premises_and_agrees_in_number():
    spike = Concentration("true_minus_false", "bias_free", 0.91, 1, 16).sentence()
    assert spike == (
        "The top eigenvalue carries 91% of Σλ²; 1 of 16 eigenvectors (largest |λ| first) carries 90 % of it."
    )
    spread = Concentration("true_minus_false", "bias_free", 0.31, 18, 64).sentence()
    assert "18 of 64 eigenvectors (largest |λ| first) carry 90 % of it" in spread
    assert spectrum(-0.1, -0.5).sentence() == (
        "No eigenvalue is positive; 1 of 2 eigenvectors (largest |λ| first) carries 90 % of Σλ²."
    ), "not 'The top eigenvalue carries 0%'"
    assert spectrum(0.0, 0.0).sentence() == "This matrix is zero: no eigenvector carries any of it."
