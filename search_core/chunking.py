"""Run a per-particle callable over particles in chunks of ``max_batch``, halving the chunk on out-of-memory.

Used for every denoiser and verifier call, so N particles never need N x the memory of one batch.
"""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def _is_oom(error: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    return isinstance(error, oom_types) or "out of memory" in str(error).lower()


def run_chunked(fn, *tensors: torch.Tensor, max_batch: int | None = None, **kwargs):
    """``fn(*row_chunks, **kwargs)`` over row chunks of the batch-aligned ``tensors``, concatenated on dim 0.

    ``fn`` returns a tensor or a tuple of tensors (each concatenated).
    On out-of-memory the chunk size halves (logged) and the failed chunk is retried; below 1 row it re-raises.
    """
    if max_batch is not None and max_batch < 1:
        raise ValueError(f"max_batch={max_batch} must be >= 1 (or None for one call with every particle)")
    total = tensors[0].shape[0]
    chunk = total if max_batch is None else min(max_batch, total)
    if chunk >= total:
        try:
            return fn(*tensors, **kwargs)
        except Exception as error:  # noqa: BLE001 - only out-of-memory is handled, everything else re-raised
            if not _is_oom(error) or total <= 1:
                raise
            chunk = max(1, total // 2)
            log.warning("out of memory with %d particles in one call; retrying in chunks of %d", total, chunk)
    outputs, start = [], 0
    while start < total:
        stop = min(start + chunk, total)
        try:
            outputs.append(fn(*(t[start:stop] for t in tensors), **kwargs))
            start = stop
        except Exception as error:  # noqa: BLE001
            if not _is_oom(error) or chunk <= 1:
                raise
            chunk = max(1, chunk // 2)
            log.warning("out of memory; halving the particle chunk to %d", chunk)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts, dim=0) for parts in zip(*outputs))
    return torch.cat(outputs, dim=0)
