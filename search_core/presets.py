"""Named points of the BFS design space (paper Table: SVDD, DAS, FK-steering, TreeG as BFS special cases).

Presets are data, not code paths: each is a ``BFSConfig`` doing what its source's reference code does. Use
``get_preset(name, **overrides)`` to tweak one.
"""
from __future__ import annotations

from .config import BFSConfig

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


def get_preset(name: str, **overrides) -> BFSConfig:
    """The preset ``name`` with optional field overrides (e.g. ``lam=5``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; use one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)
