"""The BFS axes as small functions: temperature λ_t, path scoring, resampling steps; DFS thresholds δ_t.

Paper, BFS design space: weights w ∝ exp(λ_t · score_t). Temperature "increase_paper" is the paper's BFS ramp
λ(exp(γ·i) − 1); "increase_exp" DAS's λ·min(1, (1+γ)^i − 1); both take γ = 0.008 per step of a 100-step schedule,
scaled to the number of steps. "increase_linear" is the paper code's λ·2i/T; "inf" is greedy selection.
"""
from __future__ import annotations

import math

import torch

from .config import BFSConfig, DFSConfig
from .noise import alpha_bar

REFERENCE_GAMMA, REFERENCE_STEPS = 0.008, 100  # the paper's and DAS's ramp rate, for their 100-step schedules


def temperature(config: BFSConfig, step: int, n_steps: int) -> float:
    """λ_t at (0-based) step ``step`` of ``n_steps``; i = step + 1 steps have been taken."""
    i = step + 1
    if config.temperature == "constant":
        return config.lam
    if config.temperature == "inf":
        return math.inf
    if config.temperature == "increase_linear":
        return config.lam * 2.0 * i / n_steps
    if config.temperature == "increase_paper":  # 0.17, 0.38, 0.61, 0.89 λ at 20/40/60/80 % of the steps
        gamma = config.gamma if config.gamma is not None else REFERENCE_GAMMA * REFERENCE_STEPS / n_steps
        return config.lam * math.expm1(gamma * i)
    # DAS: the same rate compounded, capped at λ (reached at 87 % of the steps)
    gamma = config.gamma if config.gamma is not None else (1 + REFERENCE_GAMMA) ** (REFERENCE_STEPS / n_steps) - 1
    return config.lam * min(1.0, (1.0 + gamma) ** i - 1.0)


def log_weights(score: torch.Tensor, lam: float) -> torch.Tensor:
    """log w = λ·score in float64 (λ·r beyond float32's range stays finite); λ = inf keeps only the argmax."""
    score = score.to(torch.float64)
    if math.isinf(lam):
        best = score.argmax(1, keepdim=True)
        lw = torch.full_like(score, -math.inf)
        return lw.scatter(1, best, 0.0)
    return lam * score


def resample_steps(config: BFSConfig, n_steps: int) -> set[int]:
    """Step indices (0-based, before the last step) at which particles are resampled."""
    if config.resampling == "none":
        return set()
    if config.resample_steps is not None:
        steps = {int(s) for s in config.resample_steps}
        bad = [s for s in steps if not 0 <= s < n_steps - 1]
        if bad:
            raise ValueError(f"resample_steps {sorted(bad)} are outside 0..{n_steps - 2} (the steps before the "
                             f"last one of this {n_steps}-step schedule)")
        return steps
    if config.resample_every is not None:
        k = config.resample_every
        return {s for s in range(k - 1, n_steps - 1, k)}
    count = config.num_resamples
    return {round(n_steps * j / (count + 1)) - 1 for j in range(1, count + 1)} & set(range(n_steps - 1))


def dfs_threshold(config: DFSConfig, sigma_rows: torch.Tensor, noise_form: str) -> torch.Tensor:
    """δ_t per row: constant δ, or δ / ᾱ_t (reference code; ᾱ = 1 at σ = 0)."""
    if config.delta_schedule == "constant":
        return torch.full_like(sigma_rows, config.delta, dtype=torch.float32)
    return config.delta / alpha_bar(sigma_rows.float(), noise_form).clamp_min(1e-6)
