"""Run a per-particle callable over particles in chunks, halving the chunk on out-of-memory.

Used for every denoiser and verifier call, so N particles never need N x the memory of one batch. The chunk size is
an int, or a callable ``rows_per_call(shape) -> int`` asked before every call with the shape of all rows (the
caller's memory policy: free memory / cost per row, re-read each time, since memory changes during a search).
"""
from __future__ import annotations

import logging
from typing import Callable, Union

import torch

log = logging.getLogger(__name__)

MaxBatch = Union[int, Callable[[torch.Size], int], None]

# CPU allocation failures are plain RuntimeErrors ("DefaultCPUAllocator: can't allocate memory: ...").
_OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def _is_oom(error: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    message = str(error).lower()
    return isinstance(error, oom_types) or any(text in message for text in _OOM_MESSAGES)


def rows_per_call(max_batch: MaxBatch, shape: torch.Size) -> int:
    """Rows one call may take for a batch shaped ``shape``: all of them (None), the int, or the policy's answer."""
    total = int(shape[0])
    if max_batch is None:
        return total
    rows = max_batch(shape) if callable(max_batch) else max_batch
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"max_batch gave {rows!r} rows per call; it must be an int >= 1 (or None for one call with "
                         f"every particle)")
    return min(rows, total)


class RowLimited:
    """A per-particle callable that takes at most ``max_rows`` rows per call (e.g. a verifier whose backward pass
    through a VAE decoder needs far more memory per row than the denoiser's forward pass)."""

    def __init__(self, fn, max_rows: int):
        if int(max_rows) < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.fn, self.max_rows = fn, int(max_rows)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def capped(max_batch: MaxBatch, fn) -> MaxBatch:
    """``max_batch`` limited to ``fn.max_rows`` when ``fn`` declares one (RowLimited)."""
    cap = getattr(fn, "max_rows", None)
    if cap is None:
        return max_batch
    return lambda shape: min(rows_per_call(max_batch, shape), cap)


def run_chunked(fn, *tensors: torch.Tensor, max_batch: MaxBatch = None, **kwargs):
    """``fn(*row_chunks, **kwargs)`` over row chunks of the batch-aligned ``tensors``, concatenated on dim 0.

    ``fn`` returns a tensor or a tuple of tensors (each concatenated).
    On out-of-memory the chunk size halves (logged) and the failed chunk is retried; below 1 row it re-raises.
    """
    total = tensors[0].shape[0]
    chunk = rows_per_call(max_batch, tensors[0].shape)
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
