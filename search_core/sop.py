"""Search over Paths (SoP; Ma et al. 2025, "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising
Steps", arXiv 2501.09732 sec. 3.2) on a k-diffusion sigma schedule, both noise forms.

N particles ODE-solve (DDIM, eta 0) to the start level; then, until σ = 0: each of the N survivors gets M copies
re-noised Δf up with the forward kernel q(x_up | x_k), every copy is ODE-solved down to Δf − Δb below its level and
scored on the x0 prediction of its last solve step, and the top N of the N·M survive. The flow-time settings map to
schedule levels by equal signal-to-noise ratio (t = σ / (a(σ) + σ): eps σ/(1+σ), flow σ), each snapped to the nearest
level of the schedule, with at least one level up and a net step down per move. Every denoiser call is counted:
N per level before the start, then N·M per level of every re-solve.
"""
from __future__ import annotations

import torch

from .config import SoPConfig
from .evaluation import Evaluator
from .noise import ancestral_step, forward_kernel, randn_like
from .particles import check_inputs
from .population import finish_population, flow_time, preview, starts
from .streams import noise_sources
from .trace import Trace, to_list


def sop_levels(sigmas: torch.Tensor, noise_form: str, config: SoPConfig) -> tuple[int, list[tuple[int, int, int]]]:
    """(start index, moves [(from k, re-noised to up < k, solved down to > k)]) on the schedule's indices."""
    t = flow_time(sigmas, noise_form)
    n_steps = sigmas.numel() - 1

    def nearest(value: float) -> int:
        return int((t - value).abs().argmin())

    k = min(max(1, nearest(config.start)), n_steps)   # level 0 cannot be re-noised upwards
    start, moves = k, []
    while k < n_steps:
        up = min(nearest(float(t[k]) + config.forward), k - 1)
        down = min(max(nearest(float(t[k]) + config.forward - config.backward), k + 1), n_steps)
        moves.append((k, up, down))
        k = down
    return start, moves


def sop_nfe(sigmas: torch.Tensor, noise_form: str, config: SoPConfig, n: int) -> int:
    """Denoiser calls per item: N per level to the start, N·M per level of every re-solve."""
    start, moves = sop_levels(torch.as_tensor(sigmas, dtype=torch.float32), noise_form, config)
    return n * start + sum(n * config.branches * (down - up) for _, up, down in moves)


def _solve(ev, x, sigma_list, first: int, last: int, items, noise_form, callback, n_items):
    """DDIM (eta 0, the probability-flow ODE) from level ``first`` down to ``last``; returns (x, last x0)."""
    x0 = None
    for j in range(first, last):
        x0 = ev.denoise(x, torch.full((x.shape[0],), sigma_list[j], device=x.device), items)
        preview(callback, j, sigma_list[j], x0, x, n_items)
        x = ancestral_step(x, x0, sigma_list[j], sigma_list[j + 1], None, noise_form, 0.0)
    return x, x0


def sample_sop(model, x, sigmas, extra_args=None, callback=None, disable=None, *, score_fn, generator,
               n_particles: int = 4, config: SoPConfig | None = None, select_fn=None, select_for: str = "final",
               noise_form: str = "eps", max_batch=None, trace: Trace | None = None,
               start_x0: torch.Tensor | None = None, algorithm: str = "bfs") -> torch.Tensor:
    """SoP with N = ``n_particles`` and the config's M, start, Δf, Δb; returns the best final sample per item.

    ``generator``, ``trace``: as ``sample_bfs`` (with ParticleStreams: the N starts from their streams, the
    re-noising from the population generator)."""
    config = (config or SoPConfig()).validate()
    sigmas = check_inputs(x, sigmas, generator, n_particles, noise_form, 0.0)
    streams, generator = noise_sources(generator)
    if not callable(score_fn):
        raise ValueError("score_fn is required: a callable x0 [M, ...] -> rewards [M] (the verifier)")
    weight_fn = select_fn if (select_fn is not None and select_for == "resample_and_final") else score_fn
    final_fn = select_fn or score_fn
    n_items, n, m, n_steps = x.shape[0], int(n_particles), int(config.branches), sigmas.numel() - 1
    start, moves = sop_levels(sigmas, noise_form, config)
    slots = n * m if moves else n
    ev = Evaluator(model, extra_args, n_items, max_batch, x.device)
    trace = Trace.begin(trace, algorithm)
    t = flow_time(sigmas, noise_form)
    trace.emit("start", n_items=n_items, n_particles=slots, n_steps=n_steps, sigmas=sigmas, noise_form=noise_form,
               config=to_list({**config.to_dict(), "preset": config.name, "n": n, "start_step": start,
                               "moves": [list(mv) for mv in moves], "flow_times": t}))
    sigma_list = sigmas.tolist()
    xs = starts(x, n, n, sigmas[0], noise_form, generator, start_x0, streams)
    xs, x0 = _solve(ev, xs, sigma_list, 0, start, torch.arange(n_items, device=x.device).repeat_interleave(n),
                    noise_form, callback, n_items)
    survivors = None
    if moves:   # the first branching: survivor j's copies fill slots j·M .. j·M + M - 1
        ancestors = torch.arange(n, device=x.device).repeat_interleave(m).expand(n_items, slots)
        counts = torch.zeros(n_items, slots, dtype=torch.long)
        counts[:, :n] = m
        trace.emit("step", step=start - 1, sigma=sigma_list[start - 1], scores=None, weights=None, ess=None,
                   temperature=None, resampled=True, ancestors=ancestors.tolist(), counts=counts.tolist(),
                   nfe=ev.nfe)
    items = torch.arange(n_items, device=x.device).repeat_interleave(slots)
    for k, up, down in moves:
        copies = xs.repeat_interleave(m, 0)
        noised = forward_kernel(copies, sigma_list[k], sigma_list[up], randn_like(copies, generator), noise_form)
        cand, x0 = _solve(ev, noised, sigma_list, up, down, items, noise_form, callback, n_items)
        rewards = ev.score(weight_fn, x0).reshape(n_items, slots)
        keep = torch.argsort(rewards, dim=1, descending=True, stable=True)[:, :n]
        step = dict(step=down - 1, sigma=sigma_list[down - 1], scores=to_list(rewards), weights=None, ess=None,
                    temperature=None, nfe=ev.nfe)
        if down < n_steps:
            rows = (keep + torch.arange(0, n_items * slots, slots, device=x.device)[:, None]).reshape(-1)
            xs = cand.index_select(0, rows)
            ancestors = keep.repeat_interleave(m, 1)
            counts = torch.zeros(n_items, slots, dtype=torch.long, device=x.device).scatter_(1, keep, m)
            trace.emit("step", resampled=True, ancestors=ancestors.tolist(), counts=counts.tolist(), **step)
        else:       # the complete samples: the top N are the candidates of the final pick
            xs = cand
            survivors = torch.zeros(n_items, slots, dtype=torch.bool, device=x.device).scatter_(1, keep, True)
            trace.emit("step", resampled=False, ancestors=None, counts=None, **step)
    return finish_population(trace, ev, xs, n_items, final_fn, survivors, slots)
