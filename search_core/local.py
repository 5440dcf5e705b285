"""Local search alone: annealed Langevin MCMC (guidance + recurrence) on N independent particles per item.

Paper, "Local Search via Annealed Langevin MCMC". The final pick uses ``select_fn`` (dual verifiers), else
``score_fn``, else the guiding verifier itself. Same k-diffusion signature as the other samplers.
"""
from __future__ import annotations

import torch

from .bfs import sample_bfs
from .config import LangevinConfig
from .presets import get_preset
from .trace import Trace


def sample_local(model, x, sigmas, extra_args=None, callback=None, disable=None, *, guide_fn, generator,
                 config: LangevinConfig | None = None, select_fn=None, score_fn=None, n_particles: int = 1,
                 noise_form: str = "eps", eta: float = 1.0, max_batch: int | None = None, trace: Trace | None = None,
                 start_x0: torch.Tensor | None = None) -> torch.Tensor:
    """Langevin local search on every step (``config``); returns the selected sample per item [B, ...].

    ``generator`` (a torch.Generator or ParticleStreams) and ``trace``: as ``sample_bfs``."""
    if not callable(guide_fn):
        raise ValueError("guide_fn is required: a differentiable callable x0 [M, ...] -> rewards [M]")
    return sample_bfs(model, x, sigmas, extra_args, callback, disable, score_fn=score_fn or guide_fn,
                      generator=generator, n_particles=n_particles, config=get_preset("best_of_n"),
                      select_fn=select_fn, local=config or LangevinConfig(), guide_fn=guide_fn,
                      noise_form=noise_form, eta=eta, max_batch=max_batch, trace=trace, start_x0=start_x0,
                      algorithm="local")
