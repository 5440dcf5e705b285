"""Resampling schemes as pure functions on log-weights, batched over items (paper: the BFS "resampling" axis).

Every scheme maps ``log_w [B, N]`` (unnormalised, ``-inf`` allowed = zero weight) and a ``torch.Generator`` to
ancestor indices ``[B, N]`` (which parent each of the N children copies). Weights are normalised in log space with
logsumexp and cumulated in float64, so float32 inputs with huge spreads are safe. A zero-weight particle is never
chosen. SSP is the Srinivasan sampling process (Gerber, Chopin & Whiteley 2019): counts in {floor(N w), ceil(N w)}.
"""
from __future__ import annotations

import math

import torch


def normalized_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """log of the normalised weights [B, N] in float64 (log-softmax); rows of all ``-inf`` are an error."""
    lw = log_w.to(torch.float64)
    if not bool((lw < math.inf).all()):  # False for NaN and +inf
        raise ValueError("log-weights contain NaN or +inf; the rewards or the temperature λ produced them "
                         "(check the verifier output for NaN/inf)")
    top = lw.max(dim=1, keepdim=True).values
    if not bool((top > -math.inf).all()):
        raise ValueError("every particle of an item has zero weight (all log-weights are -inf); "
                         "the rewards cannot select anything")
    shifted = lw - top  # shift first: -3e38 + log N would round back to -3e38
    return torch.log_softmax(shifted, dim=1)


def ess_from_weights(w: torch.Tensor) -> torch.Tensor:
    """ESS = 1 / Σ w² for normalised weights."""
    return 1.0 / (w * w).sum(1)


def ess(log_w: torch.Tensor) -> torch.Tensor:
    """Effective sample size per item, exp(2·lse(lw) - lse(2·lw)), in [1, N]."""
    lw = log_w.to(torch.float64)
    lw = lw - lw.max(dim=1, keepdim=True).values
    return torch.exp(2 * torch.logsumexp(lw, 1) - torch.logsumexp(2 * lw, 1))


def counts_from_ancestors(ancestors: torch.Tensor, n_particles: int | None = None) -> torch.Tensor:
    """Children per parent [B, N] from ancestor indices [B, N]."""
    n = n_particles or ancestors.shape[1]
    counts = torch.zeros(ancestors.shape[0], n, dtype=torch.long, device=ancestors.device)
    return counts.scatter_add_(1, ancestors, torch.ones_like(ancestors))


def ancestors_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Ancestor indices [B, N] (sorted) from children counts [B, N] that sum to N per row."""
    b, n = counts.shape
    idx = torch.arange(n, device=counts.device).expand(b, n)
    flat = torch.repeat_interleave(idx.reshape(-1), counts.reshape(-1))
    return flat.reshape(b, n)


def _uniform(shape, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64).to(device)


def _inverse_cdf(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Indices i with cdf[i-1] <= u < cdf[i]; zero-width (zero-weight) intervals are never hit."""
    cdf = torch.cumsum(w, dim=1)
    cdf = cdf / cdf[:, -1:]
    idx = torch.searchsorted(cdf, u.contiguous(), right=True)
    # u can only reach the end through rounding: map it to the last particle with positive weight
    n = w.shape[1]
    last_positive = n - 1 - (w > 0).flip(1).to(torch.uint8).argmax(1, keepdim=True)
    return torch.minimum(idx, last_positive.expand_as(idx))


def _multinomial(w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N i.i.d. draws from the categorical distribution of the weights."""
    u = _uniform(w.shape, generator, w.device)
    return _inverse_cdf(w, u)


def _stratified(w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One uniform per stratum [k/N, (k+1)/N)."""
    n = w.shape[1]
    u = (torch.arange(n, device=w.device, dtype=torch.float64) + _uniform(w.shape, generator, w.device)) / n
    return _inverse_cdf(w, u)


def _systematic(w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One shared uniform offset for all N strata (counts within floor/ceil of N·w)."""
    b, n = w.shape
    u = (torch.arange(n, device=w.device, dtype=torch.float64) + _uniform((b, 1), generator, w.device)) / n
    return _inverse_cdf(w, u)


def _residual(w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """floor(N·w) copies deterministically, the remaining R children multinomially on the residual weights."""
    b, n = w.shape
    base = torch.floor(n * w + 1e-9)  # 49 · (1/49) is 0.999...: without the tolerance every count rounds down
    rest = (n - base.sum(1)).long()
    res_w = (n * w - base).clamp_min(0)
    empty = res_w.sum(1, keepdim=True) <= 0
    res_w = torch.where(empty, w, res_w)  # no residual left (R = 0): any valid distribution, nothing is drawn
    draws = _inverse_cdf(res_w / res_w.sum(1, keepdim=True), _uniform((b, n), generator, w.device))
    take = torch.arange(n, device=w.device).expand(b, n) < rest[:, None]
    extra = torch.zeros(b, n, dtype=torch.float64, device=w.device)
    extra.scatter_add_(1, draws, take.to(torch.float64))
    return ancestors_from_counts((base + extra).long())


def ssp_counts(w: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Srinivasan sampling process: counts with E[n_i] = N·w_i and n_i in {floor(N·w_i), ceil(N·w_i)}.

    The process pairs the current fractional "carry" with particle k, k = 1..N-1. The carry's fraction after k
    particles is frac(F_k) (F = cumulative fractional parts), so every pairing decision has a known probability
    and all of them are drawn at once; who holds the carry is then a cumulative maximum (no loop over particles).
    """
    b, n = w.shape
    target = n * w
    base = torch.floor(target)
    frac = (target - base).clamp(0.0, 1.0)
    tol = 1e-9
    cum = torch.cumsum(frac, dim=1)
    whole = torch.floor(cum + tol)
    prev_cum, prev_whole = cum[:, :-1], whole[:, :-1]
    carry = (prev_cum - prev_whole).clamp(0.0, 1.0)            # carry fraction before pairing with k
    p = frac[:, 1:]
    unit = whole[:, 1:] > prev_whole                            # the pair's mass reaches 1: one of them gets a unit
    total = carry + p
    keep_prob = torch.where(unit, (1 - p) / (2 - total).clamp_min(tol),
                            torch.where(total > 0, carry / total.clamp_min(1e-300), torch.ones_like(total)))
    old_wins = _uniform(p.shape, generator, w.device) < keep_prob
    # the carry moves to k when k keeps the fraction: (no unit and k won) or (unit and the old holder took it)
    moves = torch.where(unit, old_wins, ~old_wins)
    idx = torch.arange(1, n, device=w.device).expand(b, n - 1)
    holder = torch.cat([torch.zeros(b, 1, dtype=torch.long, device=w.device),
                        torch.where(moves, idx, torch.zeros_like(idx))], 1).cummax(1).values
    receiver = torch.where(old_wins, holder[:, :-1], idx)       # who gets the unit at a unit step
    units = torch.zeros_like(base).scatter_add_(1, receiver, unit.to(base.dtype))
    counts = base + units
    # float dust can leave the total off by one: fix on the largest-weight particle (always positive weight)
    rows = torch.arange(b, device=w.device)
    counts[rows, w.argmax(1)] += n - counts.sum(1)
    return counts.long()


def _ssp(w: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SSP resampling (the paper's best resampling choice): ancestors from ``ssp_counts``."""
    return ancestors_from_counts(ssp_counts(w, generator))


def _top_half(lw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """TreeG: keep the best ceil(N/2) particles by log-weight (finite only) and duplicate them round-robin.

    Ranked in log space: weights that underflow after a softmax still keep their rank, so λ cannot change it."""
    b, n = lw.shape
    keep = (n + 1) // 2
    order = torch.argsort(lw, dim=1, descending=True, stable=True)
    alive = (lw > -math.inf).sum(1, keepdim=True).clamp(max=keep)
    slot = torch.arange(n, device=lw.device).expand(b, n) % alive
    return order.gather(1, slot)


def _greedy(lw: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """SVDD: every child copies the argmax particle."""
    return lw.argmax(1, keepdim=True).expand_as(lw).clone()


def _none(w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """No resampling: every particle is its own parent."""
    b, n = w.shape
    return torch.arange(n, device=w.device).expand(b, n).clone()


_FROM_WEIGHTS = {"multinomial": _multinomial, "stratified": _stratified, "systematic": _systematic,
                 "residual": _residual, "ssp": _ssp, "top_half": _top_half, "greedy": _greedy, "none": _none}
_RANKED = ("top_half", "greedy", "none")  # rank rules: they read log-weights, never exp(log w)


# The public schemes: log-weights [B, N] (any scale) and an explicit generator in, ancestor indices [B, N] out.
def multinomial(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """N i.i.d. draws from the categorical distribution of the weights."""
    return resample("multinomial", log_w, generator)


def stratified(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniform per stratum [k/N, (k+1)/N)."""
    return resample("stratified", log_w, generator)


def systematic(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One shared uniform offset for all N strata (counts within floor/ceil of N·w)."""
    return resample("systematic", log_w, generator)


def residual(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """floor(N·w) copies deterministically, the remaining children multinomially on the residual weights."""
    return resample("residual", log_w, generator)


def ssp(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """SSP (Gerber, Chopin & Whiteley 2019; the paper's best resampling): n_i in {floor(N·w_i), ceil(N·w_i)}."""
    return resample("ssp", log_w, generator)


def top_half(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """TreeG: the best ceil(N/2) particles by log-weight, duplicated round-robin."""
    return resample("top_half", log_w, generator)


def greedy(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """SVDD: every child copies the argmax particle."""
    return resample("greedy", log_w, generator)


def none(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """No resampling: every particle is its own parent."""
    return resample("none", log_w, generator)


SCHEMES = {f.__name__: f for f in (multinomial, stratified, systematic, residual, ssp, top_half, greedy, none)}


def resample_normalized(scheme: str, log_w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Ancestor indices [B, N] from already normalised log-weights (``normalized_log_weights``)."""
    if scheme not in _FROM_WEIGHTS:
        raise ValueError(f"unknown resampling {scheme!r}; use one of {sorted(_FROM_WEIGHTS)}")
    return _FROM_WEIGHTS[scheme](log_w if scheme in _RANKED else log_w.exp(), generator)


def resample(scheme: str, log_w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Ancestor indices [B, N] of the named scheme, from log-weights [B, N]."""
    if scheme not in _FROM_WEIGHTS:
        raise ValueError(f"unknown resampling {scheme!r}; use one of {sorted(_FROM_WEIGHTS)}")
    if log_w.dim() != 2:
        raise ValueError(f"log_w must be [items, particles], got shape {tuple(log_w.shape)}")
    return resample_normalized(scheme, normalized_log_weights(log_w), generator)
