"""Weight-free differentiable verifiers for demos and tests (no downloads)."""
from __future__ import annotations

import logging
import re

import torch

from .base import Verifier

logger = logging.getLogger(__name__)

# sRGB anchors for colour words a prompt may name; the "prompt colour" reward pulls the image towards them.
COLOUR_WORDS = {
    "red": (0.85, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.1, 0.25, 0.85), "yellow": (0.95, 0.85, 0.1),
    "orange": (0.95, 0.55, 0.1), "purple": (0.55, 0.2, 0.7), "pink": (0.95, 0.55, 0.7), "brown": (0.5, 0.3, 0.15),
    "black": (0.05, 0.05, 0.05), "white": (0.95, 0.95, 0.95), "gray": (0.5, 0.5, 0.5), "grey": (0.5, 0.5, 0.5),
    "cyan": (0.1, 0.8, 0.85), "magenta": (0.85, 0.1, 0.75),
}


class ColourfulnessVerifier(Verifier):
    """Hasler & Suesstrunk (2003) colourfulness M = sigma_rgyb + 0.3 mu_rgyb, on a 0-255 scale."""

    name = "colourfulness"
    differentiable = True

    def __init__(self, *, chunk_size: int = 64, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self.finish_init()

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        red, green, blue = (images * 255.0).unbind(dim=1)
        rg = (red - green).flatten(1)
        yb = (0.5 * (red + green) - blue).flatten(1)
        # eps keeps the sqrt differentiable on flat images (std = 0)
        spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False) + 1e-6)
        centre = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2 + 1e-6)
        return spread + 0.3 * centre


def prompt_colours(prompt: str) -> list[tuple[float, float, float]]:
    """The colour anchors named in a prompt, in order of appearance."""
    words = re.findall(r"[a-z]+", prompt.lower())
    return [COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS]


class PromptColourVerifier(Verifier):
    """Negative mean squared distance (x100) of each pixel to the nearest colour the prompt names; 0 if none."""

    name = "prompt_colour"
    differentiable = True
    needs_prompt = True

    def __init__(self, *, chunk_size: int = 64, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self._warned_prompts: set[str] = set()
        self.finish_init()

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        rewards = []
        for image, prompt in zip(images, prompts):
            colours = prompt_colours(prompt)
            if not colours:
                if prompt not in self._warned_prompts:  # once per prompt: a search scores the same one every step
                    logger.warning("prompt_colour: the prompt %r names no colour, so every image scores 0 and the "
                                   "search cannot tell them apart: name one of %s in the prompt, or use another "
                                   "verifier", prompt, ", ".join(sorted(COLOUR_WORDS)))
                    self._warned_prompts.add(prompt)
                rewards.append(image.sum() * 0.0)
                continue
            anchors = torch.tensor(colours, device=image.device, dtype=image.dtype)  # [K,3]
            pixels = image.flatten(1).t()  # [P,3]
            distance = ((pixels[:, None, :] - anchors[None]) ** 2).sum(-1).amin(dim=1)
            rewards.append(-100.0 * distance.mean())
        return torch.stack(rewards)


def load_colourfulness(*, device="cpu", dtype=torch.float32, chunk_size: int = 64) -> ColourfulnessVerifier:
    """Registry loader: no files."""
    return ColourfulnessVerifier(chunk_size=chunk_size, device=device, dtype=dtype)


def load_prompt_colour(*, device="cpu", dtype=torch.float32, chunk_size: int = 64) -> PromptColourVerifier:
    """Registry loader: no files."""
    return PromptColourVerifier(chunk_size=chunk_size, device=device, dtype=dtype)
