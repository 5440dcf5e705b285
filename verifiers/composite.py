"""Combining verifiers: weighted sum of standardised rewards, and rank-average for selection (paper §3.3)."""
from __future__ import annotations

from typing import Sequence

import torch

from .base import Verifier, check_images, normalise_prompts


def standardise(rewards: torch.Tensor, stats: tuple[float, float] | None) -> torch.Tensor:
    """z-score with fixed (mean, std), or over the batch when stats is None (a batch of one gives 0)."""
    if stats is not None:
        mean, std = stats
        return (rewards - mean) / std
    if rewards.numel() < 2:
        return rewards - rewards.detach()
    return (rewards - rewards.mean()) / rewards.std().clamp_min(1e-8)


def rank_scores(rewards: torch.Tensor) -> torch.Tensor:
    """Ranks in [0, 1] (1 = best), ties averaged."""
    count = rewards.numel()
    if count < 2:
        return torch.ones_like(rewards)
    below = (rewards[None, :] < rewards[:, None]).sum(1).float()
    equal = (rewards[None, :] == rewards[:, None]).sum(1).float()
    return (below + (equal - 1) / 2) / (count - 1)


class CompositeVerifier(Verifier):
    """Weighted sum of standardised rewards (`mode="weighted"`) or weighted mean rank (`mode="rank"`)."""

    name = "composite"

    def __init__(self, verifiers: Sequence[Verifier], weights: Sequence[float] | None = None, *,
                 mode: str = "weighted", stats: Sequence[tuple[float, float] | None] | None = None):
        if not verifiers:
            raise ValueError("a composite needs at least one verifier")
        if mode not in ("weighted", "rank"):
            raise ValueError(f"mode must be 'weighted' or 'rank', got {mode!r}")
        weights = [1.0] * len(verifiers) if weights is None else [float(w) for w in weights]
        stats = [None] * len(verifiers) if stats is None else list(stats)
        if len(weights) != len(verifiers) or len(stats) != len(verifiers):
            raise ValueError(f"got {len(verifiers)} verifiers but {len(weights)} weights / {len(stats)} stats: "
                             "give one per verifier")
        if any(s is not None and s[1] <= 0 for s in stats):
            raise ValueError("stats are (mean, std) with std > 0")
        first = verifiers[0]
        super().__init__(chunk_size=first.chunk_size, device=first.device, dtype=first.dtype)
        self.parts = torch.nn.ModuleList(verifiers)
        self.weights, self.stats, self.mode = weights, stats, mode
        self.differentiable = mode == "weighted" and all(v.differentiable for v in verifiers)
        self.needs_prompt = any(v.needs_prompt for v in verifiers)
        self.name = f"{mode}(" + ", ".join(f"{w:g}*{v.name}" for v, w in zip(verifiers, weights)) + ")"

    def key_fields(self) -> dict:
        """The base fields, the mode, each part's weight and stats, and each part's own fields."""
        return {**super().key_fields(), "mode": self.mode, "weights": self.weights, "stats": self.stats,
                "parts": [part.key_fields() for part in self.parts]}

    @property
    def batch_relative(self) -> bool:
        """Each score depends on the other images of the call (z-scores over the batch, ranks)."""
        return self.mode == "rank" or any(s is None for s in self.stats)

    def score(self, images: torch.Tensor, prompts=None, *, grad: bool = False) -> torch.Tensor:
        """Combine over the whole batch (standardising and ranking need every particle at once)."""
        check_images(images)
        prompts = normalise_prompts(prompts, images.shape[0])
        if grad and not self.differentiable:
            raise ValueError(f"verifier '{self.name}' is not differentiable: rank mode and non-differentiable "
                             "parts need grad=False")
        total = None
        with torch.inference_mode(False), torch.set_grad_enabled(grad):  # keep the parts' graphs when grad=True
            for verifier, weight, stats in zip(self.parts, self.weights, self.stats):
                rewards = verifier.score(images, prompts, grad=grad)
                term = rank_scores(rewards) if self.mode == "rank" else standardise(rewards, stats)
                total = weight * term if total is None else total + weight * term
            if self.mode == "rank":
                total = total / sum(abs(w) for w in self.weights)
        return total
