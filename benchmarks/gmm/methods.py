"""The methods the GMM benchmark compares, each run on a batch of independent items (one search per item)."""
from __future__ import annotations

import time

import torch

from search_core import DFSConfig, LangevinConfig, Trace, get_preset, sample_bfs, sample_dfs, sample_local

from .scenarios import N_STEPS, Scenario, energy_distance, mean_and_sem, sigma_schedule

METHODS = ["bon", "fk", "das", "treeg", "svdd", "bfs", "dfs", "local", "bfs+local", "dfs+local"]
PRESET_OF = {"bon": "best_of_n", "fk": "fk", "das": "das", "treeg": "treeg", "svdd": "svdd", "bfs": "bfs"}
RESAMPLE_EVERY = 4            # the reference finding's setting: 24 steps, resampling every 4 steps
LOCAL = LangevinConfig(grad_mode="x0", mu=0.1, steps=1, recur_steps=1, start_step=N_STEPS // 2)
DFS_QUANTILE = 0.95           # δ = the verifier's 95th percentile on base samples: "accept the top 5% of the model"


def bfs_config(preset: str, lam: float, **overrides):
    """The preset at λ; presets that resample at every step (das, treeg, svdd) keep it, the others every 4 steps."""
    every = get_preset(preset).resample_every or RESAMPLE_EVERY
    return get_preset(preset, lam=lam, **{"resample_every": every, **overrides})


def dfs_delta(scenario: Scenario, quantile: float = DFS_QUANTILE, seed: int = 123) -> float:
    base = scenario.mixture.sample(20000, torch.Generator().manual_seed(seed))
    return float(torch.quantile(scenario.verifier(base), quantile))


def dfs_config(n: int, delta: float, **overrides) -> DFSConfig:
    """DFS at the NFE of N particles with the library's defaults (ΔT = T/4, checks from T/2; studies.dfs_study)."""
    return DFSConfig(**{"delta": delta, "nfe_budget": n * N_STEPS, **overrides})


def run(method: str, scenario: Scenario, n: int, n_items: int, seed: int, *, config=None, delta=None,
        select_fn=None, guide_fn=None, local=None) -> tuple[torch.Tensor, Trace, float]:
    """Run one method on ``n_items`` items; returns (samples [items, d], result, seconds)."""
    sigmas = sigma_schedule()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_items, scenario.mixture.dim, generator=g) * sigmas[0]
    model, res = scenario.mixture.denoiser("eps"), Trace()
    common = dict(generator=g, trace=res, select_fn=select_fn)
    start = time.perf_counter()
    if method in ("dfs", "dfs+local"):
        delta = dfs_delta(scenario) if delta is None else delta
        cfg = config if isinstance(config, DFSConfig) else dfs_config(n, delta)
        out = sample_dfs(model, x, sigmas, score_fn=scenario.verifier, config=cfg,
                         local=(local or LOCAL) if method == "dfs+local" else None, guide_fn=guide_fn, **common)
    elif method == "local":
        out = sample_local(model, x, sigmas, guide_fn=guide_fn or scenario.verifier, score_fn=scenario.verifier,
                           n_particles=n, config=local or LOCAL, **common)
    else:
        preset = PRESET_OF.get(method.replace("+local", ""), "bfs")
        cfg = config or bfs_config(preset, scenario.lam)
        out = sample_bfs(model, x, sigmas, score_fn=scenario.verifier, n_particles=n, config=cfg,
                         local=(local or LOCAL) if method.endswith("+local") else None, guide_fn=guide_fn, **common)
    return out, res, time.perf_counter() - start


def row(method: str, scenario: Scenario, n: int, out: torch.Tensor, res: Trace, seconds: float) -> dict:
    """One table / JSON row: mean true reward ± SEM over items, distance to the tilted target, NFE per sample."""
    items = out.shape[0]
    reward_mean, reward_sem = mean_and_sem(scenario.reward(out))
    return {"method": method, "n_particles": n, "scenario": scenario.name,
            # a backward pass through the denoiser costs about one more evaluation; x0-space gradients do not
            "nfe": (res.nfe + res.denoiser_grad_evals) / items, "reward_mean": reward_mean, "reward_sem": reward_sem,
            "target_distance": energy_distance(out[:2048], scenario.target), "seconds": seconds,
            "grad_evals": res.grad_evals / items}


def run_rows(method: str, scenario: Scenario, n: int, n_items: int, seeds: list[int], **kw) -> dict:
    """``run`` over several seeds, pooled into one row (SEM over all items of all seeds)."""
    outs, nfe, dgrad, grad, secs = [], 0, 0, 0, 0.0
    for seed in seeds:
        out, res, s = run(method, scenario, n, n_items, seed, **kw)
        outs.append(out)
        nfe, dgrad, grad, secs = nfe + res.nfe, dgrad + res.denoiser_grad_evals, grad + res.grad_evals, secs + s
    pooled = Trace(nfe=nfe, denoiser_grad_evals=dgrad, grad_evals=grad)
    return row(method, scenario, n, torch.cat(outs), pooled, secs / len(seeds))
