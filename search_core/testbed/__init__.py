"""Exact testbed: a Gaussian mixture whose denoiser E[x0 | x_σ] is exact in closed form (both noise forms), plus
rewards with known tilted targets p0(x)·exp(λ·r(x)) and verifiers that are unreliable off the data manifold."""
from .gmm import GaussianMixture, standard_mixture
from .rewards import BumpsReward, LinearReward, OffManifoldVerifier, SpikedVerifier

__all__ = ["GaussianMixture", "standard_mixture", "LinearReward", "BumpsReward", "OffManifoldVerifier",
           "SpikedVerifier"]
