"""Rank an IMAGE batch by a verifier: the Best-of-N selection step on its own (paper Sec. 3, BoN baseline)."""
from __future__ import annotations

import json

import torch

from ..bridge import compat
from .verifier_nodes import CATEGORY, VERIFIER_TYPE

DEFAULT_CHUNK = 8  # images per verifier call for verifiers that do not say (plain objects with .score)


class DiffusionSearchRankImages:
    """Score every image, return the batch sorted best first, the scores as JSON, and the top k images."""

    DESCRIPTION = "Scores an IMAGE batch with a verifier and sorts it best first (Best-of-N after the fact)."
    RETURN_TYPES = ("IMAGE", "STRING", "IMAGE", "FLOAT")
    RETURN_NAMES = ("ranked", "scores_json", "top_k", "best_score")
    OUTPUT_TOOLTIPS = ("The whole batch sorted by reward, best first.",
                       "JSON: every reward best first, the original index of each, and the verifier's name.",
                       "The top_k best images.",
                       "The reward of the best image.")
    FUNCTION = "rank"
    CATEGORY = CATEGORY
    OUTPUT_NODE = False

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The images to rank (a batch from VAE Decode or Load Image)."}),
            "verifier": (VERIFIER_TYPE, {"tooltip": "The reward model that scores each image (a Load Verifier or "
                                                    "Combine Verifiers node)."}),
            "prompt": ("STRING", {"default": "", "multiline": True,
                                  "tooltip": "Text the verifier compares against (ignored by prompt-free verifiers)."}),
            "top_k": ("INT", {"default": 1, "min": 1, "max": 4096,
                              "tooltip": "How many of the best images the top_k output keeps."}),
        }}

    def rank(self, images, verifier, prompt, top_k):
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] != 3:
            raise ValueError("images must be a ComfyUI IMAGE batch [B, H, W, 3]; connect a VAE Decode or Load Image "
                             "output, not a LATENT")
        if images.shape[0] == 0:
            raise ValueError("images is an empty batch: connect at least one image")
        if not callable(getattr(verifier, "score", None)):
            raise ValueError(f"'verifier' must be a SEARCH_VERIFIER (from a Load Verifier node), got "
                             f"{type(verifier).__name__}")
        name = getattr(verifier, "name", type(verifier).__name__)
        chunk = max(1, int(getattr(verifier, "chunk_size", 0) or DEFAULT_CHUNK))
        if getattr(verifier, "batch_relative", False):  # z-scores / ranks over the batch: every image in one call
            chunk = images.shape[0]
        pieces = []
        for start in range(0, images.shape[0], chunk):
            compat.check_interrupted()  # Cancel stops between chunks, as in the samplers
            part = images[start:start + chunk]
            pieces.append(checked_rewards(verifier.score(part, prompt), part.shape[0], name, start))
        scores = torch.cat(pieces)
        order = torch.argsort(scores, descending=True, stable=True)
        ranked = images[order.to(images.device)]
        k = min(int(top_k), images.shape[0])
        document = {"scores": [float(s) for s in scores[order]], "order": [int(i) for i in order],
                    "verifier": name}
        return (ranked, json.dumps(document, allow_nan=False), ranked[:k], float(scores[order[0]]))


def checked_rewards(rewards, count: int, name: str, first: int = 0) -> torch.Tensor:
    """Rewards [count] as float32 on the CPU; a wrong count or NaN/inf names the verifier and the images."""
    if not isinstance(rewards, torch.Tensor):
        raise ValueError(f"verifier '{name}' returned {type(rewards).__name__}, not a tensor of rewards: a "
                         "SEARCH_VERIFIER's score() returns one reward per image")
    if rewards.numel() != count:
        raise ValueError(f"verifier '{name}' returned {rewards.numel()} rewards for {count} images "
                         f"(images {first}-{first + count - 1}): it must return one reward per image")
    rewards = rewards.detach().reshape(count).float().cpu()
    bad = (~torch.isfinite(rewards)).nonzero().flatten()
    if bad.numel():
        raise ValueError(f"verifier '{name}' returned NaN/inf rewards for images {[first + int(i) for i in bad]}: "
                         "check those images (NaN pixels, a broken decode) or run the verifier in float32")
    return rewards
