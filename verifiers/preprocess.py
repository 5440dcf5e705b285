"""Differentiable image preprocessing in torch only (no PIL): resize, centre crop, normalise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resize_shorter_side(images: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize NCHW so the shorter side is `size` (antialiased, like PIL's resize), keeping aspect ratio."""
    height, width = images.shape[-2:]
    if min(height, width) == size:
        return images
    scale = size / min(height, width)
    new_hw = (max(size, round(height * scale)), max(size, round(width * scale)))
    return F.interpolate(images, size=new_hw, mode=mode, align_corners=False, antialias=mode in ("bilinear", "bicubic"))


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop NCHW to size x size (torchvision's rounding)."""
    height, width = images.shape[-2:]
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return images[..., top:top + size, left:left + size]


def normalise(images: torch.Tensor, mean, std) -> torch.Tensor:
    """Channel-wise (x - mean) / std on NCHW."""
    mean_t = torch.as_tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def clip_preprocess(images: torch.Tensor, size: int = 224, mean=CLIP_MEAN, std=CLIP_STD, mode: str = "bicubic") -> torch.Tensor:
    """CLIP-style preprocessing on NCHW in [0,1]: resize shorter side, centre crop, normalise."""
    images = resize_shorter_side(images, size, mode)
    images = center_crop(images, size)
    return normalise(images, mean, std)
