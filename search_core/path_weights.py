"""Per-particle SMC bookkeeping of BFS: potentials by scoring, weights carried across skipped resamplings (float64).

At a scored step each particle gets a log-potential g (paper: w ∝ exp(λ_t · score)):
- current:    g = λ_t · r_t
- max:        g = λ_t · M_t, M_t = max(r_t, M_s), M starting at ``reward_floor`` (FK's reward_min_value)
- difference: g = λ_t · r_t − λ_s · r_s, s = the previous scored step of its path (DAS: telescopes to λ_T · r_T)
The weights add g to what was carried since the item's last resampling (adaptive SMC); a resampled item starts
again from equal weights. ``applied`` sums every g along a particle's path, for FK's corrected final weight
λ·r_T − Σ g, whose product with the potentials is exactly exp(λ·r_T): the final draw targets p0·exp(λ·r).
"""
from __future__ import annotations

import math

import torch

from .schedules import log_weights


class PathWeights:
    """Log-weights and path statistics [B, N] of the particles, kept in float64."""

    def __init__(self, scoring: str, reward_floor: float | None, n_items: int, n: int, device):
        self.scoring = scoring
        zeros = torch.zeros(n_items, n, dtype=torch.float64, device=device)
        self.log_w = zeros                 # carried since the item's last resampling
        self.applied = zeros               # Σ g along the path
        self.tempered = zeros              # λ_s · r_s of the path's last scored step (difference)
        floor = -math.inf if reward_floor is None else float(reward_floor)
        self.running_max = torch.full_like(zeros, floor)
        self.last_reward = None            # r_s of the path's last scored step (for the callback's pick)

    def path_score(self, rewards: torch.Tensor) -> torch.Tensor:
        """The scored quantity of each path: r_t, max(r_t, M_s), or r_t (difference tempers it in ``potential``)."""
        r = rewards.to(torch.float64)
        return torch.maximum(r, self.running_max) if self.scoring == "max" else r

    def potential(self, rewards: torch.Tensor, lam: float) -> torch.Tensor:
        """log-potential g [B, N] of this scored step (λ = inf: 0 at the argmax, −inf elsewhere)."""
        score = self.path_score(rewards)
        if math.isinf(lam):
            return log_weights(score, lam)
        if self.scoring == "difference":
            return lam * score - self.tempered
        return lam * score

    def update(self, rewards: torch.Tensor, lam: float) -> torch.Tensor:
        """Apply this step's potential; returns the carried log-weights to resample by."""
        g = self.potential(rewards, lam)
        r = rewards.to(torch.float64)
        if math.isinf(lam):
            self.log_w = g  # greedy: nothing to carry
        else:
            self.log_w = self.log_w + g
            self.applied = self.applied + g
            self.tempered = lam * r
        self.running_max = torch.maximum(r, self.running_max)
        self.last_reward = rewards
        return self.log_w

    def resampled(self, ancestors: torch.Tensor, items_resampled: torch.Tensor) -> None:
        """Follow the ancestors; resampled items restart from equal weights, the others keep theirs."""
        def take(v):
            return v.gather(1, ancestors)
        self.log_w = torch.where(items_resampled[:, None], torch.zeros_like(self.log_w), take(self.log_w))
        self.applied, self.tempered, self.running_max = take(self.applied), take(self.tempered), take(self.running_max)
        self.last_reward = None if self.last_reward is None else self.last_reward.gather(1, ancestors)

    def final(self, rewards: torch.Tensor, lam_last: float, lam_target: float, corrected: bool) -> torch.Tensor:
        """Final log-weights: carried + λ·r_T − Σ g (corrected, FK/DAS) or carried + the last step's potential."""
        if corrected:
            return self.log_w + lam_target * rewards.to(torch.float64) - self.applied
        if math.isinf(lam_last):
            return self.potential(rewards, lam_last)
        return self.log_w + self.potential(rewards, lam_last)
