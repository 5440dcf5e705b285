"""Overhead of the search's own bookkeeping: sample_bfs at N = 64 against a plain Euler-ancestral loop of equal NFE.

Timings are process CPU time (min over interleaved repeats): other jobs on shared cores distort wall time.
The denoiser is the exact mixture denoiser on SD1.5-latent-sized inputs (4x64x64 = 16384 features, 8 components): cheap
next to a UNet, so any overhead of scoring bookkeeping, resampling, tracing and chunking shows. The verifier is a
linear reward (negligible cost), so the ratio measures the search machinery, not the verifier.
"""
from __future__ import annotations

import statistics
import time

import torch

from search_core import get_preset, sample_bfs
from search_core.testbed import GaussianMixture, LinearReward

from .scenarios import sigma_schedule


def plain_euler_ancestral(model, x, sigmas, generator):
    """The textbook k-diffusion loop (eta = 1), same noise source."""
    s_in = x.new_ones(x.shape[0])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigma * s_in)
        sigma_up = min(sigma_next, (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2) ** 0.5)
        sigma_down = (sigma_next ** 2 - sigma_up ** 2) ** 0.5
        x = x + (x - denoised) / sigma * (sigma_down - sigma)
        if sigma_next > 0:
            x = x + torch.randn(x.shape, generator=generator, device=x.device) * sigma_up
    return x


def speed_check(n_particles: int = 64, n_steps: int = 50, repeats: int = 7, dim: int = 16384,
                device: str = "cpu") -> dict:
    """Min-of-repeats timings; on CUDA wall time with synchronisation, on CPU process time."""
    cuda = device.startswith("cuda")
    clock = time.perf_counter if cuda else time.process_time
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    g = torch.Generator().manual_seed(0)
    mixture = GaussianMixture(torch.randn(8, dim, generator=g), 0.5, torch.ones(8))
    mixture.means, mixture.variances, mixture.weights = (t.to(device) for t in (mixture.means, mixture.variances,
                                                                               mixture.weights))
    model = mixture.denoiser("eps")
    reward = LinearReward(torch.randn(dim, generator=g) / dim ** 0.5)
    sigmas = sigma_schedule(n_steps)
    x = (torch.randn(1, dim, generator=g) * sigmas[0]).to(device)
    xs = (torch.randn(n_particles, dim, generator=g) * sigmas[0]).to(device)
    reward.direction = reward.direction.to(device)
    timings = {"plain": [], "best_of_n": [], "bfs": [], "svdd": []}
    for _ in range(repeats):
        for name in timings:
            gen = torch.Generator(device=device).manual_seed(1)
            sync()
            start = clock()
            if name == "plain":
                plain_euler_ancestral(model, xs, sigmas, gen)
            else:
                sample_bfs(model, x, sigmas, score_fn=reward, generator=gen, n_particles=n_particles,
                           config=get_preset(name))
            sync()
            timings[name].append(clock() - start)
    med = {k: min(v) for k, v in timings.items()}  # min: robust to other processes sharing the cores
    out = {"n_particles": n_particles, "n_steps": n_steps, "dim": dim, "repeats": repeats, "device": device}
    out.update({f"{k}_s": v for k, v in med.items()})
    out.update({f"{k}_ratio": v / med["plain"] for k, v in med.items() if k != "plain"})
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(speed_check())
