"""Rank an IMAGE batch by a verifier: the Best-of-N selection step on its own (paper Sec. 3, BoN baseline)."""
from __future__ import annotations

import json

import torch

from .verifier_nodes import CATEGORY, VERIFIER_TYPE


class DiffusionSearchRankImages:
    """Score every image, return the batch sorted best first, the scores as JSON, and the top k images."""

    DESCRIPTION = "Scores an IMAGE batch with a verifier and sorts it best first (Best-of-N after the fact)."
    RETURN_TYPES = ("IMAGE", "STRING", "IMAGE", "FLOAT")
    RETURN_NAMES = ("ranked", "scores_json", "top_k", "best_score")
    FUNCTION = "rank"
    CATEGORY = CATEGORY
    OUTPUT_NODE = False

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE",),
            "verifier": (VERIFIER_TYPE,),
            "prompt": ("STRING", {"default": "", "multiline": True,
                                  "tooltip": "Text the verifier compares against (ignored by prompt-free verifiers)."}),
            "top_k": ("INT", {"default": 1, "min": 1, "max": 4096,
                              "tooltip": "How many of the best images the top_k output keeps."}),
        }}

    def rank(self, images, verifier, prompt, top_k):
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] != 3:
            raise ValueError("images must be a ComfyUI IMAGE batch [B, H, W, 3]; connect a VAE Decode or Load Image "
                             "output, not a LATENT")
        scores = verifier.score(images, prompt).float().cpu()
        order = torch.argsort(scores, descending=True, stable=True)
        ranked = images[order.to(images.device)]
        k = min(int(top_k), images.shape[0])
        document = {"scores": [float(s) for s in scores[order]], "order": [int(i) for i in order],
                    "verifier": getattr(verifier, "name", type(verifier).__name__)}
        return (ranked, json.dumps(document), ranked[:k], float(scores[order[0]]))
