"""Noise forms, the stochastic base step and the forward (re-noising) kernel, for both ComfyUI parameterisations.

- ``"eps"``:  x_σ = x0 + σ·ε            (SD1.5, SDXL; v-prediction after ComfyUI's wrapper)
- ``"flow"``: x_σ = (1-σ)·x0 + σ·ε      (SD3, FLUX; ComfyUI's CONST model sampling)

Both are written as x_σ = a(σ)·x0 + σ·ε. Dividing by a gives the eps form with s = σ/a, so one ancestral step
(DDIM / Euler-ancestral with ``eta``) and one forward kernel serve both. Sigmas may be scalars or one per row
(DFS moves items at different noise levels in one batch).
"""
from __future__ import annotations

import math

import torch

from .streams import RowNoise

NOISE_FORMS = ("eps", "flow")


def check_noise_form(noise_form: str) -> str:
    if noise_form not in NOISE_FORMS:
        raise ValueError(f"noise_form={noise_form!r} is not supported; use 'eps' (x0 + σ·ε: SD1.5, SDXL) "
                         f"or 'flow' ((1-σ)·x0 + σ·ε: SD3, FLUX)")
    return noise_form


def _rows(value, x: torch.Tensor) -> torch.Tensor:
    """A sigma (scalar or one per row) as a float64-free tensor broadcastable against ``x``."""
    t = torch.as_tensor(value, device=x.device).to(x.dtype)
    if t.dim() == 0:
        return t
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def signal_scale(sigma, noise_form: str):
    """a(σ): 1 for eps, 1 - σ for flow."""
    return sigma * 0 + 1 if noise_form == "eps" else 1 - sigma


def alpha_bar(sigma: torch.Tensor, noise_form: str) -> torch.Tensor:
    """Signal fraction ᾱ = a² / (a² + σ²) of a noise level (1 at σ = 0)."""
    a = signal_scale(sigma, noise_form)
    return a * a / (a * a + sigma * sigma)


def randn_like(x: torch.Tensor, generator: torch.Generator | RowNoise) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` drawn from ``generator`` (on the generator's device), or row by row
    from per-particle streams (``RowNoise``)."""
    if isinstance(generator, RowNoise):
        return generator.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32).to(x)


def noised(x0: torch.Tensor, sigma, noise: torch.Tensor, noise_form: str) -> torch.Tensor:
    """The marginal sample x_σ = a(σ)·x0 + σ·ε."""
    s = _rows(sigma, x0)
    return signal_scale(s, noise_form) * x0 + s * noise


def ancestral_coefficients(sigma, sigma_next, noise_form: str, eta: float = 1.0):
    """(A, C, E) with x_next = A·x + C·x0 + E·ε for the DDIM / Euler-ancestral step σ -> σ_next."""
    a, a_next = signal_scale(sigma, noise_form), signal_scale(sigma_next, noise_form)
    # ratio of the eps-equivalent levels s_next/s with s = σ/a; 0 at the flow form's σ = 1 (pure noise)
    ratio = sigma_next * a / (torch.as_tensor(a_next).clamp_min(1e-12) * sigma)
    c_up = (eta * (1 - ratio * ratio).clamp_min(0).sqrt()).clamp(max=1.0)
    c_down = (1 - c_up * c_up).clamp_min(0).sqrt()
    scale_x = sigma_next * c_down / sigma          # x_next = a_next·x0 + σ_next·(c_down·ε̂ + c_up·ε), ε̂ = (x - a·x0)/σ
    return scale_x, a_next - scale_x * a, sigma_next * c_up


def _scalar_coefficients(sigma: float, sigma_next: float, noise_form: str, eta: float) -> tuple[float, ...]:
    """``ancestral_coefficients`` in plain Python for one shared level (no tensor dispatch per step)."""
    a, a_next = (1.0, 1.0) if noise_form == "eps" else (1.0 - sigma, 1.0 - sigma_next)
    ratio = sigma_next * a / (max(a_next, 1e-12) * sigma)
    c_up = min(1.0, eta * math.sqrt(max(1.0 - ratio * ratio, 0.0)))
    scale_x = sigma_next * math.sqrt(max(1.0 - c_up * c_up, 0.0)) / sigma
    return scale_x, a_next - scale_x * a, sigma_next * c_up


def ancestral_step(x: torch.Tensor, denoised: torch.Tensor, sigma, sigma_next, noise: torch.Tensor | None,
                   noise_form: str, eta: float = 1.0) -> torch.Tensor:
    """One DDIM / Euler-ancestral step σ -> σ_next (eta = 1: ancestral posterior; eta = 0: deterministic DDIM)."""
    if isinstance(sigma, float) and isinstance(sigma_next, float):  # one level for all rows: plain floats, no kernels
        coef_x, coef_x0, coef_noise = _scalar_coefficients(sigma, sigma_next, noise_form, eta)
    else:
        s = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)
        s_next = torch.as_tensor(sigma_next, dtype=torch.float64, device=x.device)
        coef_x, coef_x0, coef_noise = (_rows(c, x) for c in ancestral_coefficients(s, s_next, noise_form, eta))
    out = x * coef_x
    out.add_(denoised * coef_x0)
    if noise is not None:
        out.add_(noise * coef_noise)
    return out


def forward_kernel(x: torch.Tensor, sigma, sigma_to, noise: torch.Tensor, noise_form: str) -> torch.Tensor:
    """Sample q(x_σ' | x_σ) for σ' >= σ: re-noise to a higher level (DFS backtracking, recurrence)."""
    s, s_to = _rows(sigma, x), _rows(sigma_to, x)
    a, a_to = signal_scale(s, noise_form), signal_scale(s_to, noise_form)
    scale = torch.where(a > 0, a_to / a.clamp_min(1e-12), torch.zeros_like(a * a_to))
    std = (s_to * s_to - (scale * s) ** 2).clamp_min(0).sqrt()
    return scale * x + std * noise
