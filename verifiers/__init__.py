"""Reward models ("verifiers") behind one differentiable interface; plain torch, no ComfyUI imports.

Heavy verifiers (ImageReward, open_clip, transformers) are imported only when their loader runs.
"""
from .base import MissingWeightsError, RewardError, Verifier
from .composite import CompositeVerifier, rank_scores, standardise
from .registry import REGISTRY, VerifierSpec, WeightFile, available, load
from .simple import ColourfulnessVerifier, PromptColourVerifier

__all__ = [
    "Verifier", "RewardError", "MissingWeightsError", "REGISTRY", "VerifierSpec", "WeightFile", "available", "load",
    "ColourfulnessVerifier", "PromptColourVerifier", "CompositeVerifier", "rank_scores", "standardise",
]
