"""core.train.NoisyEmbedding (as the autograd op ExactNoisyEmbed) has the law of explicit pixel noise.

Checked statistically.

The chain of equivalences the training loop relies on:

    kornia RandomGaussianNoise(std=sigma)  ==  x + N(0, sigma^2 I)          (test_kornia_...)
    explicit x + sigma*randn, autograd     ~   ExactNoisyEmbed.apply         (test_same_law_...)

On a small problem (D inputs, H hidden, B batch, fixed x and W) with a fixed *nonlinear*
downstream loss, so that delta = dL/dh depends on the noise, we draw a few thousand independent
(h, grad_W) pairs from each path and compare their means and full joint covariance matrices
entry by entry. Each entry gives a two-sample z statistic whose standard error is estimated from
the samples themselves (no normality assumed, so it is valid for grad_W, which is not Gaussian);
the largest |z| is compared with a Bonferroni bound at family-wise level ALPHA. That bound holds
whatever the correlation between entries, so a correct sampler fails with probability <= ALPHA
(the seeds are fixed, so the outcome is in fact deterministic). Negative controls -- samplers that
are wrong in ways a plausible bug would be -- must fail the very same comparison.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from core.train import ExactNoisyEmbed

ALPHA = 1e-4  # family-wise false-alarm rate of one comparison (means, or covariances)
N_DRAWS = 4000  # independent (h, grad_W) draws per sampler
SIGMA = 0.5  # noise comparable to the spread of h, so delta really depends on the noise

Sampler = Callable[[torch.Tensor, torch.Tensor, float, torch.Generator], torch.Tensor]


# --------------------------------------------------------------------------- the small problem


class Problem:
    """Fixed x (B, D), W (H, D) and a nonlinear loss of h (B, H); float64 throughout."""

    def __init__(self, d: int, h: int, b: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(b, d, generator=g, dtype=torch.float64)  # (B, D)
        self.W = torch.randn(h, d, generator=g, dtype=torch.float64) / d**0.5  # (H, D)
        self.a = torch.randn(h, generator=g, dtype=torch.float64)  # (H,)
        self.c = torch.randn(h, 2, generator=g, dtype=torch.float64) / h**0.5  # (H, 2)

    def loss(self, h: torch.Tensor) -> torch.Tensor:
        """sum(tanh(h) a) + sum((h c)^2) over every leading dim: delta depends on h nonlinearly."""
        return (torch.tanh(h) @ self.a).sum() + ((h @ self.c) ** 2).sum()

    def explicit(self, n: int, sigma: float, seed: int) -> torch.Tensor:
        """n draws of [h, grad_W] with explicit noise and plain autograd, vectorised: (n, B*H + H*D)."""
        g = torch.Generator().manual_seed(seed)
        eps = sigma * torch.randn(n, *self.x.shape, generator=g, dtype=self.x.dtype)  # (n, B, D)
        W = self.W.expand(n, *self.W.shape).clone().requires_grad_()  # (n, H, D): one copy per draw
        h = (self.x + eps) @ W.transpose(1, 2)  # (n, B, H)
        self.loss(h).backward()  # draws do not interact, so W.grad[m] is draw m's gradient
        return torch.cat([h.detach().flatten(1), W.grad.flatten(1)], dim=1)

    def sampled(self, sampler: Sampler, n: int, sigma: float, seed: int) -> torch.Tensor:
        """n draws of [h, grad_W] from `sampler` (an ExactNoisyEmbed-like apply): (n, B*H + H*D)."""
        g = torch.Generator().manual_seed(seed)
        out = torch.empty(n, self.x.shape[0] * self.W.shape[0] + self.W.numel(), dtype=self.x.dtype)
        for m in range(n):
            W = self.W.clone().requires_grad_()
            h = sampler(self.x, W, sigma, g)  # (B, H)
            self.loss(h).backward()
            out[m] = torch.cat([h.detach().flatten(), W.grad.flatten()])
        return out


# --------------------------------------------------------------------------- the statistics


def bonferroni_z(n_tests: int, alpha: float = ALPHA) -> float:
    """|z| bound that n_tests two-sided standard-normal statistics all stay under w.p. >= 1 - alpha."""
    return torch.special.ndtri(torch.tensor(1 - alpha / (2 * n_tests), dtype=torch.float64)).item()


def two_sample_z(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-column z of mean(a) - mean(b) for samples a (n, k), b (m, k), SEs from the samples."""
    se2 = a.var(0) / len(a) + b.var(0) / len(b)  # (k,)
    diff = a.mean(0) - b.mean(0)
    return torch.where(se2 > 0, diff / se2.clamp_min(1e-300).sqrt(), torch.zeros_like(diff))


def cross_products(s: torch.Tensor) -> torch.Tensor:
    """(n, p) samples -> (n, p(p+1)/2) centred products whose column means are the covariance entries."""
    c = s - s.mean(0)  # (n, p)
    i, j = torch.triu_indices(s.shape[1], s.shape[1])
    return c[:, i] * c[:, j]


def law_statistics(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Largest |z| over the means and over the covariance entries, each with its Bonferroni bound.

    A covariance entry is the mean of a centred product, so its SE comes from the products'
    sample variance (a fourth-moment estimate: valid without normality).
    """
    z_mean = two_sample_z(a, b)
    z_cov = two_sample_z(cross_products(a), cross_products(b))
    return {
        "mean": z_mean.abs().max().item(),
        "mean_bound": bonferroni_z(len(z_mean)),
        "cov": z_cov.abs().max().item(),
        "cov_bound": bonferroni_z(len(z_cov)),
    }


def same_law(stats: dict[str, float]) -> bool:
    return stats["mean"] < stats["mean_bound"] and stats["cov"] < stats["cov_bound"]


# --------------------------------------------------------------------------- wrong samplers


def _row_space_basis(W: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """Q = W^T R^-1 with R = L^T: (D, H), orthonormal columns spanning W's row space."""
    return torch.linalg.solve_triangular(L, W.double(), upper=False).T.to(W.dtype)


class DropNullSpace(ExactNoisyEmbed):
    """Bug: forgets the noise outside W's row space in the gradient (N = 0)."""

    @staticmethod
    def backward(ctx, delta: torch.Tensor):
        e = ctx.embedding
        x, W, L, xi = e.x, e.W, e.L, e.xi
        Q = _row_space_basis(W, L)
        grad_W = delta.T @ x + e.sigma * (delta.T @ xi) @ Q.T  # (H, D)
        return None, grad_W, None, None


class FreshXiInBackward(ExactNoisyEmbed):
    """Bug: redraws xi in the backward pass, so the gradient's noise is independent of h's."""

    @staticmethod
    def backward(ctx, delta: torch.Tensor):
        e = ctx.embedding
        x, W, L, xi = e.x, e.W, e.L, e.xi
        Q = _row_space_basis(W, L)
        xi = torch.randn(xi.shape, generator=e.generator, dtype=xi.dtype)  # (B, H), the bug
        evals, evecs = torch.linalg.eigh(delta.T @ delta)  # (H,), (H, H)
        N = (evecs * evals.clamp_min(0).sqrt()) @ torch.randn(
            Q.shape[1], Q.shape[0], generator=e.generator, dtype=delta.dtype
        )  # (H, D)
        grad_W = delta.T @ x + e.sigma * ((delta.T @ xi - N @ Q) @ Q.T + N)  # (H, D)
        return None, grad_W, None, None


def exact(x: torch.Tensor, W: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return ExactNoisyEmbed.apply(x, W, sigma, g)


WRONG_SAMPLERS: dict[str, Sampler] = {
    "sigma_x1.2": lambda x, W, sigma, g: ExactNoisyEmbed.apply(x, W, 1.2 * sigma, g),
    "drop_null_space_N": lambda x, W, sigma, g: DropNullSpace.apply(x, W, sigma, g),
    "fresh_xi_in_backward": lambda x, W, sigma, g: FreshXiInBackward.apply(x, W, sigma, g),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py
MAIN = (12, 3, 6)  # D, H, B
RANK_DEFICIENT = (10, 4, 2)  # B < H: delta^T delta (H x H) has rank 2
WIDER_THAN_INPUT = (3, 5, 4)  # H > D: W W^T is singular, the sampler falls back to explicit noise


@pytest.fixture(scope="module")
def main_reference() -> tuple[Problem, torch.Tensor]:
    problem = Problem(*MAIN)
    return problem, problem.explicit(N_DRAWS, SIGMA, seed=1)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("shape", [MAIN, RANK_DEFICIENT, WIDER_THAN_INPUT], ids=["B>H", "B<H", "H>D"])
def test_same_law_as_explicit_noise(shape: tuple[int, int, int]) -> None:
    """Means and the full joint covariance of (h, grad_W) agree with explicit noise."""
    problem = Problem(*shape)
    reference = problem.explicit(N_DRAWS, SIGMA, seed=1)
    stats = law_statistics(problem.sampled(exact, N_DRAWS, SIGMA, seed=2), reference)
    assert same_law(stats), stats


def test_the_comparison_has_power_explicit_vs_explicit_passes(main_reference) -> None:
    """Sanity check of the statistic itself: two explicit-noise runs pass, 1.2 sigma does not."""
    problem, reference = main_reference
    assert same_law(law_statistics(problem.explicit(N_DRAWS, SIGMA, seed=3), reference))
    assert not same_law(law_statistics(problem.explicit(N_DRAWS, 1.2 * SIGMA, seed=3), reference))


@pytest.mark.parametrize("name", list(WRONG_SAMPLERS))
def test_wrong_sampler_fails_the_same_comparison(main_reference, name: str) -> None:
    problem, reference = main_reference
    stats = law_statistics(problem.sampled(WRONG_SAMPLERS[name], N_DRAWS, SIGMA, seed=2), reference)
    assert not same_law(stats), stats


def test_noise_free_is_the_plain_gradient_exactly() -> None:
    problem = Problem(*MAIN)
    W_plain = problem.W.clone().requires_grad_()
    h_plain = problem.x @ W_plain.T  # (B, H)
    problem.loss(h_plain).backward()
    W = problem.W.clone().requires_grad_()
    h = ExactNoisyEmbed.apply(problem.x, W, 0.0, torch.Generator().manual_seed(0))
    problem.loss(h).backward()
    assert torch.equal(h, h_plain)
    assert torch.equal(W.grad, W_plain.grad)


@pytest.mark.parametrize("b, zero_delta", [(1, False), (2, False), (6, True)])
def test_rank_deficient_delta_does_not_crash(b: int, zero_delta: bool) -> None:
    """B < H (delta^T delta singular) or delta = 0: finite output; delta = 0 gives grad 0."""
    d, h_dim = 10, 5
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(b, d, generator=g, dtype=dtype)  # (B, D)
        W = torch.randn(h_dim, d, generator=g, dtype=dtype).requires_grad_()  # (H, D)
        h = ExactNoisyEmbed.apply(x, W, 0.1, g)  # (B, H)
        (0.0 * h.sum() if zero_delta else (h**3).sum()).backward()
        assert torch.isfinite(h).all() and torch.isfinite(W.grad).all()
        if zero_delta:
            assert torch.equal(W.grad, torch.zeros_like(W))


def test_deterministic_for_a_generator_seed() -> None:
    problem = Problem(*MAIN)
    a, b, c = (problem.sampled(exact, 3, SIGMA, seed=s) for s in (5, 5, 6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_kornia_noise_is_x_plus_iid_gaussian() -> None:
    """kornia RandomGaussianNoise(mean=0, std=sigma, p=1) adds i.i.d. N(0, sigma^2) per pixel,
    independently across the images of a batch and independently of the pixel values."""
    from kornia.augmentation import RandomGaussianNoise

    sigma, n_img = 0.1, 512
    torch.manual_seed(0)  # kornia draws from the global generator
    x = torch.rand(n_img, 1, 28, 28)  # (N, 1, 28, 28) pixels in [0, 1]
    noise = (RandomGaussianNoise(mean=0.0, std=sigma, p=1.0)(x) - x).flatten(1)  # (N, 784)
    n = noise.numel()
    z = lambda est, value, se: abs(est - value) / se  # noqa: E731
    bound = bonferroni_z(6)
    flat = noise.flatten().double()
    assert z(flat.mean().item(), 0.0, sigma / n**0.5) < bound
    assert z(flat.std().item(), sigma, sigma / (2 * n) ** 0.5) < bound
    # E z^4 = 3 for Gaussian z (Var z^4 = 105 - 9 = 96): rules out e.g. uniform noise with the right std
    assert z(((flat / sigma) ** 4).mean().item(), 3.0, (96 / n) ** 0.5) < bound
    # no correlation between neighbouring pixels, between images, or with the pixel values
    corr = lambda u, v: torch.corrcoef(torch.stack([u.flatten(), v.flatten()]))[0, 1].item()  # noqa: E731
    assert z(corr(noise[:, :-1], noise[:, 1:]), 0.0, 1 / (n - n_img) ** 0.5) < bound
    assert z(corr(noise[:-1], noise[1:]), 0.0, 1 / (n - 784) ** 0.5) < bound
    assert z(corr(noise, x.flatten(1)), 0.0, 1 / n**0.5) < bound
