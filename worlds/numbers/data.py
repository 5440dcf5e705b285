"""Numbers composed from scikit-learn's handwritten digits: k random digits side by side, an 8 x 8k grey canvas."""
from __future__ import annotations

import torch


def compose_numbers(grey: torch.Tensor, labels: torch.Tensor, k: int, n: int, generator: torch.Generator):
    """n canvases (n, 8, 8k) of k digits drawn uniformly (with replacement) from (N, 8, 8) `grey`; their (n, k)
    digit labels, left to right."""
    idx = torch.randint(len(grey), (n, k), generator=generator)
    canvases = grey[idx].permute(0, 2, 1, 3).reshape(n, grey.shape[1], k * grey.shape[2])
    return canvases, labels[idx]


def split_tiles(images: torch.Tensor, k: int) -> torch.Tensor:
    """(B, C, H, k * W) -> (B * k, C, H, W): one tile per position, row-major (number by number)."""
    b, c, h, w = images.shape
    if w % k:
        raise ValueError(f"an image {w} pixels wide does not split into {k} equal tiles")
    return images.reshape(b, c, h, k, w // k).permute(0, 3, 1, 2, 4).reshape(b * k, c, h, w // k)
