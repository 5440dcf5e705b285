"""Digits Conditioning: a prompt such as "a handwritten 3" or "a handwritten 509" -> the digits world's class
embeddings as CONDITIONING.

The digits denoiser (worlds/digits) was trained with one learned cross-attention context per digit plus a null
one. ComfyUI's CLIP text encoder cannot stand in: no CLIP weights ship here, and a randomly initialised one gives
contexts that change between ComfyUI versions, so the model would see different prompts in each.

A number of k digits (the numbers world, worlds/numbers) is regional prompting: one conditioning per digit, each on
its own vertical strip of the canvas (ComfyUI's area conditioning, as ConditioningSetAreaPercentage makes it), so the
UNet draws digit i in strip i. The UNet has no positional encoding and a receptive field of a few latent pixels, so
it cannot place digits from one context; areas are how a ComfyUI user would place them.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

EMBEDDINGS = Path(__file__).resolve().parents[1] / "worlds" / "digits" / "weights" / "digits_embeddings.safetensors"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NULL_ROW = 10
MAX_DIGITS = 8
_PATTERN = re.compile(r"(?<![0-9a-z])(" + "|".join(WORDS) + r"|[0-9]+)(?![0-9a-z])")
_cache: dict = {}


def number_in_prompt(text: str) -> list[int] | None:
    """The digits, left to right, of the first number named in `text` (a numeral such as 509, or one English digit
    word), else None. A numeral of more than MAX_DIGITS digits is refused."""
    match = _PATTERN.search(text.lower())
    if match is None:
        return None
    token = match.group(1)
    if not token.isdigit():
        return [WORDS.index(token)]
    if len(token) > MAX_DIGITS:
        raise ValueError(f"Digits Conditioning: the number {token} has {len(token)} digits; the canvas holds at most "
                         f"{MAX_DIGITS} (one 64 px strip each): write a shorter number")
    return [int(c) for c in token]


def digit_in_prompt(text: str) -> int | None:
    """The digit named in `text` when it names a single one (numeral or English word), else None."""
    digits = number_in_prompt(text)
    return digits[0] if digits is not None and len(digits) == 1 else None


def _table():
    import torch
    from safetensors.torch import load_file

    if "table" not in _cache:
        if not EMBEDDINGS.is_file():
            raise FileNotFoundError(f"Digits embeddings not found at {EMBEDDINGS}: build them with "
                                    "`python -m worlds.digits build` or restore the file from the repository.")
        _cache["table"] = load_file(str(EMBEDDINGS))["embeddings"].to(torch.float32)
    return _cache["table"]


def class_embedding(text: str):
    """(1, tokens, 768) context for the prompt's (first) digit; the null (unconditional) one for an empty prompt."""
    digits = number_in_prompt(text)
    if digits is None and text.strip():
        log.warning("Digits Conditioning: no digit (0-9 or zero..nine) in the prompt %r; using the unconditional "
                    "embedding", text)
    return _table()[NULL_ROW if digits is None else digits[0]][None].clone()


def conditioning(text: str) -> list:
    """ComfyUI CONDITIONING for the prompt: one digit -> its embedding over the whole canvas; k digits -> k entries,
    entry i on strip i of k (area in fractions of the latent: height 1, width 1/k, top 0, left i/k)."""
    digits = number_in_prompt(text)
    if digits is None or len(digits) == 1:
        return [[class_embedding(text), {"pooled_output": None}]]
    table, k = _table(), len(digits)
    return [[table[d][None].clone(), {"pooled_output": None, "area": ("percentage", 1.0, 1.0 / k, 0.0, i / k),
                                      "strength": 1.0, "set_area_to_bounds": False}]
            for i, d in enumerate(digits)]


class DiffusionSearchDigitsConditioning:
    """Maps a prompt naming a digit or a number to the digits world's learned class embeddings (replaces
    CLIPTextEncode)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {
            "default": "a handwritten 7", "multiline": True,
            "tooltip": "Names a digit (\"a handwritten 3\", \"three\") or a number of up to 8 digits (\"a handwritten "
                       "509\": sample it on a canvas 64 px wide per digit, 192 x 64 for 509). Empty gives the "
                       "unconditional embedding, for the negative prompt of classifier-free guidance."})}}

    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("The digit's class embedding (a number: one per digit, each on its strip of the canvas), for "
                       "the digits world's model (positive / negative).",)
    FUNCTION = "encode"
    CATEGORY = "sampling/diffusion_search/digits"
    DESCRIPTION = ("Prompt -> class embeddings for the digits world's denoiser (worlds/digits/README.md); a number "
                   "puts one digit on each strip of the canvas (the numbers world, worlds/numbers/README.md).")

    def encode(self, text):
        return (conditioning(text),)
