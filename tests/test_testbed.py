"""Exactness of the Gaussian-mixture testbed: denoiser (Tweedie), forward kernel, ancestral step, exact tilt."""
import math

import pytest
import torch

from search_core.noise import ancestral_step, forward_kernel, noised
from search_core.testbed import GaussianMixture, LinearReward, standard_mixture


@pytest.mark.parametrize("noise_form,sigma", [("eps", 0.7), ("eps", 5.0), ("flow", 0.3), ("flow", 0.9)])
def test_denoiser_matches_tweedie(noise_form, sigma):
    gmm = GaussianMixture(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)) * 2,
                          [0.2, 0.5, 0.3, 1.0], [0.1, 0.2, 0.3, 0.4])
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    gmm.means, gmm.variances, gmm.weights = gmm.means.double(), gmm.variances.double(), gmm.weights.double()
    s = torch.full((50,), sigma, dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    (score,) = torch.autograd.grad(gmm.noised_log_prob(xg, s, noise_form).sum(), xg)
    a = 1.0 if noise_form == "eps" else 1 - sigma
    tweedie = (x + sigma ** 2 * score) / a
    assert torch.allclose(gmm.posterior_mean(x, s, noise_form), tweedie, atol=1e-8)


@pytest.mark.parametrize("noise_form,sigma", [("eps", 1.5), ("flow", 0.6)])
def test_denoiser_is_the_conditional_mean(noise_form, sigma):
    g = torch.Generator().manual_seed(2)
    gmm = standard_mixture()
    x0 = gmm.sample(200000, g)
    xs = noised(x0, sigma, torch.randn(x0.shape, generator=g), noise_form)
    d = gmm.posterior_mean(xs, torch.full((x0.shape[0],), sigma), noise_form)
    resid = x0 - d
    # E[x0 - D(x)] = 0 and the residual is orthogonal to any function of x (here D itself)
    assert resid.mean(0).abs().max() < 5 * resid.std(0).max() / math.sqrt(x0.shape[0])
    inner = (resid * d).sum(1)
    assert inner.mean().abs() < 5 * inner.std() / math.sqrt(x0.shape[0])


@pytest.mark.parametrize("noise_form,s1,s2", [("eps", 0.5, 2.0), ("flow", 0.2, 0.7), ("flow", 0.4, 1.0)])
def test_forward_kernel_gives_the_marginal(noise_form, s1, s2):
    g = torch.Generator().manual_seed(3)
    x0 = torch.tensor([[1.5, -2.0]]).expand(200000, 2)
    x1 = noised(x0, s1, torch.randn(x0.shape, generator=g), noise_form)
    x2 = forward_kernel(x1, s1, s2, torch.randn(x0.shape, generator=g), noise_form)
    a2 = 1.0 if noise_form == "eps" else 1 - s2
    n = x0.shape[0]
    assert ((x2.mean(0) - a2 * x0[0]).abs() < 5 * s2 / math.sqrt(n) + 1e-6).all()
    assert ((x2.var(0) - s2 ** 2).abs() < 5 * s2 ** 2 * math.sqrt(2 / n) + 1e-6).all()


@pytest.mark.parametrize("noise_form", ["eps", "flow"])
def test_ancestral_step_is_the_exact_posterior(noise_form):
    """eta = 1: x_next | x, x0 has the DDPM posterior mean and variance (in the eps-equivalent coordinates)."""
    s, sn = (3.0, 1.0) if noise_form == "eps" else (0.8, 0.4)
    a, an = (1.0, 1.0) if noise_form == "eps" else (1 - s, 1 - sn)
    x0, x = torch.tensor([[0.5, 1.0]]), torch.tensor([[2.0, -1.0]])
    mean = ancestral_step(x, x0, s, sn, None, noise_form, eta=1.0)
    r2 = (sn / an) ** 2 / (s / a) ** 2
    expected_mean = an * (x0 + r2 * (x / a - x0))
    assert torch.allclose(mean, expected_mean, atol=1e-6)
    one = ancestral_step(x, x0, s, sn, torch.ones_like(x), noise_form, eta=1.0) - mean
    assert torch.allclose(one, torch.full_like(x, sn * math.sqrt(1 - r2)), atol=1e-6)
    assert torch.allclose(ancestral_step(x, x0, s, 0.0, torch.ones_like(x), noise_form), x0)


def test_linear_tilt_is_exact():
    gmm, lam = standard_mixture(), 0.7
    tilted = gmm.tilted_linear(torch.tensor([0.0, 1.0]), lam)
    x = gmm.sample(400000, torch.Generator().manual_seed(4))
    w = torch.softmax(lam * LinearReward([0.0, 1.0])(x).double(), 0)
    is_mean = (w[:, None] * x.double()).sum(0)
    exact_mean = (tilted.weights[:, None] * tilted.means).sum(0).double()
    assert torch.allclose(is_mean, exact_mean, atol=0.03)


@pytest.mark.parametrize("noise_form", ["eps", "flow"])
def test_per_row_and_shared_sigma_steps_agree(noise_form):
    """DFS moves rows at their own levels (tensor path); BFS shares one level (float path): same numbers."""
    s, sn = (4.0, 1.5) if noise_form == "eps" else (1.0, 0.6)
    x, x0, eps = torch.randn(3, 3, 2, generator=torch.Generator().manual_seed(7))
    shared = ancestral_step(x, x0, s, sn, eps, noise_form, eta=0.7)
    rows = ancestral_step(x, x0, torch.full((3,), s), torch.full((3,), sn), eps, noise_form, eta=0.7)
    assert torch.allclose(shared, rows, atol=1e-5)
