"""Counted, chunked and checked calls of the denoiser and the verifiers (NFE accounting lives here only)."""
from __future__ import annotations

import torch

from .chunking import MaxBatch, capped, run_chunked


def _check_rewards(rewards, m: int, name: str) -> torch.Tensor:
    if not isinstance(rewards, torch.Tensor):
        raise ValueError(f"{name} must return a tensor of rewards [M]; got {type(rewards).__name__}")
    if rewards.shape != (m,):
        if rewards.numel() == m:
            rewards = rewards.reshape(m)
        else:
            raise ValueError(f"{name} returned shape {tuple(rewards.shape)} for {m} particles; "
                             f"it must return one reward per particle, shape [{m}]")
    bad = ~torch.isfinite(rewards.detach())
    if bad.any():
        raise ValueError(f"{name} returned NaN/inf rewards for {int(bad.sum())} of {m} particles; rewards must be "
                         f"finite (check the verifier and the decoder, e.g. decode in float32)")
    return rewards


class DenoiserGradientError(ValueError):
    """Backpropagation through the denoiser failed for this model (grad_mode 'x0' needs none)."""


class Evaluator:
    """Calls ``model`` and the verifiers for the samplers, counting NFE per item and checking outputs.

    ``extra_args`` tensors whose first dimension is the number of items are per item (an inpainting mask, class
    labels): each model call gets the rows of its particles' items (BFS: B·N item-major rows; DFS: the active items).
    """

    def __init__(self, model, extra_args: dict | None, n_items: int, max_batch: MaxBatch, device):
        self.model = model
        self.extra_args = extra_args or {}
        self.per_item = [key for key, value in self.extra_args.items()
                         if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n_items]
        self.max_batch = max_batch
        self.nfe = 0
        self.nfe_per_item = torch.zeros(n_items, dtype=torch.long, device=device)
        self.grad_evals = 0
        self.denoiser_grad_evals = 0
        self.score_evals = 0

    def _count(self, items: torch.Tensor) -> None:
        self.nfe += int(items.numel())
        self.nfe_per_item.index_add_(0, items, torch.ones_like(items))

    def _row_args(self, items: torch.Tensor) -> dict:
        if not self.per_item:
            return self.extra_args
        args = dict(self.extra_args)
        for key in self.per_item:
            args[key] = args[key].index_select(0, items.to(args[key].device))
        return args

    def _model(self, x, sigma_rows, items):
        out = self.model(x, sigma_rows, **self._row_args(items))
        if out.shape != x.shape:
            raise ValueError(f"the model returned shape {tuple(out.shape)} for input {tuple(x.shape)}; it must "
                             f"return the x0 prediction (denoised) shaped like x")
        return out

    def denoise(self, x: torch.Tensor, sigma_rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """x0 predictions of the rows of ``x`` at per-row noise levels (no gradient)."""
        with torch.no_grad():
            out = run_chunked(self._model, x, sigma_rows, items, max_batch=self.max_batch)
        self._count(items)
        return out

    def score(self, fn, x0: torch.Tensor, name: str = "score_fn") -> torch.Tensor:
        """Rewards [M] float32 of x0 predictions; NaN/inf raise ValueError."""
        with torch.no_grad():
            rewards = run_chunked(lambda z: _check_rewards(fn(z), z.shape[0], name), x0,
                                  max_batch=capped(self.max_batch, fn))
        self.score_evals += x0.shape[0]
        return rewards.float()

    def reward_grad_x0(self, fn, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards, d reward / d x0) of a differentiable verifier ``fn`` at ``x0``."""
        def one(z):
            with torch.inference_mode(False), torch.enable_grad():
                z = z.detach().clone().requires_grad_(True)
                r = _check_rewards(fn(z), z.shape[0], "guide_fn")
                (g,) = torch.autograd.grad(r.sum(), z)
            return r.detach().float(), g
        r, g = run_chunked(one, x0, max_batch=capped(self.max_batch, fn))
        self.grad_evals += x0.shape[0]
        return r, g

    def reward_grad_x(self, fn, x, sigma_rows, items) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0, rewards, d reward(D(x)) / d x): the gradient through the denoiser (costs a backward pass)."""
        def one(xc, sc, ic):
            with torch.inference_mode(False), torch.enable_grad():
                xg = xc.detach().clone().requires_grad_(True)
                try:
                    x0 = self._model(xg, sc, ic)
                    r = _check_rewards(fn(x0), xg.shape[0], "guide_fn")
                    (g,) = torch.autograd.grad(r.sum(), xg)
                except RuntimeError as error:
                    if "does not require grad" in str(error) or "inplace" in str(error):
                        raise DenoiserGradientError(f"the gradient through the denoiser failed "
                                                    f"({str(error).splitlines()[0][:160]}); grad_mode "
                                                    "'x0' needs no gradient through the model") from error
                    raise
            return x0.detach(), r.detach().float(), g
        x0, r, g = run_chunked(one, x, sigma_rows, items, max_batch=capped(self.max_batch, fn))
        self._count(items)
        self.grad_evals += x.shape[0]
        self.denoiser_grad_evals += x.shape[0]
        return x0, r, g
