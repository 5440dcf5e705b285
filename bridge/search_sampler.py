"""Build the KSAMPLER function that runs a search_core sampler inside ComfyUI's sampling loop."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from . import compat, extension
from .events import EventForwarder
from .latents import check_search_inputs
from .inpaint import per_row_inpainting
from .memory import DenoiserRowPolicy, ScoringResidency, cfg_copies, unet_patcher_of
from .scoring import LatentScorer

log = logging.getLogger(__name__)

# The particle noise must not repeat the noise ComfyUI drew from the same seed (prepare_noise uses the seed itself).
PARTICLE_SEED_OFFSET = 0x5EA2C4


@dataclasses.dataclass
class ScoringSpec:
    """What the scoring path needs besides the model: decoder, verifiers, prompt and batching."""

    vae: Any
    guide_verifier: Any
    prompt: str = ""
    select_verifier: Any = None
    score_size: int = 0
    chunk_size: int = 8
    video: Any = None                    # video.VideoScoring: how video latents are scored (None: defaults)

    def validate(self) -> "ScoringSpec":
        if self.vae is None:
            raise ValueError("the search needs a VAE to score x0 predictions: connect the checkpoint's VAE "
                             "(or a TAESD VAE from VAELoader for cheap intermediate scores) to 'vae'")
        if not hasattr(self.vae, "first_stage_model"):
            raise ValueError(f"'vae' must be a ComfyUI VAE (from a checkpoint or VAELoader), got "
                             f"{type(self.vae).__name__}")
        if self.guide_verifier is None:
            raise ValueError("the search needs a verifier: connect a DiffusionSearch verifier loader")
        for name in ("guide_verifier", "select_verifier"):
            verifier = getattr(self, name)
            if verifier is not None and not callable(getattr(verifier, "score", None)):
                raise ValueError(f"'{name}' must be a SEARCH_VERIFIER, got {type(verifier).__name__}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        return self


@dataclasses.dataclass
class SearchPlan:
    """One search: which algorithm, its settings, its scoring, and where its events go."""

    algorithm: str                       # "bfs" | "dfs" | "local"
    scoring: ScoringSpec
    n_particles: int = 1
    bfs: Any = None                      # search_core.config.BFSConfig
    dfs: Any = None                      # search_core.config.DFSConfig
    local: Any = None                    # search_core.config.LangevinConfig (alone or attached)
    node_id: Any = None
    node_type: str | None = None         # the node's class_type, so the web view can tell nodes of one id apart
    reject_flow: bool = False            # options that only make sense for epsilon models
    reuse: bool = True                   # extend a kept search of the same inputs when the budget grew (extension.py)

    def validate(self) -> "SearchPlan":
        if self.algorithm not in ("bfs", "dfs", "local"):
            raise ValueError(f"unknown search algorithm {self.algorithm!r}: use bfs, dfs or local")
        if self.n_particles < 1:
            raise ValueError(f"particles must be at least 1, got {self.n_particles}: one particle is the plain "
                             "sampler, the paper uses 2 to 8")
        if self.algorithm == "local" and self.local is None:
            raise ValueError("local search needs Langevin settings")
        self.scoring.validate()
        if self.local is not None and self.local.steps > 0 and not getattr(
                self.scoring.guide_verifier, "differentiable", False):
            raise ValueError(f"local search climbs the guide verifier's gradient, but "
                             f"'{getattr(self.scoring.guide_verifier, 'name', '?')}' is not differentiable: connect "
                             "a differentiable guide verifier (use the other one as select_verifier)")
        return self


class SearchOutcome:
    """Filled by the sampler function: the SearchResult plus candidates in ComfyUI's output latent space."""

    def __init__(self):
        self.result = None
        self.candidates = None   # [B, N, C, h, w] after inverse_noise_scaling and process_latent_out
        self.noise_form = None
        self.rows_per_call = None   # the most particle rows one denoiser call was given (memory policy)


def _search_function(algorithm: str):
    # Imported at call time: the pack must load (and show its nodes) even if search_core fails to import.
    if algorithm == "bfs":
        from ..search_core.bfs import sample_bfs
        return sample_bfs
    if algorithm == "dfs":
        from ..search_core.dfs import sample_dfs
        return sample_dfs
    from ..search_core.local import sample_local
    return sample_local


def _algorithm_kwargs(plan: SearchPlan) -> dict:
    kwargs = {}
    if plan.algorithm == "bfs":
        kwargs.update(n_particles=plan.n_particles, config=plan.bfs, local=plan.local)
    elif plan.algorithm == "dfs":
        kwargs.update(config=plan.dfs, local=plan.local)
    else:
        kwargs.update(n_particles=plan.n_particles, config=plan.local)
    return kwargs


def make_sampler_function(plan: SearchPlan, outcome: SearchOutcome | None = None):
    """A k-diffusion-signature function for comfy.samplers.KSAMPLER that runs `plan` on the particles."""
    plan.validate()

    def sample_search(model, x, sigmas, extra_args=None, callback=None, disable=None, **_options):
        from ..search_core.trace import SearchResult

        base_model = compat.base_model_of(model)
        check_search_inputs(base_model, x, plan.scoring.vae)
        noise_form = compat.noise_form_of(base_model)
        if noise_form == "flow" and plan.reject_flow:
            raise ValueError("this model is a flow model (SD3 / FLUX: x = (1-σ)·x0 + σ·ε), but the search was set "
                             "up with an epsilon-only option (DFS δ schedule 'alpha_scaled'); use the 'constant' "
                             "δ schedule")
        spec = plan.scoring
        # Memory: particle rows per denoiser call from free memory; VAE/verifier on the device only to score.
        rows_policy = DenoiserRowPolicy(base_model, x.device, cfg_copies(model, extra_args))
        residency = ScoringResidency(spec.vae, (spec.guide_verifier, spec.select_verifier), x.device, rows_policy,
                                     unet_patcher_of(base_model))
        guide = LatentScorer(base_model, spec.vae, spec.guide_verifier, spec.prompt, score_size=spec.score_size,
                             chunk_size=spec.chunk_size, residency=residency, video=spec.video)
        select = None
        if spec.select_verifier is not None:
            select = LatentScorer(base_model, spec.vae, spec.select_verifier, spec.prompt, residency=residency,
                                  score_size=spec.score_size, chunk_size=spec.chunk_size, video=spec.video)
        seed = (extra_args or {}).get("seed") or 0
        # CPU generators: the same seed gives the same particles on every device, like ComfyUI's own noise. Particle
        # noise comes from per-particle streams (search_core/streams.py), this one draws the resampling.
        generator = torch.Generator(device="cpu").manual_seed((int(seed) + PARTICLE_SEED_OFFSET) % (2 ** 63))
        forwarder = EventForwarder(plan.node_id, scorers=(guide, select), node_type=plan.node_type,
                                   run_info=_run_info(spec, seed))

        def step_callback(info):
            compat.check_interrupted()
            if callback is not None:
                callback(info)

        result = SearchResult()
        kwargs = dict(score_fn=guide.score, generator=generator, noise_form=noise_form, max_batch=rows_policy,
                      on_event=forwarder, result=result, **_algorithm_kwargs(plan))
        if select is not None:
            kwargs["select_fn"] = select.score
        if plan.local is not None:
            # forward + backward through the decoder: chunk_size rows at a time (memory, and cache locality on CPU)
            from ..search_core.chunking import RowLimited
            kwargs["guide_fn"] = RowLimited(guide.score_with_grad, spec.chunk_size)
        start = getattr(model, "latent_image", None)  # img2img: fresh particles noise the input latent, not zeros
        if isinstance(start, torch.Tensor) and start.shape == x.shape and torch.count_nonzero(start) > 0:
            kwargs["start_x0"] = start
        # Inpainting: the mask, input latent and noise follow each particle row's item (nodes/inpaint.py).
        denoiser, extra_args = per_row_inpainting(model, extra_args or {}, x.shape[0])
        if plan.local is not None and plan.local.grad_mode == "denoiser":
            denoiser = compat.differentiable_denoiser(denoiser, base_model)
        from ..search_core.evaluation import DenoiserGradientError
        key = None
        if plan.reuse and extension.reuse_enabled():
            key = extension.safe_key(plan, model, base_model, unet_patcher_of(base_model), x, sigmas, extra_args,
                                     seed, noise_form)
        try:
            samples = extension.run(plan, _search_function(plan.algorithm), denoiser, x, sigmas, extra_args,
                                    step_callback, disable, kwargs, int(seed), key, forwarder)
        except DenoiserGradientError as error:
            raise ValueError(f"Local Search Settings: gradient_mode 'denoiser' could not backpropagate through this "
                             f"model ({error}); set gradient_mode to 'x0', which works with every model") from error
        if outcome is not None:
            outcome.rows_per_call = rows_policy.largest
            outcome.result = result
            outcome.noise_form = noise_form
            outcome.candidates = _output_space(base_model, sigmas, result.particles)
        return samples

    return sample_search


def _run_info(spec: ScoringSpec, seed) -> dict:
    """The start event's extra keys: which verifiers guided and selected, and the sampling seed."""
    def name(verifier):
        return None if verifier is None else str(getattr(verifier, "name", type(verifier).__name__))
    return {"verifiers": {"guide": name(spec.guide_verifier), "select": name(spec.select_verifier)},
            "seed": int(seed)}


def _output_space(base_model, sigmas, particles):
    """Map final particles [B, N, ...] the way ComfyUI maps a sampler's return value (noise scaling, latent format)."""
    if particles is None:
        return None
    flat = particles.reshape(-1, *particles.shape[2:])
    flat = base_model.model_sampling.inverse_noise_scaling(sigmas[-1], flat)
    flat = base_model.process_latent_out(flat.to(torch.float32))
    return flat.reshape(particles.shape[0], particles.shape[1], *flat.shape[1:])


def make_search_sampler(plan: SearchPlan, outcome: SearchOutcome | None = None):
    """The SAMPLER object (comfy.samplers.KSAMPLER) for SamplerCustom / SamplerCustomAdvanced."""
    return compat.make_ksampler(make_sampler_function(plan, outcome), {})
