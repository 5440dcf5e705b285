"""Digits Conditioning: a prompt such as "a handwritten 3" -> the digits world's class embedding as CONDITIONING.

The digits denoiser (worlds/digits) was trained with one learned cross-attention context per digit plus a null
one. ComfyUI's CLIP text encoder cannot stand in: no CLIP weights ship here, and a randomly initialised one gives
contexts that change between ComfyUI versions, so the model would see different prompts in each.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDINGS = Path(__file__).resolve().parents[1] / "worlds" / "digits" / "weights" / "digits_embeddings.safetensors"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NULL_ROW = 10
_PATTERN = re.compile(r"(?<![0-9a-z])(" + "|".join(WORDS) + r"|[0-9])(?![0-9a-z])")
_cache: dict = {}


def digit_in_prompt(text: str) -> int | None:
    """The first digit named in `text` (numeral or English word), else None."""
    match = _PATTERN.search(text.lower())
    if match is None:
        return None
    token = match.group(1)
    return int(token) if token.isdigit() else WORDS.index(token)


def class_embedding(text: str):
    """(1, tokens, 768) context for the prompt's digit; the null (unconditional) one for an empty prompt."""
    import torch
    from safetensors.torch import load_file

    if "table" not in _cache:
        if not EMBEDDINGS.is_file():
            raise FileNotFoundError(f"Digits embeddings not found at {EMBEDDINGS}: build them with "
                                    "`python -m worlds.digits build` or restore the file from the repository.")
        _cache["table"] = load_file(str(EMBEDDINGS))["embeddings"].to(torch.float32)
    digit = digit_in_prompt(text)
    if digit is None and text.strip():
        log.warning("Digits Conditioning: no digit (0-9 or zero..nine) in the prompt %r; using the unconditional "
                    "embedding", text)
    return _cache["table"][NULL_ROW if digit is None else digit][None].clone()


class DiffusionSearchDigitsConditioning:
    """Maps a prompt naming a digit to the digits world's learned class embedding (replaces CLIPTextEncode)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {
            "default": "a handwritten 7", "multiline": True,
            "tooltip": "Names a digit as a numeral or a word (\"a handwritten 3\", \"three\"). Empty gives the "
                       "unconditional embedding, for the negative prompt of classifier-free guidance."})}}

    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("The digit's class embedding, for the digits world's model (positive / negative).",)
    FUNCTION = "encode"
    CATEGORY = "sampling/diffusion_search/digits"
    DESCRIPTION = "Prompt -> class embedding for the digits world's denoiser (worlds/digits/README.md)."

    def encode(self, text):
        return ([[class_embedding(text), {"pooled_output": None}]],)
