"""core.reference_train (autograd, torch's AdamW, explicit noise) and core.train (the fast loop the app
runs) follow the same law.

- Without noise the two loops are the same algorithm: from the same init, data and seed they take the
  same steps (same shuffles, gradients, learning rates, weight decay), so every step's gradient agrees
  up to rounding (measured: relative difference <= 3e-7 over 12 steps; with a weight decay 10 % off it
  reaches 0.16, with none 1.3).
- With noise they draw different numbers from the same law, so over seeds the distributions of what
  they compute must agree: the epoch losses, the validation loss and the norm of every parameter's
  gradient at every step, compared by two-sample z statistics with a Bonferroni bound (as
  tests/unit/test_noise_sampler.py does for the sampler alone). The seeds are fixed, so the outcome is
  deterministic here; on another CPU the runs are other samples of the same law, and a correct pair
  fails with probability <= ALPHA.

Each comparison also runs against a reference given a wrong setting (weight decay, noise), which
must fail it: the test can tell.
"""

from __future__ import annotations

import copy

import pytest
import torch

from core import reference_train
from core.config import Config
from core.labels import make_splits
from core.model import BilinearMLP
from core.train import EpochMetrics, FlatAdamW, new_model, train

ALPHA = 1e-4  # family-wise false-alarm rate of the noisy comparison
N_SEEDS = 48  # runs of each loop in the noisy comparison
SIGMA = 0.5  # noise large enough to move the losses and gradients well beyond their spread over seeds
STEP_RTOL = 1e-4  # noise-free: largest relative difference of a step's gradient (measured <= 3e-7)
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
BASE = Config(n_train=2048, n_test=256, lr=4e-3, weight_decay=3.3)  # the quick preset's lr and weight decay

Run = tuple[list[EpochMetrics], list[torch.Tensor]]


@pytest.fixture(scope="module")
def splits(mnist):
    return make_splits(mnist, BASE)


def run_fast(model: BilinearMLP, splits, config: Config, monkeypatch) -> Run:
    """core.train.train's epochs, and the flat gradient (W_e, [W_l; W_r], [b_l; b_r], W_u) of every step."""
    grads, step = [], FlatAdamW.step

    def recording_step(self, grad, lr):
        grads.append(grad.clone())
        return step(self, grad, lr)

    with monkeypatch.context() as patch:
        patch.setattr(FlatAdamW, "step", recording_step)
        return list(train(model, splits, config)), grads


def run_reference(model: BilinearMLP, splits, config: Config, monkeypatch) -> Run:
    """core.reference_train.train's epochs, and every step's gradient in the same flat layout."""
    grads, step = [], torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        grads.append(torch.cat([p.grad.reshape(-1) for p in self.param_groups[0]["params"]]))
        return step(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", recording_step)
        return list(reference_train.train(model, splits, config)), grads


def largest_step_difference(fast: Run, reference: Run) -> float:
    """max over steps of |g_fast - g_ref| / |g_ref|."""
    assert len(fast[1]) == len(reference[1]) > 0
    return max(((a - b).norm() / b.norm()).item() for a, b in zip(fast[1], reference[1], strict=True))


def test_without_noise_both_loops_take_the_same_steps(splits, monkeypatch):
    config = BASE.replace(noise_std=0.0, batch_size=512, epochs=3)  # 4 steps per epoch, cosine over 3 epochs
    fast_model, reference_model = new_model(config), new_model(config)
    fast = run_fast(fast_model, splits, config, monkeypatch)
    reference = run_reference(reference_model, splits, config, monkeypatch)

    assert len(fast[1]) == len(reference[1]) == 12
    assert largest_step_difference(fast, reference) < STEP_RTOL
    for a, b in zip(fast[0], reference[0], strict=True):
        assert (a.epoch, a.epochs) == (b.epoch, b.epochs)
        assert a.lr == pytest.approx(b.lr, rel=1e-9)  # the closed-form cosine is torch's CosineAnnealingLR
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4)
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-4)
        # accuracies count images: a logit at the edge may flip on rounding; allow two of them
        assert a.train_acc == pytest.approx(b.train_acc, abs=2 / len(splits.train_x))
        assert a.val_acc == pytest.approx(b.val_acc, abs=2 / len(splits.test_x))
    for p, q in zip(fast_model.parameters(), reference_model.parameters(), strict=True):
        assert ((p - q).norm() / q.norm()).item() < STEP_RTOL

    # The comparison can tell: a reference with a weight decay 10 % off leaves it from the second step
    wrong_decay = config.replace(weight_decay=0.9 * config.weight_decay)
    wrong = run_reference(new_model(config), splits, wrong_decay, monkeypatch)
    assert largest_step_difference(fast, wrong) > 10 * STEP_RTOL


# --------------------------------------------------------------------------- with noise: the same law


def summary(run: Run, sizes: list[int]) -> list[float]:
    """Each epoch's train loss, the last validation loss, and every step's gradient norm per parameter."""
    history, grads = run
    return (
        [m.train_loss for m in history]
        + [history[-1].val_loss]
        + [part.norm().item() for grad in grads for part in grad.split(sizes)]
    )


def sample(runner, init: BilinearMLP, splits, config: Config, monkeypatch) -> torch.Tensor:
    """summary() of N_SEEDS runs from the same init: (N_SEEDS, statistics), float64."""
    sizes = [p.numel() for p in init.parameters()]
    rows = [
        summary(runner(copy.deepcopy(init), splits, config.replace(seed=seed), monkeypatch), sizes)
        for seed in range(N_SEEDS)
    ]
    return torch.tensor(rows, dtype=torch.float64)


def largest_z(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """The largest |z| of the column means' differences, and its Bonferroni bound at ALPHA."""
    z = (a.mean(0) - b.mean(0)) / (a.var(0) / len(a) + b.var(0) / len(b)).sqrt()  # (statistics,)
    bound = torch.special.ndtri(torch.tensor(1 - ALPHA / (2 * len(z)), dtype=torch.float64)).item()
    return z.abs().max().item(), bound


def test_with_noise_losses_and_gradients_have_the_same_distribution(splits, monkeypatch):
    # One full batch per epoch: the noise is then the only randomness. Two epochs: two steps, the second
    # from weights the first step's noise moved.
    config = BASE.replace(noise_std=SIGMA, batch_size=BASE.n_train, epochs=2)
    init = new_model(config.replace(seed=0))
    fast = sample(run_fast, init, splits, config, monkeypatch)
    reference = sample(run_reference, init, splits, config, monkeypatch)
    assert fast.shape == reference.shape == (N_SEEDS, 2 + 1 + 2 * 4)
    z, bound = largest_z(fast, reference)
    assert z < bound, f"largest |z| {z:.1f} >= {bound:.1f}"

    # The comparison can tell: a reference with 1.2 sigma (measured |z| 30) or none (73) is another law
    for wrong_sigma in (1.2 * SIGMA, 0.0):
        wrong = sample(run_reference, init, splits, config.replace(noise_std=wrong_sigma), monkeypatch)
        assert largest_z(fast, wrong)[0] > bound, f"sigma {wrong_sigma} passed"
