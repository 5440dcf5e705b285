"""scikit-learn's handwritten digits (1,797 images, 8 x 8, 17 grey levels), split by a seed."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DigitsSplit:
    grey: torch.Tensor           # (N, 8, 8) in [0, 1]
    labels: torch.Tensor         # (N,) int64
    train: torch.Tensor          # indices
    held_out: torch.Tensor
    train_halves: tuple          # two disjoint halves of train (one per classifier)


def load_digits_split(seed: int, held_out_fraction: float = 0.2) -> DigitsSplit:
    """A seeded, class-stratified held-out split; the training split is halved (stratified) for two classifiers."""
    from sklearn.datasets import load_digits

    data = load_digits()
    grey = torch.tensor(data.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(data.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(seed)
    train, held, half_a, half_b = [], [], [], []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_held = round(len(idx) * held_out_fraction)
        held.append(idx[:n_held])
        rest = idx[n_held:]
        train.append(rest)
        half_a.append(rest[0::2])
        half_b.append(rest[1::2])
    cat = lambda parts: torch.sort(torch.cat(parts)).values
    return DigitsSplit(grey, labels, cat(train), cat(held), (cat(half_a), cat(half_b)))
