"""Input checks and the particle layout shared by the samplers (item-major: particles of item b at rows b*N:(b+1)*N)."""
from __future__ import annotations

import torch

from .noise import check_noise_form, noised, randn_like
from .streams import noise_sources


def check_inputs(x: torch.Tensor, sigmas: torch.Tensor, generator, n_particles: int = 1,
                 noise_form: str = "eps", eta: float = 1.0) -> torch.Tensor:
    """Validate the common sampler arguments; returns sigmas as a 1-D float tensor on x's device."""
    noise_sources(generator)   # a torch.Generator or ParticleStreams, else a clear error
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError("x must be a tensor [items, ...] with at least 2 dimensions")
    if int(n_particles) < 1:
        raise ValueError(f"n_particles={n_particles}: use at least 1 particle per item")
    check_noise_form(noise_form)
    if not eta >= 0:
        raise ValueError(f"eta={eta} must be >= 0 (1: ancestral / DDPM-like, 0: deterministic DDIM)")
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32).to(x.device).flatten()
    if sigmas.numel() < 2:
        raise ValueError("sigmas needs at least 2 values (start and end noise level); got "
                         f"{sigmas.numel()}")
    if not torch.isfinite(sigmas).all() or (sigmas < 0).any():
        raise ValueError("sigmas must be finite and >= 0")
    if not (sigmas[1:] < sigmas[:-1]).all():
        raise ValueError("sigmas must be strictly decreasing (a denoising schedule from high to low noise)")
    if noise_form == "flow" and sigmas[0] > 1:
        raise ValueError(f"flow-form sigmas must lie in [0, 1] (got {float(sigmas[0]):.3g}); use noise_form='eps'")
    return sigmas


def fresh_start(like: torch.Tensor, sigma0, noise_form: str, generator: torch.Generator,
                start_x0: torch.Tensor | None = None) -> torch.Tensor:
    """A new noised start at σ0: a(σ0)·start_x0 + σ0·ε (start_x0 = 0 for text-to-image)."""
    base = torch.zeros_like(like) if start_x0 is None else start_x0.to(like).expand_as(like)
    return noised(base, sigma0, randn_like(like, generator), noise_form)


def expand_particles(x: torch.Tensor, n: int, sigma0, noise_form: str, generator, start_x0: torch.Tensor | None = None,
                     streams=None) -> torch.Tensor:
    """[B, ...] -> [B*N, ...]: particle 0 of each item keeps the given noise, the others start from fresh noise.

    ``streams`` (``ParticleStreams``): each fresh start is drawn from its particle's stream; when the streams begin
    after particle 0 (an extension adding particles), every particle starts fresh."""
    b = x.shape[0]
    if streams is not None and streams.first > 0:
        start = None if start_x0 is None else start_x0.to(x).expand_as(x).repeat_interleave(n, 0)
        return fresh_start(x.repeat_interleave(n, 0), sigma0, noise_form, streams.rows(), start)
    if n == 1:
        return x.clone()
    if streams is not None:
        generator = streams.rows([r for r in range(b * n) if r % n])
    start = None if start_x0 is None else start_x0.to(x).expand_as(x).repeat_interleave(n - 1, 0)
    others = fresh_start(x.repeat_interleave(n - 1, 0), sigma0, noise_form, generator, start)
    out = torch.cat([x[:, None], others.reshape(b, n - 1, *x.shape[1:])], dim=1)
    return out.reshape(b * n, *x.shape[1:])


def ancestor_rows(ancestors: torch.Tensor) -> torch.Tensor:
    """Flat row indices [B*N] of per-item ancestor indices [B, N] (item-major layout)."""
    b, n = ancestors.shape
    return (ancestors + torch.arange(0, b * n, n, device=ancestors.device)[:, None]).reshape(-1)


def gather_particles(values: torch.Tensor, ancestors: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Copy rows [B*N, ...] by per-item ancestor indices [B, N] (or precomputed ``rows``)."""
    rows = ancestor_rows(ancestors) if rows is None else rows
    return values.index_select(0, rows.to(values.device))


def item_view(values: torch.Tensor, n_items: int) -> torch.Tensor:
    """[B*N, ...] -> [B, N, ...]."""
    return values.reshape(n_items, -1, *values.shape[1:])
