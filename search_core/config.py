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
SEARCH_SCHEDULES = ("none", "all", "uniform", "linear", "exponential")   # DSearch: when the wider search runs
DROP_SCHEDULES = ("none", "exponential", "quadratic", "linear", "sigmoid", "steps")  # beam width over the steps


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; use one of {list(allowed)}")


@dataclass(frozen=True)
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

    def __post_init__(self):
        self.validate()   # frozen and checked when made: a config in use is always a valid one

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


@dataclass(frozen=True)
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

    def __post_init__(self):
        self.validate()   # frozen and checked when made: a config in use is always a valid one

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


@dataclass(frozen=True)
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

    def __post_init__(self):
        self.validate()   # frozen and checked when made: a config in use is always a valid one

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


@dataclass(frozen=True)
class SoPConfig:
    """Search over Paths (Ma et al. 2025, arXiv 2501.09732 sec. 3.2) in flow time t (1 = noise, 0 = data).

    N particles ODE-solve to ``start``; then each of the N survivors gets ``branches`` (M) copies forward-noised
    ``forward`` (Δf) up, each is solved ``backward`` (Δb > Δf) down and scored; the top N survive, until t = 0. Flow
    time maps to a schedule level by its signal-to-noise ratio: t = σ / (a(σ) + σ) (eps: σ/(1+σ); flow: σ)."""

    branches: int = 8                      # M noised copies per survivor (paper: N 4, M 8)
    start: float = 0.8                     # flow time of the first search level (paper: 0.8)
    forward: float = 0.1                   # Δf, flow time re-noised per move (paper: 0.1)
    backward: float = 0.2                  # Δb, flow time solved down per move (paper: 0.2; must exceed Δf)
    name: str = "sop"

    def __post_init__(self):
        self.validate()   # frozen and checked when made: a config in use is always a valid one

    def validate(self) -> "SoPConfig":
        if int(self.branches) < 1:
            raise ValueError(f"branches={self.branches} must be >= 1 (M copies per survivor; paper: 8)")
        if not 0.0 < self.start <= 1.0:
            raise ValueError(f"start={self.start} must be a flow time in (0, 1] (paper: 0.8)")
        if not 0.0 < self.forward < self.backward <= 1.0:
            raise ValueError(f"forward={self.forward} and backward={self.backward} need 0 < Δf < Δb <= 1 (each move "
                             f"must end lower than it started; paper: Δf 0.1, Δb 0.2)")
        return self

    def replace(self, **changes) -> "SoPConfig":
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        return {"kind": "sop", **dataclasses.asdict(self)}


@dataclass(frozen=True)
class BeamConfig:
    """A beam per item whose width follows a schedule, kept by x0 reward: DSearch, DSearch-R, progressive seed pruning.

    DSearch (Li et al. 2025, arXiv 2503.02039): every member makes ``children`` stochastic children per step, each
    scored on its x0 prediction, and keeps the best; at search steps (probability by ``search_schedule``) it makes
    int(search_width · children · W0 / W) instead; the width drops from ``oversample`` · N to N (``drop_schedule``).
    DSearch-R: constant width N, the worst ``replace_rate`` · N members replaced by a multinomial draw ∝ exp(λ·r).
    Progressive seed pruning (arXiv 2607.21591): ``children`` 1 on a deterministic sampler (eta 0), ``oversample``·N
    seeds pruned to ``keep``[j] · N at progress ``prune_at``[j] (``drop_schedule`` "steps")."""

    children: int = 5                      # DSearch duplicate_size (source: 5); 1 = no branching
    search_width: float = 5.0              # DSearch w (source: 5): children multiplier at search steps
    search_schedule: str = "exponential"   # p_i: all 1, uniform 0.7, linear (i+10)/(T-1), exponential 1-exp(-3i/(T-1))
    oversample: float = 5.0                # initial width / N (DSearch: 5; seed pruning: 2)
    drop_schedule: str = "exponential"     # width from oversample·N to N over the steps (DSearch's four, or "steps")
    replace_rate: float = 0.0              # DSearch-R (source: 0.01-0.05; at least one member is replaced)
    lam: float = 1.0                       # DSearch-R draw ∝ exp(λ·r) (source: softmax of the rewards, λ = 1)
    prune_at: list[float] | None = None    # "steps": progress fractions of the prunes (seed pruning: 0.25, 0.5)
    keep: list[float] | None = None        # "steps": width after each prune / N (seed pruning: 1, 0.5)
    eta: float = 1.0                       # the step's stochasticity (DSearch: 1; seed pruning: 0, deterministic)
    name: str = "beam"

    def __post_init__(self):
        self.validate()   # frozen and checked when made: a config in use is always a valid one

    def validate(self) -> "BeamConfig":
        _choice("search_schedule", self.search_schedule, SEARCH_SCHEDULES)
        _choice("drop_schedule", self.drop_schedule, DROP_SCHEDULES)
        if int(self.children) < 1 or not self.search_width > 0:
            raise ValueError(f"children={self.children} must be >= 1 and search_width={self.search_width} > 0")
        if not self.oversample >= 1:
            raise ValueError(f"oversample={self.oversample} must be >= 1 (the first width is oversample x N)")
        if not 0.0 <= self.replace_rate < 1.0:
            raise ValueError(f"replace_rate={self.replace_rate} must be in [0, 1) (DSearch-R: 0.01-0.05)")
        if self.replace_rate > 0 and self.oversample > 1:
            raise ValueError("replace_rate (DSearch-R) and oversample > 1 (DSearch's shrinking beam) do not combine "
                             "(as in the source); set one of them")
        if self.drop_schedule == "steps":
            if not self.prune_at or not self.keep or len(self.prune_at) != len(self.keep):
                raise ValueError("drop_schedule 'steps' needs prune_at and keep of the same length, e.g. "
                                 "prune_at=[0.25, 0.5], keep=[1.0, 0.5]")
            if any(not 0 < p < 1 for p in self.prune_at) or list(self.prune_at) != sorted(self.prune_at):
                raise ValueError(f"prune_at={self.prune_at} must be increasing fractions in (0, 1)")
            if any(not k > 0 for k in self.keep) or list(self.keep) != sorted(self.keep, reverse=True):
                raise ValueError(f"keep={self.keep} must be positive and not increasing (widths / N)")
        if not self.eta >= 0 or not self.lam >= 0:
            raise ValueError(f"eta={self.eta} and lam={self.lam} must be >= 0")
        if self.eta == 0 and (self.children > 1 or self.search_schedule != "none" or self.replace_rate > 0):
            raise ValueError("eta = 0 (deterministic steps) with children > 1, a search schedule or replacement: "
                             "the copies never diverge; set eta = 1 or children = 1, search_schedule 'none'")
        return self

    def replace(self, **changes) -> "BeamConfig":
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        return {"kind": "beam", **dataclasses.asdict(self)}


__all__ = ["BFSConfig", "DFSConfig", "LangevinConfig", "SoPConfig", "BeamConfig", "TEMPERATURES", "SCORINGS",
           "RESAMPLINGS", "FINAL_WEIGHTS", "SEARCH_SCHEDULES", "DROP_SCHEDULES"]
