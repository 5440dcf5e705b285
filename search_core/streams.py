"""Per-particle random streams: the noise of particle j of item b comes from its own generator, seeded by (seed, b, j).

A search that draws all particle noise from one generator gives particle 3 different noise when N changes. With one
stream per (item, particle) a particle's trajectory does not depend on the budget, so a finished search can be
extended exactly (Best-of-N: add candidates; DFS: resume an item from its saved state and stream). Resampling and
other population-level choices still draw from the sampler's ``generator``.
"""
from __future__ import annotations

import hashlib

import torch


def stream_seed(seed: int, item: int, particle: int) -> int:
    """A 63-bit seed for the stream of (item, particle), independent of the other streams' count."""
    digest = hashlib.sha256(f"diffusion-search/{int(seed)}/{int(item)}/{int(particle)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2 ** 63 - 1)


class ParticleStreams:
    """One CPU ``torch.Generator`` per particle row (item-major rows: item b, particles ``first .. first+n-1``).

    ``rows(index)`` is the noise source for those rows: pass it where a sampler takes a generator for particle noise.
    """

    def __init__(self, seed: int, n_items: int, n_particles: int = 1, first: int = 0):
        self.seed, self.n_items, self.n_particles, self.first = int(seed), int(n_items), int(n_particles), int(first)
        self.generators = [torch.Generator(device="cpu").manual_seed(stream_seed(seed, b, first + j))
                           for b in range(self.n_items) for j in range(self.n_particles)]

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
