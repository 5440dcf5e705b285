"""Scenarios and metrics of the exact Gaussian-mixture benchmark (see benchmarks/gmm/__main__.py).

Every scenario is a data distribution (exact denoiser), the *true* reward the tables report, the verifier the search
sees, the inverse temperature λ of the tilted target p0·exp(λ·r), and samples of that target (exact for the linear
reward, importance-resampled from many base samples otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from search_core.testbed import (BumpsReward, GaussianMixture, LinearReward, OffManifoldVerifier, SpikedVerifier,
                                 standard_mixture)

N_STEPS = 24


def sigma_schedule(n_steps: int = N_STEPS, sigma_max: float = 8.0, sigma_min: float = 0.05) -> torch.Tensor:
    """Log-linear eps-form schedule ending at 0 (the last step returns the x0 prediction)."""
    s = torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n_steps))
    return torch.cat([s, torch.zeros(1)])


@dataclass
class Scenario:
    name: str
    mixture: GaussianMixture
    reward: object          # true reward (reported)
    verifier: object        # what the search scores with
    lam: float
    target: torch.Tensor    # samples of p0·exp(λ·reward)
    note: str


def _importance_target(mixture, reward, lam, n_out, g, n_base=400000):
    base = mixture.sample(n_base, g)
    logw = lam * reward(base).double()
    idx = torch.multinomial(torch.softmax(logw, 0).float(), n_out, replacement=True, generator=g)
    return base[idx]


def scenarios(n_target: int = 4096, seed: int = 0) -> dict[str, Scenario]:
    g = torch.Generator().manual_seed(seed)
    gmm = standard_mixture()
    linear = LinearReward([0.0, 1.0])
    # a narrow bump at the rare mode (0, 3) and a decoy between the common modes (off the data)
    bumps = BumpsReward([[0.0, 3.0], [0.0, 0.6]], [0.5, 0.5], [1.0, 0.6])
    rare = BumpsReward([[0.0, 3.0]], [0.5], [1.0])
    out = {
        "smooth": Scenario("smooth", gmm, linear, linear, 1.0, gmm.tilted_linear(linear.direction, 1.0).sample(
            n_target, g), "linear reward r = x_2, exact verifier (the reference finding: greedy should win)"),
        "bumps": Scenario("bumps", gmm, bumps, bumps, 5.0, _importance_target(gmm, bumps, 5.0, n_target, g),
                          "two bumps (rare mode + off-data decoy), exact verifier"),
        "offmanifold": Scenario("offmanifold", gmm, rare, OffManifoldVerifier(rare, gmm, beta=0.5, tau=2.0), 5.0,
                                _importance_target(gmm, rare, 5.0, n_target, g),
                                "reward: a bump at the rare mode; verifier = reward + 0.5 * (distance to the data "
                                "beyond 2 std): reliable on the data, wrong off it (like image verifiers on blurry "
                                "x0 predictions)"),
    }
    return out


def spiked_guide(scenario: Scenario) -> SpikedVerifier:
    """The guiding verifier of the dual-verifier check: a narrow spike off the data that the true reward lacks."""
    return SpikedVerifier(scenario.reward, center=[0.0, 4.2], width=0.4, height=3.0)


def second_opinion() -> BumpsReward:
    """The selecting verifier of the dual-verifier check: the same preference (a bump at the rare mode, a little
    wider), modelled independently, so it lacks the guide's spike."""
    return BumpsReward([[0.0, 3.0]], [0.6], [1.0])


def easy_and_hard_instances() -> dict[str, tuple]:
    """DFS instances: the reward sits at the common mode (easy) or the rare one (hard)."""
    gmm = standard_mixture()
    easy = BumpsReward([[-2.0, 0.0]], [0.7], [1.0])
    hard = BumpsReward([[0.0, 3.0]], [0.7], [1.0])
    return {"easy": (gmm, easy), "hard": (gmm, hard)}


def mode_instances() -> dict[str, tuple]:
    """DFS study: the reward is a bump at one mode; a sample that starts toward another mode has to leave it."""
    gmm = standard_mixture()
    return {f"mode {name} (weight {w})": (gmm, BumpsReward([center], [0.7], [1.0]))
            for name, center, w in (("A", [-2.0, 0.0], 0.6), ("B", [2.0, 0.0], 0.35), ("C", [0.0, 3.0], 0.05))}


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance 2E|a-b| - E|a-a'| - E|b-b'| (0 iff equal distributions); a metric on 2-D samples."""
    a, b = a.double(), b.double()
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def mean_and_sem(values: torch.Tensor) -> tuple[float, float]:
    v = values.double()
    return float(v.mean()), float(v.std() / math.sqrt(max(v.numel(), 1)))
