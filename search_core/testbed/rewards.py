"""Rewards and verifiers for the exact testbed (all differentiable, ``fn(x0 [M, d]) -> [M]``).

- ``LinearReward``: smooth; its tilted target is an exact Gaussian mixture.
- ``BumpsReward``: Gaussian bumps (a narrow one at the rare mode, a decoy between modes).
- ``OffManifoldVerifier``: reward + β·(distance to the data beyond τ std): reliable on the data manifold, wrong off
  it, like image verifiers on blurry x0 predictions.
- ``SpikedVerifier``: reward + a narrow spike off the data support that only this verifier has (reward hacking).
"""
from __future__ import annotations

import torch

from .gmm import GaussianMixture


class LinearReward:
    def __init__(self, direction):
        self.direction = torch.as_tensor(direction, dtype=torch.float32)

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        return x0.flatten(1) @ self.direction.to(x0)


class BumpsReward:
    def __init__(self, centers, widths, heights):
        self.centers = torch.as_tensor(centers, dtype=torch.float32)
        self.widths = torch.as_tensor(widths, dtype=torch.float32)
        self.heights = torch.as_tensor(heights, dtype=torch.float32)

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        sq = ((x0.flatten(1)[:, None, :] - self.centers.to(x0)[None]) ** 2).sum(-1)
        return (self.heights.to(x0) * torch.exp(-0.5 * sq / self.widths.to(x0) ** 2)).sum(1)


def manifold_distance(x0: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """Distance to the nearest component mean in that component's standard deviations."""
    d = torch.cdist(x0.flatten(1), mixture.means.to(x0))
    return (d / mixture.variances.to(x0).sqrt()[None]).min(1).values


class OffManifoldVerifier:
    def __init__(self, reward, mixture: GaussianMixture, beta: float = 1.0, tau: float = 2.0):
        self.reward, self.mixture, self.beta, self.tau = reward, mixture, beta, tau

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        excess = torch.relu(manifold_distance(x0, self.mixture) - self.tau)
        return self.reward(x0) + self.beta * excess


class SpikedVerifier:
    def __init__(self, reward, center, width: float = 0.15, height: float = 3.0):
        self.reward, self.width, self.height = reward, width, height
        self.center = torch.as_tensor(center, dtype=torch.float32)

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        sq = ((x0.flatten(1) - self.center.to(x0)) ** 2).sum(1)
        return self.reward(x0) + self.height * torch.exp(-0.5 * sq / self.width ** 2)
