"""The all-in-one search KSampler: one node for people who do not build custom-sampler graphs."""
from __future__ import annotations

import json
import logging

import torch

from . import widgets
from ..bridge import compat
from ..bridge.latents import check_search_inputs
from ..bridge.call import SearchOutcome
from ..bridge.ksampler import make_search_sampler
from ..bridge.plan import ScoringSpec, SearchPlan

log = logging.getLogger(__name__)

DFS = "dfs"


def _search_choices() -> list[str]:
    return widgets.preset_choices()[:-1] + [DFS]


class DiffusionSearchKSampler:
    """KSampler that searches (paper: BFS presets or DFS, optional local search and dual verifiers)."""

    DESCRIPTION = ("KSampler with inference-time search: BFS presets (the paper's BFS, Best-of-N, FK, DAS, TreeG, "
                   "SVDD), the paper's other baselines (SoP, DSearch, DSearch-R), progressive seed pruning, or DFS. Outputs the chosen latent (the best; fk and das: a draw from their final weights, "
                   "as in their sources), every final candidate ranked best first, their scores and the search "
                   "trace (JSON).")
    RETURN_TYPES = ("LATENT", "LATENT", "STRING", "STRING")
    RETURN_NAMES = ("best", "candidates", "scores_json", "trace_json")
    OUTPUT_TOOLTIPS = ("The best latent of each item (what KSampler would output), for VAE Decode.",
                       "Every final candidate, best first within each item (items one after another).",
                       "JSON: each item's candidate rewards best first, their order, the NFE and gradient counts.",
                       "JSON: the search trace (every scored step, resampling, backtrack), as the search view shows it.")
    FUNCTION = "sample"
    CATEGORY = widgets.SEARCH_CATEGORY

    @classmethod
    def INPUT_TYPES(cls):
        sampling = widgets.sampling_inputs(compat.scheduler_names())
        required = {
            "model": sampling["model"],
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Same seed, same settings: same image (particle noise is derived from it)."}),
            **{name: sampling[name] for name in ("steps", "cfg", "scheduler", "positive", "negative", "latent_image",
                                                 "denoise")},
            **widgets.scoring_inputs(),
            "search": (_search_choices(), {"default": "bfs", "tooltip":
                       "A BFS preset (bfs = the paper's; fk and das end with a draw from the tilted target "
                       "p·exp(λr), the others with the best particle; sop, dsearch, dsearch_r and seed_pruning: "
                       "the BFS Search Sampler's preset tooltip gives their settings and cost) or dfs (backtracking "
                       "with the δ/ΔT below)."}),
            "particles": widgets.bfs_inputs()["particles"],
            "lam": widgets.bfs_inputs()["lam"],
            "resampling_steps": widgets.bfs_inputs()["resampling_steps"],
            "delta": widgets.dfs_inputs()["delta"],
            "backtrack_steps": widgets.dfs_inputs()["backtrack_steps"],
            "nfe_budget": widgets.dfs_inputs()["nfe_budget"],
            **widgets.scoring_options(),
        }
        optional = {**widgets.optional_scoring_inputs(),
                    "local_search": (widgets.LOCAL_SEARCH_TYPE, {"tooltip": "Attach Langevin local search."})}
        return {"required": required, "optional": optional, "hidden": {"unique_id": "UNIQUE_ID"}}

    @classmethod
    def VALIDATE_INPUTS(cls, cfg=None, denoise=None, lam=None, delta=None, temporal_weight=None):
        return widgets.validate_floats(cls, cfg=cfg, denoise=denoise, lam=lam, delta=delta,
                                       temporal_weight=temporal_weight)

    def sample(self, model, seed, steps, cfg, scheduler, positive, negative, latent_image, denoise, vae, verifier,
               prompt, search, particles, lam, resampling_steps, delta, backtrack_steps, nfe_budget, score_size,
               chunk_size, select_verifier=None, local_search=None, unique_id=None, **video):
        widgets.check_floats(type(self), cfg=cfg, denoise=denoise, lam=lam, delta=delta)
        scoring = ScoringSpec(vae=vae, guide_verifier=verifier, prompt=prompt, select_verifier=select_verifier,
                              score_size=int(score_size), chunk_size=int(chunk_size),
                              video=widgets.video_scoring(**video))
        plan = _plan(search, scoring, particles, lam, resampling_steps, delta, backtrack_steps, nfe_budget,
                     local_search, unique_id)
        samples, outcome = run_search(model, seed, steps, cfg, scheduler, positive, negative, latent_image, denoise,
                                      plan)
        return _outputs(latent_image, samples, outcome)


def run_search(model, seed, steps, cfg, scheduler, positive, negative, latent_image, denoise, plan: SearchPlan,
               callback=None):
    """KSampler's path with a search SAMPLER: (samples, SearchOutcome). callback(step, x0, x, total_steps) or None
    for ComfyUI's previews and step progress bar."""
    latents = compat.fix_empty_latent_channels(model, _latent_samples(latent_image))
    outcomes = []
    sampler = make_search_sampler(plan, outcomes.append)
    # before any sampling work, after any fix of empty latents (comfy.sample.fix_empty_latent_channels)
    check_search_inputs(model.model, latents, plan.scoring.vae)
    sigmas = compat.calculate_sigmas(model, scheduler, int(steps), float(denoise))
    noise = compat.prepare_noise(latents, int(seed), latent_image.get("batch_index"))
    if callback is None:
        callback = compat.preview_callback(model, sigmas.shape[-1] - 1, {})
    samples = compat.sample_custom(model, noise, cfg, sampler, sigmas, positive, negative, latents,
                                   noise_mask=latent_image.get("noise_mask"), callback=callback, seed=int(seed))
    return samples, outcomes[-1]


def _latent_samples(latent_image) -> torch.Tensor:
    if not isinstance(latent_image, dict) or not isinstance(latent_image.get("samples"), torch.Tensor):
        raise ValueError(f"'latent_image' must be a LATENT (e.g. from Empty Latent Image or VAE Encode), got "
                         f"{type(latent_image).__name__}")
    return latent_image["samples"]


NODE_TYPE = "DiffusionSearchKSampler"


def _plan(search, scoring, particles, lam, resampling_steps, delta, backtrack_steps, nfe_budget, local_search,
          node_id) -> SearchPlan:
    if search == DFS:
        config = widgets.dfs_config(delta, "constant", backtrack_steps, nfe_budget, -1, -1)
        return SearchPlan("dfs", scoring, dfs=config, local=local_search, node_id=node_id, node_type=NODE_TYPE)
    config = widgets.bfs_config(search, lam, resampling_steps, 0.0, None, None, None)
    return SearchPlan("bfs", scoring, n_particles=int(particles), bfs=config, local=local_search, node_id=node_id,
                      node_type=NODE_TYPE)


def _outputs(latent_image, samples, outcome: SearchOutcome):
    """best latent, ranked candidates [B*N] (item-major, best first), scores and trace as JSON strings."""
    trace = outcome.trace
    best = dict(latent_image)
    best["samples"] = samples
    best.pop("noise_mask", None)
    candidates = dict(best)
    scores = {"rewards": [], "order": [], "nfe": 0}
    if outcome.candidates is not None:
        order = trace.order.to(torch.long).cpu()
        ranked = torch.stack([outcome.candidates[b][order[b]] for b in range(order.shape[0])])
        candidates["samples"] = ranked.reshape(-1, *ranked.shape[2:]).to(samples.device)
        rewards = trace.rewards.float().cpu()
        scores = {"rewards": [[float(rewards[b, i]) for i in order[b]] for b in range(order.shape[0])],
                  "order": order.tolist(), "nfe": int(trace.nfe), "nfe_per_item": list(trace.nfe_per_item),
                  "grad_evals": int(trace.grad_evals)}
        candidates.pop("batch_index", None)
    return (best, candidates, json.dumps(scores), trace.to_json())
