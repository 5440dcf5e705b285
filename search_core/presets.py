"""Named points of the BFS design space (paper Table: SVDD, DAS, FK-steering, TreeG as BFS special cases).

Presets are data, not code paths: each is a ``BFSConfig`` doing what its source's reference code does. ``BASELINES``
holds the paper's table's other columns (SoP, DSearch, DSearch-R) and progressive seed pruning as ``SoPConfig`` /
``BeamConfig``. Use ``get_preset(name, **overrides)`` to tweak one.
"""
from __future__ import annotations

from .config import BeamConfig, BFSConfig, SoPConfig

PRESETS: dict[str, BFSConfig] = {
    # Best-of-N: no intermediate selection, pick the best final sample.
    "best_of_n": BFSConfig(name="best_of_n", temperature="constant", scoring="current", resampling="none"),
    # FK-steering (Singhal et al. 2025): potentials exp(λ·max r) with the running max floored at reward_min_value = 0,
    # multinomial resampling when ESS < 0.5·N (adaptive, as FK's paper samples; weights carried otherwise), and a last
    # resampling by exp(λ·r_T) / (product of the potentials applied): the final draw targets p0·exp(λ·r).
    "fk": BFSConfig(name="fk", temperature="constant", scoring="max", resampling="multinomial", reward_floor=0.0,
                    ess_threshold=0.5, final_weight="corrected", final_pick="sample"),
    # DAS without gradient (Kim et al. 2025): tempered potentials λ_t·r_t − λ_s·r_s at every step (DAS's ramp
    # λ·min(1, (1+γ)^i − 1)), SSP resampling only when ESS < 0.5·N (weights carried otherwise), final draw by weight.
    "das": BFSConfig(name="das", temperature="increase_exp", scoring="difference", resampling="ssp", resample_every=1,
                     ess_threshold=0.5, final_weight="corrected", final_pick="sample"),
    # TreeG: at every step keep the best half of the particles by score and duplicate it (no temperature).
    "treeg": BFSConfig(name="treeg", temperature="constant", scoring="current", resampling="top_half",
                       resample_every=1),
    # SVDD (Li et al. 2024): greedy argmax at every step.
    "svdd": BFSConfig(name="svdd", temperature="inf", scoring="current", resampling="greedy", resample_every=1),
    # The paper's BFS: λ_t = λ(exp(γt) − 1), max scoring, SSP at 4 points; at the end multinomial resampling when
    # ESS < 0.5·N, then the best.
    "bfs": BFSConfig(name="bfs", temperature="increase_paper", scoring="max", resampling="ssp",
                     final_ess_threshold=0.5),
}


# The paper's other baselines, which are not BFS weightings: small samplers behind the same entry point (sample_bfs
# dispatches on the config's type; search_core/sop.py, search_core/beam.py). N = the node's particles.
BASELINES: dict[str, SoPConfig | BeamConfig] = {
    # SoP (Ma et al. 2025 sec. 3.2): N 4, M 8, start 0.8, Δb 0.2, Δf 0.1 in flow time.
    "sop": SoPConfig(name="sop"),
    # DSearch (Li et al. 2025; README's command): duplicate 5, w 5, exponential search and drop schedules, 5x oversample.
    "dsearch": BeamConfig(name="dsearch"),
    # DSearch-R: constant width N, the worst 3 % (at least one) replaced by a draw ∝ softmax(r) among the others.
    "dsearch_r": BeamConfig(name="dsearch_r", oversample=1.0, drop_schedule="none", replace_rate=0.03),
    # Progressive seed pruning (arXiv 2607.21591): 2N seeds on a deterministic sampler, pruned by x0 reward to N at
    # 25 % and to N/2 at 50 % of the steps: N full trajectories' NFE.
    "seed_pruning": BeamConfig(name="seed_pruning", children=1, search_schedule="none", oversample=2.0,
                               drop_schedule="steps", prune_at=[0.25, 0.5], keep=[1.0, 0.5], eta=0.0),
}


def get_preset(name: str, **overrides) -> BFSConfig | SoPConfig | BeamConfig:
    """The preset ``name`` with optional field overrides (e.g. ``lam=5``)."""
    if name in BASELINES:
        return BASELINES[name].replace(**overrides)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; use one of {sorted(PRESETS) + sorted(BASELINES)}")
    return PRESETS[name].replace(**overrides)
