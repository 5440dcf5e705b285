"""Shared by the baselines whose population is not N fixed particles (SoP, DSearch, seed pruning): flow time,
start noise, the callback and the final pick (trace event ``final``, the Trace's result fields)."""
from __future__ import annotations

import torch

from .noise import signal_scale
from .particles import expand_particles, fresh_start
from .streams import ParticleStreams
from .trace import Trace, to_list

EXTRA_STREAMS, MAX_WIDTH = 2 ** 40, 4096   # stream indices of the oversampled starts (beyond any particle's)
EMPTY = -1   # an ancestor index that marks a slot holding no particle from this step on (a pruned beam)


def flow_time(sigmas: torch.Tensor, noise_form: str) -> torch.Tensor:
    """Flow time t in [0, 1] (1 = noise) of the same signal-to-noise ratio: t = σ / (a(σ) + σ); eps: σ/(1+σ)."""
    s = sigmas.double()
    return s / (signal_scale(s, noise_form) + s)


def starts(x: torch.Tensor, width: int, n: int, sigma0, noise_form: str, generator, start_x0, streams):
    """[B*width] start particles: the first n of each item as BFS makes them (particle 0 keeps the given noise,
    per-particle ``streams`` when given), the other width - n fresh from ``generator``, or with ``streams`` from
    streams of their own (indices past every particle's, so a further population never repeats them)."""
    if streams is None:
        return expand_particles(x, width, sigma0, noise_form, generator, start_x0)
    if len(streams) != x.shape[0] * n:
        raise ValueError(f"generator: the ParticleStreams have {len(streams)} rows for {x.shape[0]} items x {n} "
                         f"particles; make them ParticleStreams(seed, {x.shape[0]}, {n})")
    first = expand_particles(x, n, sigma0, noise_form, generator, start_x0, streams).reshape(x.shape[0], n,
                                                                                         *x.shape[1:])
    if width == n:
        return first.reshape(-1, *x.shape[1:])
    like = x.repeat_interleave(width - n, 0)
    base = None if start_x0 is None else start_x0.to(x).expand_as(x).repeat_interleave(width - n, 0)
    extra_streams = ParticleStreams(streams.seed, x.shape[0], width - n, EXTRA_STREAMS + streams.first * MAX_WIDTH)
    extra = fresh_start(like, sigma0, noise_form, extra_streams.rows(), base).reshape(x.shape[0], width - n, *x.shape[1:])
    return torch.cat([first, extra], 1).reshape(-1, *x.shape[1:])


def preview(callback, step: int, sigma, x0: torch.Tensor, x: torch.Tensor, n_items: int,
            rewards: torch.Tensor | None = None) -> None:
    """ComfyUI's preview, progress and interrupt check, once per denoising step: the best-scored particle of each
    item (the first where this step scored nothing)."""
    if callback is None:
        return
    width = x0.shape[0] // n_items
    best = rewards.argmax(1).to(x0.device) if rewards is not None else torch.zeros(n_items, dtype=torch.long,
                                                                                 device=x0.device)
    pick = torch.arange(n_items, device=x0.device) * width + best
    callback({"i": step, "denoised": x0[pick], "x": x[pick], "sigma": sigma, "sigma_hat": sigma})


def finish_population(trace: Trace, ev, xs: torch.Tensor, n_items: int, final_fn, survivors: torch.Tensor | None,
                      slots: int) -> torch.Tensor:
    """Score the final population [B*W] with the selecting verifier, pick the best (among ``survivors`` [B, W] when
    given), fill the trace and emit ``final`` (rows padded with null rewards to the trace's ``slots``)."""
    rewards = ev.score(final_fn, xs).reshape(n_items, -1)
    width = rewards.shape[1]
    order = torch.argsort(rewards, dim=1, descending=True, stable=True)
    masked = rewards.double() if survivors is None else torch.where(survivors, rewards.double(), -torch.inf)
    selected = masked.argmax(1)
    particles = xs.reshape(n_items, width, *xs.shape[1:])
    samples = particles[torch.arange(n_items, device=xs.device), selected]
    trace.samples, trace.particles, trace.rewards, trace.order = samples, particles, rewards, order
    trace.selected, trace.nfe, trace.nfe_per_item = selected, ev.nfe, ev.nfe_per_item.tolist()
    trace.score_evals = ev.score_evals
    pad = slots - width
    rows, ranks = to_list(rewards), order.tolist()
    if pad:   # the trace's matrices have one entry per slot: empty slots have no reward and rank last
        rows = [r + [None] * pad for r in rows]
        ranks = [r + list(range(width, slots)) for r in ranks]
    trace.emit("final", rewards=rows, order=ranks, selected=selected.tolist(), nfe=ev.nfe,
               nfe_per_item=trace.nfe_per_item, grad_evals=0, resampled=None, ess=None, counts=None)
    return samples
