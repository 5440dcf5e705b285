"""CLIP score (Radford et al. 2021; Hessel et al. 2021) and HPSv2 (Wu et al. 2023) with open_clip."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .base import Verifier
from .open_clip_loader import CONFIG_NAME, OpenClipParts, build_open_clip
from .preprocess import clip_preprocess
from .registry import resolve_file


class CLIPScoreVerifier(Verifier):
    """Cosine similarity of image and prompt embeddings, times CLIP's logit scale when `use_logit_scale`."""

    name = "clip_score"
    differentiable = True
    needs_prompt = True

    def __init__(self, parts: OpenClipParts, *, use_logit_scale: bool = True, name: str | None = None,
                 chunk_size: int = 8, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self.model = parts.model
        self.tokenizer = parts.tokenizer
        self.image_size, self.mean, self.std = parts.image_size, parts.mean, parts.std
        self.use_logit_scale = use_logit_scale
        if name:
            self.name = name
        self.finish_init()

    def key_fields(self) -> dict:
        """The base fields, the CLIP preprocessing and whether the logit scale applies."""
        return {**super().key_fields(), "image_size": self.image_size, "mean": self.mean, "std": self.std,
                "use_logit_scale": self.use_logit_scale}

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = clip_preprocess(images, self.image_size, self.mean, self.std)
        tokens = self.tokenizer(prompts).to(self.device)  # open_clip truncates to the context length (77)
        image_features = F.normalize(self.model.encode_image(pixels), dim=-1)
        text_features = F.normalize(self.model.encode_text(tokens), dim=-1)
        cosine = (image_features * text_features).sum(-1)
        return cosine * self.model.logit_scale.exp() if self.use_logit_scale else cosine


def open_clip_files(folder, weights, spec_name: str) -> tuple[Path, Path | None]:
    """The weights file and, when present beside it, an open_clip_config.json describing the architecture."""
    path = resolve_file(folder, weights, spec_name)
    config = path.parent / CONFIG_NAME
    return path, config if config.is_file() else None


def load_clip_score(folder: str | Path | None = None, *, model_name: str = "ViT-B-32-quickgelu",
                    weights: str | Path = "open_clip_pytorch_model.bin", quick_gelu: bool | None = None,
                    device="cpu", dtype=torch.float32, chunk_size: int = 8) -> CLIPScoreVerifier:
    """CLIP score with any open_clip architecture and a local weights file (OpenAI weights: a -quickgelu name)."""
    path, config = open_clip_files(folder, weights, "clip_score")
    parts = build_open_clip(model_name, path, config=config, quick_gelu=quick_gelu)
    return CLIPScoreVerifier(parts, chunk_size=chunk_size, device=device, dtype=dtype)


def load_hpsv2(folder: str | Path | None = None, *, model_name: str = "ViT-H-14",
               weights: str | Path = "HPS_v2.1_compressed.pt", device="cpu", dtype=torch.float32,
               chunk_size: int = 4) -> CLIPScoreVerifier:
    """HPSv2 / v2.1: open_clip ViT-H-14 with the HPS checkpoint ({'state_dict': ...}); reward = cosine."""
    path, config = open_clip_files(folder, weights, "hpsv2")
    parts = build_open_clip(model_name, path, config=config, quick_gelu=False)
    return CLIPScoreVerifier(parts, use_logit_scale=False, name="hpsv2", chunk_size=chunk_size,
                             device=device, dtype=dtype)
