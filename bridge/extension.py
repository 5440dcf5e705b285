"""Run a search, extending the kept state of the same inputs when only the budget grew (docs/extend.md).

Best-of-N / local search alone (more particles) and DFS (more NFE) are extended exactly: the result is the one a
single run of the larger budget gives (DFS: unless the smaller run's sample was better; that one is kept). Other BFS
presets run the added particles as a further population and keep the better of the two picks. Any other change
(seed, prompt, settings, latent, model, conditioning, verifiers) gives another key: the whole search runs.
"""
from __future__ import annotations

import logging

import torch

from . import compat
from . import search_state as states
from .search_state import reuse_enabled  # noqa: F401  (the switch, read where the search starts)

log = logging.getLogger(__name__)

BFS_KEYS = ("particles", "rewards", "samples", "selected", "nfe_per_item")
DFS_PREFIX = "dfs."


def search_budget(plan, n_steps: int) -> int:
    """The budget the artist raises: particles (BFS, local search) or NFE per latent (DFS, default 2 dives)."""
    if plan.algorithm != "dfs":
        return int(plan.n_particles)
    from ..search_core.dfs import dive_costs
    return int(plan.dfs.nfe_budget or 2 * dive_costs(n_steps, plan.local)[0])


def is_exact(plan) -> bool:
    """Whether extending gives exactly one run of the larger budget (Best-of-N, local search alone, DFS)."""
    from ..search_core.extend import is_exact_bfs
    from ..search_core.presets import get_preset
    if plan.algorithm in ("dfs", "local"):
        return True
    return is_exact_bfs(plan.bfs if plan.bfs is not None else get_preset("bfs"))


def _settings(plan) -> dict:
    """The plan without its budget and without the run's bookkeeping (node id)."""
    spec = plan.scoring
    dfs = None if plan.dfs is None else {**plan.dfs.to_dict(), "nfe_budget": None}
    return {"algorithm": plan.algorithm, "bfs": None if plan.bfs is None else plan.bfs.to_dict(), "dfs": dfs,
            "local": None if plan.local is None else plan.local.to_dict(), "prompt": spec.prompt,
            "score_size": spec.score_size, "video": spec.video, "reject_flow": plan.reject_flow,
            "guide": spec.guide_verifier, "select": spec.select_verifier,
            "vae": states.WeightsOnly(spec.vae.first_stage_model)}


def key_of(plan, model_k, base_model, patcher, x, sigmas, extra_args, seed, noise_form) -> str:
    """The state key: every input of this search except its budget."""
    guider = getattr(model_k, "inner_model", None)
    conditioning = {"extra_args": {k: v for k, v in (extra_args or {}).items()},
                    "conds": getattr(guider, "original_conds", None), "cfg": getattr(guider, "cfg", None)}
    patches = None if patcher is None else {"patches": getattr(patcher, "patches", None),
                                            "object_patches": getattr(patcher, "object_patches", None)}
    return states.state_key(settings=_settings(plan), model=states.WeightsOnly(base_model), patches=patches,
                            conditioning=conditioning,
                            x=x, sigmas=sigmas, seed=int(seed), noise_form=noise_form,
                            latent=getattr(model_k, "latent_image", None), noise=getattr(model_k, "noise", None))


def safe_key(*args) -> str | None:
    """``key_of``, or None (the search runs whole and is not kept) when an input cannot be digested."""
    try:
        return key_of(*args)
    except Exception as error:   # an exotic input (quantized weights, a huge option) must never fail the search
        log.warning("search inputs could not be keyed (%s: %s); this search is not kept for extension",
                    type(error).__name__, error)
        return None


def _previous(key: str | None, algorithm: str, budget: int, shape: tuple, n_steps: int, exact: bool):
    if key is None:
        return None

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
    if state is None:
        state = states.load_state(compat.state_folder(), key, check)
        if state is not None:
            log.info("search state %s reloaded from %s", key[:12], compat.state_folder())
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


def run(plan, search_fn, denoiser, x, sigmas, extra_args, callback, disable, kwargs: dict, seed: int, key,
        forwarder):
    """Run ``search_fn`` (a search_core sampler), extending the kept state of ``key`` when the budget grew."""
    from ..search_core.extend import merge_populations
    from ..search_core.streams import ParticleStreams
    n_items, n_steps = x.shape[0], sigmas.numel() - 1
    budget = search_budget(plan, n_steps)
    exact = is_exact(plan)
    previous = _previous(key, plan.algorithm, budget, tuple(x.shape), n_steps, exact)
    result = kwargs["result"]
    kwargs = dict(kwargs)
    if plan.algorithm == "dfs":
        kwargs["streams"] = ParticleStreams(seed, n_items)
        if previous is not None:
            kwargs["resume"] = {**{k[len(DFS_PREFIX):]: v for k, v in previous.tensors.items()
                                   if k.startswith(DFS_PREFIX)}, "budget": previous.budget}
    else:
        first = 0 if previous is None else previous.budget
        kwargs["n_particles"] = budget - first
        kwargs["streams"] = ParticleStreams(seed, n_items, budget - first, first)
    if previous is not None:
        forwarder.run_info["extends"] = {"from_budget": previous.budget, "budget": budget, "exact": exact}
        log.info("extending the %s search %s from budget %d to %d (%s)", plan.algorithm, key[:12], previous.budget,
                 budget, "exact" if exact else "a further population")
    samples = search_fn(denoiser, x, sigmas, extra_args, callback, disable, **kwargs)
    if previous is not None and plan.algorithm != "dfs":
        merge_populations({k: previous.tensors[k] for k in BFS_KEYS if k in previous.tensors}, result, exact)
        samples = result.samples.to(samples)
        event = {"type": "extend", "algorithm": result.algorithm, "from_budget": previous.budget, "budget": budget,
                 "exact": exact, "rewards": result.rewards.tolist(), "selected": result.selected.tolist(),
                 "order": result.order.tolist(), "nfe": result.nfe, "nfe_per_item": result.nfe_per_item}
        result.events.append(event)
        forwarder(event)
    if key is not None:
        _keep(key, plan, budget, result, previous)
    return samples


def _keep(key: str, plan, budget: int, result, previous) -> None:
    from ..search_core.extend import result_tensors
    tensors = result_tensors(result)
    if plan.algorithm == "dfs" and result.state is not None:
        tensors.update({DFS_PREFIX + k: v.detach().cpu() for k, v in result.state.items()
                        if isinstance(v, torch.Tensor)})
    info = {"events": result.events, "nfe_per_item": list(result.nfe_per_item),
            "extended_from": None if previous is None else previous.budget}
    state = states.SearchState(key, plan.algorithm, budget, tensors, info)
    states.CACHE.put(state)
    folder = compat.state_folder()
    states.save_state(folder, state)
    states.prune_folder(folder, states.CACHE.max_bytes * 4)
