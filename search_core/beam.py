"""A beam per item kept by x0 reward, its width on a schedule: DSearch, DSearch-R (Li et al. 2025, "Dynamic Search
for Inference-Time Alignment in Diffusion Models", arXiv 2503.02039) and progressive seed pruning (arXiv 2607.21591).

Step i (not the last): every member steps σ_i -> σ_{i+1} K times (K = ``children``; at DSearch's search steps, drawn
with probability p_i, K = int(w · children · W0 / W)); each child's x0 at σ_{i+1} is predicted (K·W NFE) and, where
a choice is made, scored; a member keeps its best child; the beam drops to the scheduled width by the members' rewards
(DSearch-R instead replaces its worst members by a draw ∝ exp(λ·r) among the others). The kept child's x0 is the next
step's prediction, so no call is repeated: NFE = W0 + Σ_i K_i · W_i. The last step lands on the schedule's end.
"""
from __future__ import annotations

import math

import torch

from .config import BeamConfig
from .evaluation import Evaluator
from .noise import ancestral_step, randn_like
from .particles import check_inputs
from .population import EMPTY, finish_population, preview, starts
from .streams import noise_sources
from .trace import Trace, to_list


def beam_widths(config: BeamConfig, n: int, n_steps: int) -> tuple[int, list[int]]:
    """(first width W0, width after each step i = 0 .. n_steps - 2): DSearch's drop schedules (the source's
    formulas over T - 1 = n_steps - 1 steps) or seed pruning's prunes after the x0 call at round(p·T) - 1 (at least
    step 1: the first scored prediction is the one at σ_1)."""
    w0 = max(n, math.ceil(config.oversample * n - 1e-9))
    span = n_steps - 1
    kind = config.drop_schedule
    if kind == "none":
        return w0, [w0] * span
    if kind == "steps":
        widths, width = [], w0
        prunes = {max(1, round(p * n_steps) - 1): max(1, math.ceil(k * n - 1e-9))
                  for p, k in zip(config.prune_at, config.keep)}
        for i in range(span):   # the drop after step i acts on x0 at σ_{i+1}
            width = min(width, prunes.get(i + 1, width))
            widths.append(width)
        return w0, widths
    if kind == "exponential":
        widths = [int(w0 * (n / w0) ** (i / span)) for i in range(span)]
    elif kind == "quadratic":
        widths = [int(n + (w0 - n) * (1 - i / span) ** 2) for i in range(span)]
    elif kind == "linear":
        widths = [int(w0 - i * (w0 - n) / span) for i in range(span)]
    else:   # sigmoid, steepness 10, reversed (the source's)
        widths = [int(w0 / (1 + math.exp(-10 * (i / span - 0.5)))) for i in range(span)][::-1]
    return w0, [max(n, w) for w in widths]


def search_probability(config: BeamConfig, i: int, n_steps: int) -> float:
    """DSearch's p_i that step i runs the wider search (the source's four schedules; "none": never)."""
    span = max(1, n_steps - 1)
    return {"none": 0.0, "all": 1.1, "uniform": 0.7, "linear": (i + 10) / span,
            "exponential": 1 - math.exp(-i / (span / 3))}[config.search_schedule]


def expected_nfe(config: BeamConfig, n: int, n_steps: int) -> float:
    """Denoiser calls per item in expectation over the search draws: W0 + Σ_i W_i · E[K_i] (to size a budget)."""
    w0, widths = beam_widths(config, n, n_steps)
    total, width = float(w0), w0
    for i in range(n_steps - 1):
        p = min(1.0, search_probability(config, i, n_steps))
        wide = max(1, int(config.search_width * config.children * (w0 / width if w0 > width else 1)))
        total += width * (p * wide + (1 - p) * config.children)
        width = n if config.replace_rate > 0 else widths[i]
    return total


def _uniform(generator, shape) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)


def sample_beam(model, x, sigmas, extra_args=None, callback=None, disable=None, *, score_fn, generator,
                n_particles: int = 4, config: BeamConfig | None = None, select_fn=None, select_for: str = "final",
                noise_form: str = "eps", max_batch=None, trace: Trace | None = None,
                start_x0: torch.Tensor | None = None, algorithm: str = "bfs") -> torch.Tensor:
    """The beam search of ``config`` with final width N = ``n_particles``; returns the best final sample per item.

    ``generator``, ``trace``: as ``sample_bfs`` (with ParticleStreams: the starts from streams, the step noise and
    the search draws from the population generator)."""
    config = (config or BeamConfig()).validate()
    sigmas = check_inputs(x, sigmas, generator, n_particles, noise_form, config.eta)
    streams, generator = noise_sources(generator)
    if not callable(score_fn):
        raise ValueError("score_fn is required: a callable x0 [M, ...] -> rewards [M] (the verifier)")
    weight_fn = select_fn if (select_fn is not None and select_for == "resample_and_final") else score_fn
    n_items, n, n_steps, dev = x.shape[0], int(n_particles), sigmas.numel() - 1, x.device
    w0, widths = beam_widths(config, n, n_steps)
    ev = Evaluator(model, extra_args, n_items, max_batch, dev)
    trace = Trace.begin(trace, algorithm)
    trace.emit("start", n_items=n_items, n_particles=w0, n_steps=n_steps, sigmas=sigmas, noise_form=noise_form,
               config=to_list({**config.to_dict(), "preset": config.name, "n": n, "widths": [w0] + widths}))
    sigma_list = sigmas.tolist()
    xs = starts(x, w0, n, sigmas[0], noise_form, generator, start_x0, streams)
    width = w0
    x0 = ev.denoise(xs, sigmas[0].expand(xs.shape[0]), torch.arange(n_items, device=dev).repeat_interleave(w0))
    for i in range(n_steps - 1):
        k = int(config.children)
        if config.search_schedule != "none" and float(_uniform(generator, (1,))) < search_probability(config, i,
                                                                                                     n_steps):
            k = max(1, int(config.search_width * config.children * (w0 / width if w0 > width else 1)))
        drop_to = widths[i]
        kids = xs.repeat_interleave(k, 0)
        noise = randn_like(kids, generator) if config.eta > 0 else None
        kids = ancestral_step(kids, x0.repeat_interleave(k, 0), sigma_list[i], sigma_list[i + 1], noise, noise_form,
                              config.eta)
        kid_x0 = ev.denoise(kids, sigmas[i + 1].expand(kids.shape[0]),
                            torch.arange(n_items, device=dev).repeat_interleave(width * k))
        if k == 1 and drop_to >= width and config.replace_rate == 0:
            xs, x0 = kids, kid_x0    # nothing to choose at this step: the verifier is not called
            preview(callback, i, sigma_list[i + 1], x0, xs, n_items)
            continue
        rewards = ev.score(weight_fn, kid_x0).reshape(n_items, width, k)
        member_r, best = rewards.max(2)                                  # each member keeps its best child
        rows = (torch.arange(n_items * width, device=dev) * k + best.reshape(-1).to(dev))
        xs, x0 = kids.index_select(0, rows), kid_x0.index_select(0, rows)
        if drop_to < width:   # DSearch-E / seed pruning: the best drop_to members, best first
            parents = torch.argsort(member_r, dim=1, descending=True, stable=True)[:, :drop_to]
        else:
            parents = torch.arange(width, device=dev).expand(n_items, width)
        if config.replace_rate > 0:
            parents = _replace(parents, member_r, config, n, generator)
        new_width = parents.shape[1]
        flat = (parents + torch.arange(0, n_items * width, width, device=dev)[:, None]).reshape(-1)
        xs, x0 = xs.index_select(0, flat), x0.index_select(0, flat)
        scores = torch.full((n_items, w0), math.nan, dtype=torch.float64)
        scores[:, :width] = member_r.double().cpu()
        ancestors = torch.full((n_items, w0), EMPTY, dtype=torch.long)
        ancestors[:, :new_width] = parents.cpu()
        counts = torch.zeros(n_items, w0, dtype=torch.long).scatter_add_(1, parents.cpu(),
                                                                           torch.ones_like(parents.cpu()))
        trace.emit("step", step=i + 1, sigma=sigma_list[i + 1], scores=to_list(scores), weights=None, ess=None,
                   temperature=None, resampled=True, ancestors=ancestors.tolist(), counts=counts.tolist(),
                   children=k, width=new_width, nfe=ev.nfe)
        preview(callback, i, sigma_list[i + 1], x0, xs, n_items, member_r.gather(1, parents))
        width = new_width
    noise = randn_like(xs, generator) if config.eta > 0 else None
    preview(callback, n_steps - 1, sigma_list[-2], x0, xs, n_items)
    xs = ancestral_step(xs, x0, sigma_list[-2], sigma_list[-1], noise, noise_form, config.eta)
    return finish_population(trace, ev, xs, n_items, select_fn or score_fn, None, w0)


def _replace(parents: torch.Tensor, member_r: torch.Tensor, config: BeamConfig, n: int, generator) -> torch.Tensor:
    """DSearch-R: the worst max(1, int(rate · N)) members are replaced by draws ∝ exp(λ·r) among the others; the
    others keep their order, the replacements follow them."""
    n_items, width = parents.shape
    n_rep = min(width - 1, max(1, int(config.replace_rate * n)))
    if n_rep < 1:
        return parents
    r = member_r.gather(1, parents)
    worst = torch.argsort(r, dim=1, stable=True)[:, :n_rep]
    keep = torch.ones(n_items, width, dtype=torch.bool, device=r.device).scatter_(1, worst, False)
    remain = parents[keep].reshape(n_items, width - n_rep)
    remain_r = r[keep].reshape(n_items, width - n_rep).double()
    probs = torch.softmax(config.lam * remain_r, dim=1).to(generator.device)
    draws = torch.multinomial(probs, n_rep, replacement=True, generator=generator).to(r.device)
    return torch.cat([remain, remain.gather(1, draws)], 1)
