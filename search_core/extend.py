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
from .trace import SearchResult, Trace

DFS_PREFIX = "dfs."   # kept tensors of a DFS's resume state (``SearchResult.state``)
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


def result_tensors(result: SearchResult) -> dict:
    """The tensors of a result an extension merges with (particles, rewards, pick), on the CPU."""
    out = {"particles": result.particles, "rewards": result.rewards, "samples": result.samples,
           "nfe_per_item": torch.as_tensor(result.nfe_per_item, dtype=torch.long)}
    if result.selected is not None:
        out["selected"] = result.selected
    return {key: value.detach().to("cpu", copy=True) for key, value in out.items() if value is not None}


def merge_populations(previous: dict, result: SearchResult, exact: bool) -> SearchResult:
    """Fold the tensors of an earlier search (``result_tensors``) into ``result``, the run of the added particles.

    Candidates: the earlier particles first, then the new ones. ``exact``: the pick is the first best reward over
    all of them (what one run of the total would pick); else the better of the two picks, ties kept by the earlier.
    """
    device = result.particles.device
    old_p, old_r = previous["particles"].to(device, result.particles.dtype), previous["rewards"].to(device)
    particles = torch.cat([old_p, result.particles], 1)
    rewards = torch.cat([old_r.to(result.rewards.dtype), result.rewards], 1)
    n_items, n_old = old_r.shape
    rows = torch.arange(n_items, device=device)
    if exact:
        selected = rewards.to(torch.float64).argmax(1)
    else:
        old_pick = previous["selected"].to(device)
        new_pick = result.selected.to(device)
        better = result.rewards[rows, new_pick] > old_r[rows, old_pick].to(result.rewards.dtype)
        selected = torch.where(better, new_pick + n_old, old_pick)
    result.particles, result.rewards, result.selected = particles, rewards, selected
    result.samples = particles[rows, selected]
    result.order = torch.argsort(rewards, dim=1, descending=True, stable=True)
    added = torch.as_tensor(result.nfe_per_item, dtype=torch.long)
    result.nfe_per_item = (previous["nfe_per_item"] + added).tolist()
    return result


def kept_tensors(result: SearchResult) -> dict:
    """What to keep of a finished search to extend it later: ``result_tensors`` and DFS's resume state (CPU)."""
    tensors = result_tensors(result)
    if result.algorithm == "dfs" and result.state is not None:
        tensors.update({DFS_PREFIX + k: v.detach().cpu() for k, v in result.state.items()
                        if isinstance(v, torch.Tensor)})
    return tensors


def extend_particles(search_fn, model, x, sigmas, extra_args=None, callback=None, disable=None, *, seed: int,
                     budget: int, exact: bool, earlier: Earlier | None = None, result: SearchResult,
                     on_event=None, **kwargs) -> torch.Tensor:
    """BFS / local search: run the particles ``earlier`` lacks (its budget .. budget-1, on their own streams), then
    merge both populations (``merge_populations``) and emit ``extend``; without ``earlier`` the whole search."""
    first = 0 if earlier is None else earlier.budget
    samples = search_fn(model, x, sigmas, extra_args, callback, disable, n_particles=budget - first,
                        streams=ParticleStreams(seed, x.shape[0], budget - first, first), on_event=on_event,
                        result=result, **kwargs)
    if earlier is None:
        return samples
    merge_populations({k: earlier.tensors[k] for k in MERGED if k in earlier.tensors}, result, exact)
    Trace.continuing(result, on_event).emit(
        "extend", from_budget=earlier.budget, budget=budget, exact=exact, rewards=result.rewards,
        selected=result.selected, order=result.order, nfe=result.nfe, nfe_per_item=result.nfe_per_item)
    return result.samples.to(samples)


def extend_dive(search_fn, model, x, sigmas, extra_args=None, callback=None, disable=None, *, seed: int,
                budget: int, exact: bool, earlier: Earlier | None = None, result: SearchResult, on_event=None,
                **kwargs) -> torch.Tensor:
    """DFS: resume the items of ``earlier`` that wanted to backtrack (``sample_dfs(resume=...)``), one stream per
    item; without ``earlier`` the whole search. Exact; the budget is the config's ``nfe_budget``."""
    if earlier is not None:
        kwargs["resume"] = {**{k[len(DFS_PREFIX):]: v for k, v in earlier.tensors.items()
                               if k.startswith(DFS_PREFIX)}, "budget": earlier.budget}
    return search_fn(model, x, sigmas, extra_args, callback, disable, streams=ParticleStreams(seed, x.shape[0]),
                     on_event=on_event, result=result, **kwargs)


# How each algorithm grows a finished search: more particles (BFS, local search) or more dives (DFS).
STRATEGIES = {"bfs": extend_particles, "local": extend_particles, "dfs": extend_dive}
