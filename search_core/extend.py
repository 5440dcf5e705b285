"""Extending a finished search with more budget, reusing the work already done (issue 14, part 2).

With per-particle streams (``streams.ParticleStreams``) a particle's path does not depend on how many particles run:

- Best-of-N (no resampling, the best final pick): N + k particles = the N already run + k new ones (particles N..N+k-1
  on their own streams); the merged pick is the one N + k would make. Exact.
- DFS: ``sample_dfs(resume=state)`` continues the items that wanted to backtrack but had no budget. Exact.
- Other BFS presets: resampling couples the particles, so the k new particles run as a further population and the
  better of the two populations' picks (by the selecting verifier) is returned. Never worse than the first run; not
  the same as one run of N + k (docs/extend.md measures the difference).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import BFSConfig
from .streams import ParticleStreams
from .trace import Trace

DFS_PREFIX = "dfs."   # kept tensors of a DFS's resume state (``Trace.state``)
MERGED = ("particles", "rewards", "samples", "selected", "nfe_per_item")   # what a BFS extension merges with


@dataclass(frozen=True)
class Earlier:
    """A finished search that a larger budget continues: its budget and its kept tensors (``kept_tensors``)."""

    budget: int
    tensors: dict


def is_exact_bfs(config: BFSConfig) -> bool:
    """True when the particles never interact (Best-of-N, local search alone): adding particles is exact."""
    if not isinstance(config, BFSConfig):
        return False   # SoP / beams: the population is coupled
    return config.resampling == "none" and config.final_ess_threshold is None and config.final_pick == "best"


def result_tensors(trace: Trace) -> dict:
    """The tensors of a finished search an extension merges with (particles, rewards, pick), on the CPU."""
    out = {"particles": trace.particles, "rewards": trace.rewards, "samples": trace.samples,
           "nfe_per_item": torch.as_tensor(trace.nfe_per_item, dtype=torch.long)}
    if trace.selected is not None:
        out["selected"] = trace.selected
    return {key: value.detach().to("cpu", copy=True) for key, value in out.items() if value is not None}


def merge_populations(previous: dict, trace: Trace, exact: bool) -> Trace:
    """Fold the tensors of an earlier search (``result_tensors``) into ``trace``, the trace of the added particles.

    Candidates: the earlier particles first, then the new ones. ``exact``: the pick is the first best reward over
    all of them (what one run of the total would pick); else the better of the two picks, ties kept by the earlier.
    """
    device = trace.particles.device
    old_p, old_r = previous["particles"].to(device, trace.particles.dtype), previous["rewards"].to(device)
    particles = torch.cat([old_p, trace.particles], 1)
    rewards = torch.cat([old_r.to(trace.rewards.dtype), trace.rewards], 1)
    n_items, n_old = old_r.shape
    rows = torch.arange(n_items, device=device)
    if exact:
        selected = rewards.to(torch.float64).argmax(1)
    else:
        old_pick = previous["selected"].to(device)
        new_pick = trace.selected.to(device)
        better = trace.rewards[rows, new_pick] > old_r[rows, old_pick].to(trace.rewards.dtype)
        selected = torch.where(better, new_pick + n_old, old_pick)
    trace.particles, trace.rewards, trace.selected = particles, rewards, selected
    trace.samples = particles[rows, selected]
    trace.order = torch.argsort(rewards, dim=1, descending=True, stable=True)
    added = torch.as_tensor(trace.nfe_per_item, dtype=torch.long)
    trace.nfe_per_item = (previous["nfe_per_item"] + added).tolist()
    return trace


def kept_tensors(trace: Trace) -> dict:
    """What to keep of a finished search to extend it later: ``result_tensors`` and DFS's resume state (CPU)."""
    tensors = result_tensors(trace)
    if trace.algorithm == "dfs" and trace.state is not None:
        tensors.update({DFS_PREFIX + k: v.detach().cpu() for k, v in trace.state.items()
                        if isinstance(v, torch.Tensor)})
    return tensors


def extend_particles(search_fn, model, x, sigmas, extra_args=None, callback=None, disable=None, *, seed: int,
                     budget: int, exact: bool, earlier: Earlier | None = None, trace: Trace,
                     generator: torch.Generator, **kwargs) -> torch.Tensor:
    """BFS / local search: run the particles ``earlier`` lacks (its budget .. budget-1, on their own streams of
    ``seed``; ``generator`` the population's), then merge both populations (``merge_populations``) and emit
    ``extend`` into ``trace``; without ``earlier`` the whole search."""
    first = 0 if earlier is None else earlier.budget
    streams = ParticleStreams(seed, x.shape[0], budget - first, first, population=generator)
    samples = search_fn(model, x, sigmas, extra_args, callback, disable, n_particles=budget - first,
                        generator=streams, trace=trace, **kwargs)
    if earlier is None:
        return samples
    merge_populations({k: earlier.tensors[k] for k in MERGED if k in earlier.tensors}, trace, exact)
    trace.emit("extend", from_budget=earlier.budget, budget=budget, exact=exact, rewards=trace.rewards,
               selected=trace.selected, order=trace.order, nfe=trace.nfe, nfe_per_item=trace.nfe_per_item)
    return trace.samples.to(samples)


def extend_dive(search_fn, model, x, sigmas, extra_args=None, callback=None, disable=None, *, seed: int,
                budget: int, exact: bool, earlier: Earlier | None = None, trace: Trace, generator: torch.Generator,
                **kwargs) -> torch.Tensor:
    """DFS: resume the items of ``earlier`` that wanted to backtrack (``sample_dfs(resume=...)``), one stream per
    item; without ``earlier`` the whole search. Exact; the budget is the config's ``nfe_budget``."""
    if earlier is not None:
        kwargs["resume"] = {**{k[len(DFS_PREFIX):]: v for k, v in earlier.tensors.items()
                               if k.startswith(DFS_PREFIX)}, "budget": earlier.budget}
    streams = ParticleStreams(seed, x.shape[0], population=generator)
    return search_fn(model, x, sigmas, extra_args, callback, disable, generator=streams, trace=trace, **kwargs)


# How each algorithm grows a finished search: more particles (BFS, local search) or more dives (DFS).
STRATEGIES = {"bfs": extend_particles, "local": extend_particles, "dfs": extend_dive}
