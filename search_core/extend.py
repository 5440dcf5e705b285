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

import torch

from .config import BFSConfig
from .trace import SearchResult


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
