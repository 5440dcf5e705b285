"""Local search steps: verifier-gradient guidance plus recurrence = annealed Langevin MCMC (paper, Proposition 1).

A guided step moves the x0 prediction up the verifier: in x0 space (x0 += μ·∇_x0 r, ``steps`` times) and/or
through the denoiser (x0 += ρ·(σ²/a)·∇_{x_t} r(D(x_t)), Tweedie's correction for a tilt exp(ρ·r)). The stochastic
base step follows; each recurrence re-noises x_{t-1} back to σ_t with the forward kernel and repeats both.
"""
from __future__ import annotations

import torch

from .config import LangevinConfig
from .evaluation import Evaluator
from .noise import ancestral_step, forward_kernel, randn_like, signal_scale


def _clip(grad: torch.Tensor, max_norm: float | None) -> torch.Tensor:
    if not torch.isfinite(grad).all():
        raise ValueError("the verifier gradient has NaN/inf entries; lower the step sizes (rho, mu) or set "
                         "LangevinConfig(grad_clip=...)")
    if max_norm is None:
        return grad
    norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (max_norm / norm).clamp(max=1.0)
    return grad * factor.reshape(-1, *([1] * (grad.dim() - 1)))


def guided_denoise(ev: Evaluator, x: torch.Tensor, sigma_rows: torch.Tensor, items: torch.Tensor,
                   cfg: LangevinConfig, guide_fn, noise_form: str, report: bool = True):
    """(guided x0, guide reward of the unguided x0, guide reward of the guided x0) for the rows of x.

    The reward after costs one more forward pass of the guide verifier (a quarter of a guided step): it is what
    the trace's local events report, so it is None unless ``report`` and ``cfg.report_gain``.
    """
    reward_before = None
    moved = False
    if cfg.grad_mode == "denoiser":
        x0, reward_before, grad = ev.reward_grad_x(guide_fn, x, sigma_rows, items)
        s = sigma_rows.to(x).reshape(-1, *([1] * (x.dim() - 1)))
        a = signal_scale(s, noise_form)
        tweedie = torch.where(a > 0, s * s / a.clamp_min(1e-12), torch.zeros_like(s))
        x0 = x0 + cfg.rho * tweedie * _clip(grad, cfg.grad_clip)
        moved = cfg.rho > 0
    else:
        x0 = ev.denoise(x, sigma_rows, items)
    if cfg.mu > 0:
        for _ in range(cfg.steps):
            reward, grad = ev.reward_grad_x0(guide_fn, x0)
            reward_before = reward if reward_before is None else reward_before
            x0 = x0 + cfg.mu * _clip(grad, cfg.grad_clip)
            moved = True
    if not moved:
        return x0, reward_before, reward_before
    reward_after = ev.score(guide_fn, x0, "guide_fn") if report and cfg.report_gain else None
    return x0, reward_before, reward_after


def advance(ev: Evaluator, x: torch.Tensor, x0: torch.Tensor, sigma, sigma_next, items: torch.Tensor,
            generator: torch.Generator, noise_form: str, eta: float, local: LangevinConfig | None = None,
            guide_fn=None, report: bool = True):
    """Stochastic base step σ -> σ_next from (x, x0), then ``local.recur_steps`` recurrences if local is given.

    Returns (x_next, last x0, reward after the local search or None). ``sigma``/``sigma_next`` are scalars or
    one per row.
    """
    noise = randn_like(x, generator) if eta > 0 else None
    x_next = ancestral_step(x, x0, sigma, sigma_next, noise, noise_form, eta)
    reward_after = None
    if local is None:
        return x_next, x0, reward_after
    sigma_rows = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).expand(x.shape[0])
    for _ in range(local.recur_steps):
        x_back = forward_kernel(x_next, sigma_next, sigma, randn_like(x, generator), noise_form)
        x0, _, reward_after = guided_denoise(ev, x_back, sigma_rows, items, local, guide_fn, noise_form, report)
        noise = randn_like(x, generator) if eta > 0 else None
        x_next = ancestral_step(x_back, x0, sigma, sigma_next, noise, noise_form, eta)
    return x_next, x0, reward_after
