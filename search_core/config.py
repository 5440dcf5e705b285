"""Settings of the search algorithms as plain dataclasses (BFS design space, DFS backtracking, Langevin local search).

Paper: "Inference-Time Scaling of Diffusion Models Through Classical Search" (ICLR 2026), sections on BFS, DFS and
local search. Every field is validated in ``validate()`` so that bad input fails early with a message naming the fix.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

TEMPERATURES = ("constant", "increase_paper", "increase_exp", "increase_linear", "inf")
SCORINGS = ("current", "difference", "max")
RESAMPLINGS = ("multinomial", "stratified", "systematic", "residual", "ssp", "top_half", "greedy", "none")
FINAL_PICKS = ("best", "sample")
FINAL_WEIGHTS = ("score", "corrected")
DELTA_SCHEDULES = ("constant", "alpha_scaled")
GRAD_MODES = ("x0", "denoiser")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; use one of {list(allowed)}")


@dataclass
class BFSConfig:
    """One point of the paper's BFS design space: temperature x scoring x resampling (+ when to resample)."""

    temperature: str = "increase_paper"
    lam: float = 10.0                      # λ: weights w ∝ exp(λ_t · score)
    gamma: float | None = None             # ramp rate per step; None: the source's 0.008 per step of 100, scaled
    scoring: str = "max"
    resampling: str = "ssp"
    resample_every: int | None = None      # resample every k steps ...
    resample_steps: list[int] | None = None  # ... or at these step indices (0-based, after the step's denoiser call)
    num_resamples: int = 4                 # used when neither is given: evenly spaced (paper: 20/40/60/80 of 100)
    ess_threshold: float | None = None     # resample an item only when ESS < threshold·N, else carry the weights
    reward_floor: float | None = None      # "max" scoring: the running max starts here (FK's reward_min_value)
    final_weight: str = "score"            # "score": λ_T·path score; "corrected": λ·r_T / potentials applied (FK)
    final_ess_threshold: float | None = None  # before the pick, resample multinomially if ESS < threshold·N
    final_pick: str = "best"               # "best": argmax of the selecting verifier; "sample": draw ∝ final weight
    name: str = "custom"

    def validate(self) -> "BFSConfig":
        _choice("temperature", self.temperature, TEMPERATURES)
        _choice("scoring", self.scoring, SCORINGS)
        _choice("resampling", self.resampling, RESAMPLINGS)
        _choice("final_pick", self.final_pick, FINAL_PICKS)
        _choice("final_weight", self.final_weight, FINAL_WEIGHTS)
        if not (self.lam >= 0):
            raise ValueError(f"lam={self.lam} must be >= 0 (it is the inverse temperature λ)")
        if self.gamma is not None and not self.gamma > 0:
            raise ValueError(f"gamma={self.gamma} must be > 0 (or None for a ramp that reaches λ at the end)")
        if self.resample_every is not None and self.resample_every < 1:
            raise ValueError(f"resample_every={self.resample_every} must be >= 1 (or None)")
        if self.num_resamples < 0:
            raise ValueError(f"num_resamples={self.num_resamples} must be >= 0")
        if self.ess_threshold is not None and not 0.0 < self.ess_threshold <= 1.0:
            raise ValueError(f"ess_threshold={self.ess_threshold} must be in (0, 1] (a fraction of N) or None")
        if self.final_ess_threshold is not None and not 0.0 < self.final_ess_threshold <= 1.0:
            raise ValueError(f"final_ess_threshold={self.final_ess_threshold} must be in (0, 1] or None")
        if self.reward_floor is not None and not abs(self.reward_floor) < float("inf"):
            raise ValueError(f"reward_floor={self.reward_floor} must be finite (or None: no floor)")
        return self

    def replace(self, **changes) -> "BFSConfig":
        """A copy with some fields changed (presets are data: tweak them this way)."""
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class DFSConfig:
    """DFS with backtracking: dive, and re-noise ΔT steps up when the score falls below δ_t (paper, DFS section)."""

    delta: float = 0.0                     # δ: backtrack when score < δ_t
    delta_schedule: str = "constant"       # "alpha_scaled": δ_t = δ / ᾱ_t (reference code; for rewards log f <= 0)
    backtrack_steps: int | None = None     # ΔT (None: a quarter of the steps)
    backtrack_growth: float = 1.0          # > 1: a retry failing again before passing its level goes growth x higher
    nfe_budget: int | None = None          # denoiser evaluations per item (None: 2 dives); a dive always completes
    check_steps: list[int] | None = None   # steps where the score is checked (None: every step from check_from)
    check_from: int | None = None          # first step checked when check_steps is None (None: half the steps);
    #                                        the last step (the complete sample) is always checked
    max_backtracks: int | None = None      # optional cap per item

    def validate(self, n_steps: int | None = None) -> "DFSConfig":
        _choice("delta_schedule", self.delta_schedule, DELTA_SCHEDULES)
        if self.backtrack_steps is not None and self.backtrack_steps < 1:
            raise ValueError(f"backtrack_steps={self.backtrack_steps} must be >= 1 (ΔT, in denoising steps)")
        if not self.backtrack_growth >= 1.0:
            raise ValueError(f"backtrack_growth={self.backtrack_growth} must be >= 1 (1 = always ΔT steps)")
        if n_steps is not None and self.nfe_budget is not None and self.nfe_budget < n_steps:
            raise ValueError(f"nfe_budget={self.nfe_budget} is below the {n_steps} steps one dive needs; "
                             f"raise it to at least {n_steps}")
        if self.max_backtracks is not None and self.max_backtracks < 0:
            raise ValueError(f"max_backtracks={self.max_backtracks} must be >= 0 (or None)")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved(self, n_steps: int) -> "DFSConfig":
        """A copy with the step-relative defaults filled in for an ``n_steps`` schedule."""
        return dataclasses.replace(self, backtrack_steps=self.backtrack_steps or max(1, n_steps // 4),
                                   check_from=n_steps // 2 if self.check_from is None else self.check_from)


@dataclass
class LangevinConfig:
    """Annealed Langevin local search = verifier-gradient guidance + recurrence (paper, Proposition 1)."""

    grad_mode: str = "x0"                  # "x0": gradient of r at the x0 prediction; "denoiser": d r(D(x_t)) / d x_t
    rho: float = 0.2                       # step of the denoiser-mode guidance (scaled by σ²/a, Tweedie)
    mu: float = 0.4                        # step of the x0-space gradient ascent
    steps: int = 1                         # gradient iterations per guided step (x0 mode)
    recur_steps: int = 1                   # recurrences: re-noise to the current level and repeat the guided step
    apply_steps: list[int] | None = None   # steps with local search (None: all steps from start_step)
    start_step: int = 0
    grad_clip: float | None = None         # optional per-particle gradient-norm clip (guards exploding verifiers)
    report_gain: bool = True               # score the guided x0 once more, so the trace shows each step's gain

    def validate(self) -> "LangevinConfig":
        _choice("grad_mode", self.grad_mode, GRAD_MODES)
        if self.rho < 0 or self.mu < 0:
            raise ValueError(f"rho={self.rho} and mu={self.mu} must be >= 0 (they are step sizes)")
        if self.steps < 1:
            raise ValueError(f"steps={self.steps} must be >= 1")
        if self.recur_steps < 0:
            raise ValueError(f"recur_steps={self.recur_steps} must be >= 0")
        return self

    def applies_at(self, step: int) -> bool:
        if self.apply_steps is not None:
            return step in self.apply_steps
        return step >= self.start_step

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


__all__ = ["BFSConfig", "DFSConfig", "LangevinConfig", "TEMPERATURES", "SCORINGS", "RESAMPLINGS", "FINAL_WEIGHTS"]
