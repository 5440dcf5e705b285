"""Per-particle random streams: the noise of particle j of item b comes from its own generator, seeded by (seed, b, j).

A search that draws all particle noise from one generator gives particle 3 different noise when N changes. With one
stream per (item, particle) a particle's trajectory does not depend on the budget, so a finished search can be
extended exactly (Best-of-N: add candidates; DFS: resume an item from its saved state and stream). Population-level
choices (resampling, a beam's draws, SoP's re-noising) draw from the streams' ``population`` generator.

A sampler's ``generator=`` takes either a ``torch.Generator`` (every draw from it, in the order the sampler makes
them: what a seed gave before streams existed) or a ``ParticleStreams`` (``noise_sources`` splits it).
"""
from __future__ import annotations

import hashlib

import torch


def stream_seed(seed: int, item: int, particle: int) -> int:
    """A 63-bit seed for the stream of (item, particle), independent of the other streams' count."""
    digest = hashlib.sha256(f"diffusion-search/{int(seed)}/{int(item)}/{int(particle)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2 ** 63 - 1)


POPULATION = -1   # the stream index of the population generator (no item has it)


class ParticleStreams:
    """One CPU ``torch.Generator`` per particle row (item-major rows: item b, particles ``first .. first+n-1``), and
    ``population``, the generator of the population-level choices.

    ``population``: a generator of the caller's (the bridge keeps its seeded numbers); None: one seeded from (seed,
    POPULATION), so the same seed gives the same search. ``rows(index)`` is the noise source of those rows.
    """

    def __init__(self, seed: int, n_items: int, n_particles: int = 1, first: int = 0,
                 population: torch.Generator | None = None):
        self.seed, self.n_items, self.n_particles, self.first = int(seed), int(n_items), int(n_particles), int(first)
        self.generators = [torch.Generator(device="cpu").manual_seed(stream_seed(seed, b, first + j))
                           for b in range(self.n_items) for j in range(self.n_particles)]
        if population is not None and not isinstance(population, torch.Generator):
            raise ValueError(f"population must be a torch.Generator, got {type(population).__name__}")
        self.population = population if population is not None else torch.Generator(device="cpu").manual_seed(
            stream_seed(seed, POPULATION, POPULATION))

    def __len__(self) -> int:
        return len(self.generators)

    def rows(self, index=None) -> "RowNoise":
        """The noise source of rows ``index`` (a tensor or list of row numbers; None: every row in order)."""
        rows = range(len(self.generators)) if index is None else torch.as_tensor(index).reshape(-1).tolist()
        return RowNoise([self.generators[r] for r in rows])

    def get_states(self) -> torch.Tensor:
        """The generators' states [rows, bytes] (uint8), to save a search and resume it later."""
        return torch.stack([g.get_state() for g in self.generators])

    def set_states(self, states: torch.Tensor, rows=None) -> None:
        """Restore saved states (all rows, or the rows listed)."""
        rows = range(len(self.generators)) if rows is None else torch.as_tensor(rows).reshape(-1).tolist()
        for state, r in zip(states, rows):
            self.generators[r].set_state(state.to(torch.uint8).cpu().clone())  # clone: set_state needs its own storage


class RowNoise:
    """Noise for a fixed list of rows: row i of a draw comes from generator i (``randn_like`` accepts it)."""

    def __init__(self, generators: list[torch.Generator]):
        self.generators = generators
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.generators)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != len(self.generators):
            raise ValueError(f"noise for {x.shape[0]} rows was drawn from {len(self.generators)} particle streams")
        if not self.generators:
            return torch.empty(x.shape, dtype=x.dtype, device=x.device)
        rows = [torch.randn(x.shape[1:], generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(rows).to(x)

    def subset(self, mask_or_index) -> "RowNoise":
        """The sources of some of these rows (a boolean mask or indices)."""
        index = torch.as_tensor(mask_or_index)
        if index.dtype == torch.bool:
            index = index.nonzero()[:, 0]
        return RowNoise([self.generators[i] for i in index.reshape(-1).tolist()])


def noise_sources(generator) -> tuple:
    """(particle noise, population generator) of a sampler's ``generator=``: a ``torch.Generator`` is both; a
    ``ParticleStreams`` gives itself (per-row noise) and its ``population``."""
    if isinstance(generator, ParticleStreams):
        return generator, generator.population
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (every random choice of the search draws from it) or "
                         f"a ParticleStreams (per-particle noise, for extension); got {type(generator).__name__}: "
                         f"pass generator=torch.Generator().manual_seed(seed)")
    return None, generator
