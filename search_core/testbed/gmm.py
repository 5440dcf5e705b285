"""Isotropic Gaussian mixture with the exact posterior-mean denoiser for x_σ = a(σ)·x0 + σ·ε (eps and flow forms).

For component k (mean μ_k, variance v_k): x_σ | k ~ N(a μ_k, (a² v_k + σ²) I) and
E[x0 | x_σ, k] = μ_k + a v_k / (a² v_k + σ²) · (x_σ - a μ_k); the denoiser mixes these by the posterior
responsibilities. Works on any trailing shape (flattened to d features), so it doubles as a cheap "latent" model.
"""
from __future__ import annotations

import math

import torch

from ..noise import check_noise_form, signal_scale


class GaussianMixture:
    """p0(x) = Σ_k π_k N(x; μ_k, v_k I)."""

    def __init__(self, means: torch.Tensor, variances, weights):
        self.means = torch.as_tensor(means, dtype=torch.float32)
        k, self.dim = self.means.shape
        self.variances = torch.as_tensor(variances, dtype=torch.float32).expand(k).clone()
        w = torch.as_tensor(weights, dtype=torch.float32)
        if (w < 0).any() or w.sum() <= 0 or (self.variances <= 0).any():
            raise ValueError("mixture weights must be >= 0 with a positive sum, variances > 0")
        self.weights = w / w.sum()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator)
        return self.means[comp] + self.variances[comp].sqrt()[:, None] * eps

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.noised_log_prob(x, torch.zeros(x.shape[0]), "eps")

    def noised_log_prob(self, x: torch.Tensor, sigma_rows: torch.Tensor, noise_form: str) -> torch.Tensor:
        """log density of the noised marginal p_σ(x) (for Tweedie checks)."""
        log_resp, _, _ = self._responsibilities(x.flatten(1), sigma_rows, noise_form)
        return torch.logsumexp(log_resp, dim=1)

    def _responsibilities(self, x, sigma_rows, noise_form):
        s = torch.as_tensor(sigma_rows, dtype=x.dtype).reshape(-1, 1).expand(x.shape[0], 1)
        a = signal_scale(s, noise_form)
        var = a * a * self.variances.to(x)[None] + s * s                      # [M, K]
        mu = self.means.to(x)
        sq = (x * x).sum(1, keepdim=True) - 2 * a * (x @ mu.T) + a * a * (mu * mu).sum(1)[None]
        log_joint = (torch.log(self.weights.to(x))[None] - 0.5 * self.dim * torch.log(2 * math.pi * var)
                     - 0.5 * sq.clamp_min(0) / var)
        return log_joint, a, var

    def posterior_mean(self, x: torch.Tensor, sigma_rows, noise_form: str = "eps") -> torch.Tensor:
        """E[x0 | x_σ] exactly."""
        check_noise_form(noise_form)
        flat = x.flatten(1)
        log_joint, a, var = self._responsibilities(flat, sigma_rows, noise_form)
        resp = torch.softmax(log_joint, dim=1)
        shrink = a * self.variances.to(flat)[None] / var                     # [M, K]
        out = (resp * (1 - a * shrink)) @ self.means.to(flat) + (resp * shrink).sum(1, keepdim=True) * flat
        return out.reshape(x.shape)

    def denoiser(self, noise_form: str = "eps"):
        """A k-diffusion style model ``model(x, sigma_batch) -> x0``."""
        check_noise_form(noise_form)
        return lambda x, sigma, **_: self.posterior_mean(x, sigma, noise_form)

    def tilted_linear(self, direction: torch.Tensor, lam: float) -> "GaussianMixture":
        """The exact tilt p0(x)·exp(λ u·x): component means shift by λ v_k u, weights by exp(λ u·μ_k + λ² v_k |u|²/2)."""
        u = torch.as_tensor(direction, dtype=torch.float32)
        logw = torch.log(self.weights) + lam * self.means @ u + 0.5 * lam * lam * self.variances * (u @ u)
        return GaussianMixture(self.means + lam * self.variances[:, None] * u[None], self.variances,
                               torch.softmax(logw, 0))


def standard_mixture() -> GaussianMixture:
    """The 2-D, 3-mode mixture of the reference finding: weights 0.6 / 0.35 / 0.05, variance 0.25."""
    return GaussianMixture([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]], 0.25, [0.6, 0.35, 0.05])
