"""LAION aesthetic predictor v2 (Schuhmann 2022): MLP on L2-normalised CLIP ViT-L/14 image embeddings."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .base import Verifier
from .checkpoints import load_exact, read_state_dict
from .clip_score import open_clip_files
from .image_reward_model import RewardHead
from .open_clip_loader import OpenClipParts, build_open_clip
from .preprocess import clip_preprocess
from .registry import resolve_file


class AestheticVerifier(Verifier):
    """Aesthetic score (about 1-10 on real weights); prompts are ignored."""

    name = "aesthetic"
    differentiable = True

    def __init__(self, parts: OpenClipParts, head: RewardHead, *, chunk_size: int = 8, device="cpu",
                 dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self.model = parts.model
        self.image_size, self.mean, self.std = parts.image_size, parts.mean, parts.std
        self.head = head
        self.finish_init()

    def key_fields(self) -> dict:
        """The base fields and the CLIP preprocessing."""
        return {**super().key_fields(), "image_size": self.image_size, "mean": self.mean, "std": self.std}

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = clip_preprocess(images, self.image_size, self.mean, self.std)
        # the head was trained on unit-norm embeddings; unnormalised ones give wrong scores
        embedding = F.normalize(self.model.encode_image(pixels), dim=-1)
        return self.head(embedding)


def load_aesthetic(folder: str | Path | None = None, *, head: str | Path = "sac+logos+ava1-l14-linearMSE.pth",
                   model_name: str = "ViT-L-14-quickgelu", weights: str | Path = "open_clip_pytorch_model.bin",
                   device="cpu", dtype=torch.float32, chunk_size: int = 8) -> AestheticVerifier:
    """The MLP head file and the CLIP ViT-L/14 (OpenAI, QuickGELU) weights, both from `folder` or explicit paths."""
    head_path = resolve_file(folder, head, "aesthetic", "sac+logos+ava1-l14-linearMSE.pth")
    clip_path, config = open_clip_files(folder, weights, "aesthetic")
    head_state = read_state_dict(head_path)  # first: a bad head file is named before CLIP is built
    width = head_state["layers.0.weight"].shape[1] if "layers.0.weight" in head_state else 768
    mlp = RewardHead(width)
    load_exact(mlp, head_state, head_path, what="the aesthetic predictor's MLP head", allow_unexpected=False,
               fix="Pick sac+logos+ava1-l14-linearMSE.pth (improved-aesthetic-predictor) as the head")
    parts = build_open_clip(model_name, clip_path, config=config)
    return AestheticVerifier(parts, mlp, chunk_size=chunk_size, device=device, dtype=dtype)
