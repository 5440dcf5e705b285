"""Scoring video latents [M, C, T, h, w] (Wan 2.x, ...): decode some frames, score each, aggregate per particle.

Image verifiers score frames. A particle's reward is the mean (or min) of its frame rewards, plus an optional
temporal-consistency term: weight · (−mean absolute change between consecutive scored frames, pixels in [0, 1]).
Frames come from the VAE (the whole video decoded causally, or chosen latent frames each decoded on its own: cheap,
and exact only for the first) or from ComfyUI's linear latent-to-RGB preview factors (cheapest, coarse).
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

AGGREGATES = ("mean", "min")
DECODERS = ("vae", "preview")


@dataclasses.dataclass
class VideoScoring:
    """How a video particle becomes one reward."""

    frames: int = 4              # latent frames scored, evenly spaced incl. first and last; 0 = the whole video
    aggregate: str = "mean"      # frame rewards -> particle reward
    temporal_weight: float = 0.0
    decoder: str = "vae"

    def validate(self) -> "VideoScoring":
        if self.frames < 0:
            raise ValueError(f"video_frames={self.frames}: use 0 (the whole video) or a number of latent frames")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"video_aggregate={self.aggregate!r}: use one of {', '.join(AGGREGATES)}")
        if self.decoder not in DECODERS:
            raise ValueError(f"video_decoder={self.decoder!r}: use one of {', '.join(DECODERS)}")
        if not (self.temporal_weight >= 0 and math.isfinite(self.temporal_weight)):
            raise ValueError(f"temporal_weight={self.temporal_weight} must be a finite number >= 0 (0 = no temporal "
                             f"term)")
        return self


def frame_indices(n_frames: int, wanted: int) -> list[int]:
    """``wanted`` latent frame indices spread evenly over ``n_frames`` (first and last included); all if 0."""
    if wanted <= 0 or wanted >= n_frames:
        return list(range(n_frames))
    if wanted == 1:
        return [0]
    return sorted({round(k * (n_frames - 1) / (wanted - 1)) for k in range(wanted)})


def aggregate(frame_rewards: torch.Tensor, how: str) -> torch.Tensor:
    """[M, K] frame rewards -> [M]."""
    if how == "min":
        return frame_rewards.min(dim=1).values
    return frame_rewards.mean(dim=1)


def temporal_consistency(frames: torch.Tensor) -> torch.Tensor:
    """[M, K, H, W, 3] frames in [0, 1] -> [M]: minus the mean absolute change between consecutive frames (0 best)."""
    if frames.shape[1] < 2:
        return frames.new_zeros(frames.shape[0])
    return -(frames[:, 1:] - frames[:, :-1]).abs().flatten(1).mean(dim=1)


def preview_frames(x0: torch.Tensor, latent_format, upscale: int = 8) -> torch.Tensor:
    """[M, C, K, h, w] model-space latents -> [M·K, h·upscale, w·upscale, 3] by ComfyUI's latent-to-RGB factors."""
    factors = getattr(latent_format, "latent_rgb_factors", None)
    if factors is None:
        raise ValueError("this model's latent format has no preview factors: set video_decoder to 'vae'")
    weight = torch.tensor(factors, device=x0.device, dtype=x0.dtype)          # [C, 3]
    bias = getattr(latent_format, "latent_rgb_factors_bias", None)
    frames = x0.movedim(1, -1) @ weight                                        # [M, K, h, w, 3]
    if bias is not None:
        frames = frames + torch.tensor(bias, device=x0.device, dtype=x0.dtype)
    frames = frames.flatten(0, 1).movedim(-1, 1)                               # [M·K, 3, h, w]
    if upscale > 1:
        frames = F.interpolate(frames, scale_factor=upscale, mode="bilinear", align_corners=False)
    return ((frames + 1) / 2).clamp(0, 1).movedim(1, -1)


def frames_first(latent: torch.Tensor) -> torch.Tensor:
    """[M, C, K, h, w] -> [M·K, C, 1, h, w]: every frame its own one-frame video (decoded independently)."""
    m, c, k, h, w = latent.shape
    return latent.movedim(2, 1).reshape(m * k, c, 1, h, w)


def video_reward(frame_rewards: torch.Tensor, frames: torch.Tensor, spec: VideoScoring) -> torch.Tensor:
    """Particle rewards [M] from frame rewards [M, K] and the scored frames [M, K, H, W, 3]."""
    reward = aggregate(frame_rewards, spec.aggregate)
    if spec.temporal_weight > 0:
        reward = reward + spec.temporal_weight * temporal_consistency(frames).to(reward)
    return reward
