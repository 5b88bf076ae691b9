"""core.train: learns the task, is deterministic, stops when asked, fails clearly."""

import pytest
import torch
import torch.nn.functional as F

from core.config import Config
from core.eigen import cos_with_centered_target, decompose
from core.labels import make_splits
from core.train import (
    ExactNoisyEmbed,
    FlatAdamW,
    FlatWeights,
    NoisyEmbedding,
    PlainEmbedding,
    StepBuffers,
    TrainingDiverged,
    cosine_lr,
    fit,
    new_model,
    train,
    train_step,
)


@pytest.fixture(scope="module")
def tiny(mnist):
    config = Config(epochs=2, n_train=2048, n_test=512, batch_size=256)
    return config, make_splits(mnist, config)


def test_the_quick_preset_learns_and_finds_the_target(small_run, mnist):
    model, history, _ = small_run
    assert history[-1].val_acc >= 0.93  # measured 0.950-0.953 over seeds 0-4
    assert history[-1].train_loss < history[0].train_loss
    eig = decompose(model, "true_minus_false")
    assert cos_with_centered_target(eig.pixel_vectors[:1], mnist.train_x[6]).item() >= 0.7


def test_metrics_stream_one_per_epoch(tiny):
    config, splits = tiny
    history = list(train(new_model(config), splits, config))
    assert [m.epoch for m in history] == [1, 2] and all(m.epochs == 2 for m in history)
    assert history[0].seconds <= history[1].seconds
    assert history[0].lr == pytest.approx(config.lr) and history[1].lr < config.lr  # cosine schedule
    assert all(0 <= m.train_acc <= 1 and 0 <= m.val_acc <= 1 for m in history)


@pytest.mark.parametrize("sampler", ["fast", "kornia"])
def test_deterministic_for_a_seed(tiny, sampler):
    config, splits = tiny
    config = config.replace(noise_sampler=sampler)
    (a, ha), (b, hb) = fit(config, splits), fit(config, splits)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert [m.val_loss for m in ha] == [m.val_loss for m in hb]
    c, _ = fit(config.replace(seed=7), splits)
    assert not torch.equal(a.W_e, c.W_e)


def test_stop_between_batches_keeps_the_partial_model(tiny):
    config, splits = tiny
    model = new_model(config)
    before = model.W_e.detach().clone()
    calls = []

    def stop_after_three_batches() -> bool:
        calls.append(1)
        return len(calls) > 3

    history = list(train(model, splits, config, should_stop=stop_after_three_batches))
    assert history == [] and len(calls) == 4  # 3 batches ran, epoch 1 never finished
    assert not torch.equal(model.W_e, before)


def test_huge_learning_rate_diverges_with_a_clear_error(tiny):
    config, splits = tiny
    config = config.replace(lr=1e6)  # Adam steps ~lr: weights explode, float32 overflows
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch \d.*smaller learning rate"):
        fit(config, splits)


def test_batch_larger_than_the_slice_is_refused():
    with pytest.raises(ValueError, match="larger than the 100 training images"):
        Config(n_train=100, batch_size=512)


def test_noise_free_training_runs(tiny):
    config, splits = tiny
    _, history = fit(config.replace(noise_std=0.0, epochs=1), splits)
    assert len(history) == 1


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_the_hand_written_step_has_autograds_gradients(sigma):
    """train_step's loss and every gradient equal autograd's on the model, for the same noise draws."""
    model = new_model(Config(d_hidden=8))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 784, generator=g)  # (B, 784)
    y = torch.randint(0, 2, (32,), generator=g)  # (B,)

    weights = FlatWeights(model)
    embedding = NoisyEmbedding(sigma, torch.Generator().manual_seed(1)) if sigma else PlainEmbedding()
    loss, right = train_step(weights, x, y, embedding, StepBuffers(32, 8))

    h = ExactNoisyEmbed.apply(x, model.W_e, sigma, torch.Generator().manual_seed(1)) if sigma else model.embed(x)
    logits = model.from_hidden(h)  # (B, 2)
    expected = F.cross_entropy(logits, y)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert right.item() == (logits.argmax(-1) == y).sum().item()
    for parameter, grad in zip(weights.parameters, weights._views(weights.grad), strict=True):
        torch.testing.assert_close(grad, parameter.grad, rtol=1e-4, atol=1e-7)


def test_flat_adamw_is_torchs_adamw():
    """FlatAdamW on one flat tensor takes torch.optim.AdamW's steps (weight decay, bias correction, lr changes)."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(500, generator=g)
    ours, theirs = start.clone(), start.clone().requires_grad_()
    flat = FlatAdamW(ours, weight_decay=3.0)
    reference = torch.optim.AdamW([theirs], lr=3e-3, weight_decay=3.0)
    for lr in (3e-3, 3e-3, 2e-3, 1e-3, 5e-4):
        grad = torch.randn(500, generator=g)
        flat.step(grad, lr)
        reference.param_groups[0]["lr"] = lr
        theirs.grad = grad.clone()
        reference.step()
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-5, atol=1e-7)
    assert not torch.equal(ours, start)


@pytest.mark.parametrize("epochs", [1, 4, 10])
def test_cosine_lr_is_torchs_schedule(epochs):
    config = Config(epochs=epochs, lr=3e-3)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    for epoch in range(1, epochs + 1):
        assert cosine_lr(config, epoch) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        optimizer.step()
        scheduler.step()
