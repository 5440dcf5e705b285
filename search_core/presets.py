"""Named points of the BFS design space (paper Table: SVDD, DAS, FK-steering, TreeG as BFS special cases).

Presets are data, not code paths: each is a ``BFSConfig``. Use ``get_preset(name, **overrides)`` to tweak one.
"""
from __future__ import annotations

from .config import BFSConfig

PRESETS: dict[str, BFSConfig] = {
    # Best-of-N: no intermediate selection, pick the best final sample.
    "best_of_n": BFSConfig(name="best_of_n", temperature="constant", scoring="current", resampling="none"),
    # FK-steering (Singhal et al. 2025): constant temperature, max potential, multinomial resampling.
    "fk": BFSConfig(name="fk", temperature="constant", scoring="max", resampling="multinomial"),
    # DAS without gradient (Kim et al. 2025): tempering ramp, difference scoring, SSP resampling.
    "das": BFSConfig(name="das", temperature="increase_exp", scoring="difference", resampling="ssp"),
    # TreeG: keep the top half and duplicate it.
    "treeg": BFSConfig(name="treeg", temperature="constant", scoring="current", resampling="top_half"),
    # SVDD (Li et al. 2024): greedy argmax at every step.
    "svdd": BFSConfig(name="svdd", temperature="inf", scoring="current", resampling="greedy", resample_every=1),
    # The paper's BFS: increasing temperature, max scoring, SSP resampling.
    "bfs": BFSConfig(name="bfs", temperature="increase_exp", scoring="max", resampling="ssp"),
}


def get_preset(name: str, **overrides) -> BFSConfig:
    """The preset ``name`` with optional field overrides (e.g. ``lam=5``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; use one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)
