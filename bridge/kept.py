"""Finished searches kept for extension: the state of a search's key found (memory, then files) and checked, or kept.

Best-of-N / local search alone (more particles) and DFS (more NFE) are extended exactly: the result is the one a
single run of the larger budget gives (DFS: unless the smaller run's sample was better; that one is kept). Other BFS
presets run the added particles as a further population and keep the better of the two picks (search_core/extend.py).
Any other change (seed, prompt, settings, latent, model, conditioning, verifiers) gives another key (state_key.py):
the whole search runs.
"""
from __future__ import annotations

import logging

import torch

from . import search_state as states

log = logging.getLogger(__name__)

DFS_PREFIX = "dfs."   # search_core.extend.DFS_PREFIX (not imported here: the pack loads even if search_core fails)


def find(key: str, algorithm: str, budget: int, shape: tuple, n_steps: int, exact: bool, folder: str | None):
    """The kept state of ``key`` that a search of ``budget`` extends (smaller budget, same algorithm), or None."""

    def check(state):
        check_state(state, shape, n_steps, exact)

    state = states.CACHE.get(key)
    if state is not None:
        try:
            check(state)
        except states.BadState as error:   # made by this process: a bug, but never worth a failed search
            log.warning("the kept search state %s is not usable (%s); running the whole search", key[:12], error)
            states.CACHE.states.pop(key, None)
            state = None
    if state is None and folder is not None:
        state = states.load_state(folder, key, check)
        if state is not None:
            log.info("search state %s reloaded from %s", key[:12], folder)
    if state is None or state.algorithm != algorithm or state.budget >= budget:
        return None   # nothing to extend (a smaller or equal budget runs the whole search)
    return state


def _tensor(tensors: dict, name: str, shape: tuple, kind: str, low=None, high=None) -> torch.Tensor:
    """tensors[name], refused (BadState) unless of ``shape`` and ``kind`` ('float': no NaN / +inf, 'finite', 'int'
    within [low, high], 'bool', 'byte')."""
    value = tensors.get(name)
    if not isinstance(value, torch.Tensor):
        raise states.BadState(f"tensor '{name}' is missing")
    if tuple(value.shape) != tuple(shape):
        raise states.BadState(f"tensor '{name}' has shape {tuple(value.shape)}, this search needs {tuple(shape)}")
    dtypes = {"float": value.is_floating_point(), "finite": value.is_floating_point(),
              "int": not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool,
              "bool": value.dtype == torch.bool, "byte": value.dtype == torch.uint8}
    if not dtypes[kind]:
        raise states.BadState(f"tensor '{name}' is {value.dtype}, not {kind}")
    if kind == "finite" and not bool(torch.isfinite(value).all()):
        raise states.BadState(f"tensor '{name}' holds NaN/inf values")
    if kind == "float" and bool((value.isnan() | (value == float("inf"))).any()):
        raise states.BadState(f"tensor '{name}' holds NaN or +inf values")
    if kind == "int" and value.numel() and ((low is not None and int(value.min()) < low) or
                                            (high is not None and int(value.max()) > high)):
        raise states.BadState(f"tensor '{name}' holds values outside [{low}, {high}]")
    return value


def check_state(state, shape: tuple, n_steps: int, exact: bool) -> None:
    """Raise BadState unless ``state`` is what a search of ``shape`` (x: [B, ...]) saved at its budget: every tensor
    this extension reads, with its shape, type, range and finiteness, and the budget consistent with the counts."""
    n_items, item = int(shape[0]), tuple(shape[1:])
    t, budget = state.tensors, int(state.budget)
    if state.algorithm == "dfs":
        _tensor(t, "particles", (n_items, 1, *item), "finite")
        _tensor(t, "rewards", (n_items, 1), "finite")
        _tensor(t, "samples", (n_items, *item), "finite")
        _tensor(t, "nfe_per_item", (n_items,), "int", 0, budget)
        d = DFS_PREFIX
        _tensor(t, d + "open", (n_items,), "bool")
        for name in ("x", "best_x", "kept_x"):
            _tensor(t, d + name, (n_items, *item), "finite")
        _tensor(t, d + "best_r", (n_items,), "float")   # -inf: an open item that finished no dive yet
        _tensor(t, d + "kept_r", (n_items,), "finite")
        _tensor(t, d + "nfe", (n_items,), "int", 0, budget)
        ints = _tensor(t, d + "ints", (n_items, 5), "int", -1, max(budget, n_steps))
        if bool((ints[:, 0] < 0).any() or (ints[:, 0] >= n_steps).any() or (ints[:, 4] > budget).any()):
            raise states.BadState(f"tensor '{d}ints' holds steps outside [0, {n_steps}) or NFE above the budget")
        _tensor(t, d + "rng", (n_items, torch.Generator().get_state().numel()), "byte")
        return
    _tensor(t, "particles", (n_items, budget, *item), "finite")
    _tensor(t, "rewards", (n_items, budget), "finite")
    _tensor(t, "samples", (n_items, *item), "finite")
    _tensor(t, "nfe_per_item", (n_items,), "int", 0, None)
    if not exact or "selected" in t:
        _tensor(t, "selected", (n_items,), "int", 0, budget - 1)


def keep(key: str, algorithm: str, budget: int, trace, earlier_budget: int | None, folder: str | None) -> None:
    """Keep a finished search under ``key``: in memory (``states.CACHE``) and, with a ``folder``, as files."""
    from ..search_core.extend import kept_tensors
    info = {"events": trace.events, "nfe_per_item": list(trace.nfe_per_item), "extended_from": earlier_budget}
    state = states.SearchState(key, algorithm, budget, kept_tensors(trace), info)
    states.CACHE.put(state)
    if folder is not None:
        states.save_state(folder, state)
        states.prune_folder(folder, states.CACHE.max_bytes * 4)
