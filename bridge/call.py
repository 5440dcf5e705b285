"""The bridge between a search node and search_core: ``bind`` a plan to the sampler's inputs, ``run`` the call.

``bind(plan, model, latents, sigmas, extra_args)`` is pure: it reads its inputs and builds a ``SearchCall`` (the
search_core function and its arguments, the score / select / guide functions, the memory policy, the state key)
without calling ComfyUI; what it needs of the running ComfyUI comes from a ``Host`` (``COMFYUI`` by default, plain
functions in tests). ``run(call)`` runs it, extending a kept search of the same key when only the budget grew, and
returns a ``SearchOutcome``.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import torch

from . import compat, kept
from . import search_state as states
from .events import EventForwarder
from .inpaint import per_row_inpainting
from .latents import check_search_inputs
from .memory import DenoiserRowPolicy, ScoringResidency, cfg_copies, unet_patcher_of
from .plan import SearchPlan
from .scoring import LatentScorer
from .state_key import safe_key

log = logging.getLogger(__name__)

# The particle noise must not repeat the noise ComfyUI drew from the same seed (prepare_noise uses the seed itself).
PARTICLE_SEED_OFFSET = 0x5EA2C4


def comfyui_scorers(spec, base_model, device, rows_policy, unet_patcher):
    """(guide, select | None) LatentScorers: decode with the VAE, score with the verifiers; the VAE and verifiers on
    the device only to score (memory.ScoringResidency)."""
    residency = ScoringResidency(spec.vae, (spec.guide_verifier, spec.select_verifier), device, rows_policy,
                                 unet_patcher)

    def scorer(verifier):
        return LatentScorer(base_model, spec.vae, verifier, spec.prompt, score_size=spec.score_size,
                            chunk_size=spec.chunk_size, residency=residency, video=spec.video)
    return scorer(spec.guide_verifier), None if spec.select_verifier is None else scorer(spec.select_verifier)


@dataclasses.dataclass(frozen=True)
class Host:
    """What a search asks of the ComfyUI it runs in. ``COMFYUI`` is the real one; tests give plain functions."""

    noise_form: Callable = compat.noise_form_of                # base_model -> "eps" | "flow"
    unet_patcher: Callable = unet_patcher_of                   # base_model -> its loaded ModelPatcher | None
    free_memory: Callable = compat.free_memory_for_batch       # (base_model, device) -> bytes
    scorers: Callable = comfyui_scorers                        # (spec, base_model, device, rows, patcher) -> 2 scorers
    differentiable: Callable = compat.differentiable_denoiser  # (denoiser, base_model) -> one autograd passes
    check_interrupted: Callable = compat.check_interrupted
    prompt_id: Callable = compat.current_prompt_id
    send_event: Callable = compat.send_event
    send_text: Callable = compat.send_progress_text
    state_folder: Callable | None = compat.state_folder        # () -> folder of kept states; None: memory only


COMFYUI = Host()


@dataclasses.dataclass(frozen=True)
class SearchCall:
    """Everything one search needs: the search_core sampler and its arguments, ready to ``run``."""

    plan: SearchPlan
    search_fn: Callable            # sample_bfs / sample_dfs / sample_local
    model: Callable                # the denoiser (per-row inpainting; differentiable for gradient_mode 'denoiser')
    x: torch.Tensor
    sigmas: torch.Tensor
    extra_args: dict
    callback: Callable             # per step: Cancel checked, then ComfyUI's previews
    disable: Any
    kwargs: dict                   # the sampler's keywords: score/select/guide_fn, generator, noise_form, max_batch
    seed: int                      # the particle streams' seed (search_core/streams.py)
    budget: int                    # particles (BFS, local search) or NFE per latent (DFS)
    exact: bool                    # whether extending gives exactly one run of the larger budget
    key: str | None                # the state key (state_key.py); None: not kept, never extended
    base_model: Any
    noise_form: str
    rows_policy: DenoiserRowPolicy  # the memory policy: particle rows per denoiser call
    scorers: tuple                 # (guide, select | None): their evaluations and seconds go in every event
    run_info: dict                 # the start event's extra keys: verifier names, seed
    host: Host = COMFYUI


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    """What a search returns: its samples, its Trace and the candidates in ComfyUI's output latent space."""

    samples: torch.Tensor
    trace: Any                     # search_core.trace.Trace: the events and the result fields
    candidates: torch.Tensor | None   # [B, N, C, h, w] after inverse_noise_scaling and process_latent_out
    noise_form: str
    rows_per_call: int             # the most particle rows one denoiser call was given (memory policy)
    extends: dict | None = None    # {from_budget, budget, exact} when a kept search was extended


def bind(plan: SearchPlan, model, latents: torch.Tensor, sigmas: torch.Tensor, extra_args: dict | None = None,
         callback=None, disable=None, *, host: Host = COMFYUI) -> SearchCall:
    """The SearchCall of ``plan`` on a KSAMPLER's inputs (``model`` is ComfyUI's wrapped denoiser, ``latents`` the
    noised start); validates them (errors name the fix), calls nothing."""
    plan.validate()
    base_model = compat.base_model_of(model)
    check_search_inputs(base_model, latents, plan.scoring.vae)
    noise_form = host.noise_form(base_model)
    if noise_form == "flow" and plan.reject_flow:
        raise ValueError("this model is a flow model (SD3 / FLUX: x = (1-σ)·x0 + σ·ε), but the search was set up "
                         "with an epsilon-only option (DFS δ schedule 'alpha_scaled'); use the 'constant' δ schedule")
    spec = plan.scoring
    rows_policy = DenoiserRowPolicy(base_model, latents.device, cfg_copies(model, extra_args),
                                    free_memory=lambda device: host.free_memory(base_model, device))
    patcher = host.unet_patcher(base_model)
    guide, select = host.scorers(spec, base_model, latents.device, rows_policy, patcher)
    seed = int((extra_args or {}).get("seed") or 0)
    # A CPU generator: the same seed gives the same search on every device, like ComfyUI's own noise. Particle noise
    # comes from per-particle streams (search_core/streams.py, made by the extend strategy); this one is their
    # population generator (resampling).
    generator = torch.Generator(device="cpu").manual_seed((seed + PARTICLE_SEED_OFFSET) % (2 ** 63))
    kwargs = dict(score_fn=guide.score, generator=generator, noise_form=noise_form, max_batch=rows_policy,
                  **plan.search_kwargs())
    if select is not None:
        kwargs["select_fn"] = select.score
    if plan.local is not None:
        # forward + backward through the decoder: chunk_size rows at a time (memory, and cache locality on CPU)
        from ..search_core.chunking import RowLimited
        kwargs["guide_fn"] = RowLimited(guide.score_with_grad, spec.chunk_size)
    start = getattr(model, "latent_image", None)  # img2img: fresh particles noise the input latent, not zeros
    if isinstance(start, torch.Tensor) and start.shape == latents.shape and torch.count_nonzero(start) > 0:
        kwargs["start_x0"] = start
    # Inpainting: the mask, input latent and noise follow each particle row's item (inpaint.py).
    denoiser, extra_args = per_row_inpainting(model, extra_args or {}, latents.shape[0])
    if plan.local is not None and plan.local.grad_mode == "denoiser":
        denoiser = host.differentiable(denoiser, base_model)
    key = None
    if plan.reuse and states.reuse_enabled():
        key = safe_key(plan, model, base_model, patcher, latents, sigmas, extra_args, seed, noise_form)

    def step_callback(info):
        host.check_interrupted()
        if callback is not None:
            callback(info)

    return SearchCall(plan=plan, search_fn=plan.search_function(), model=denoiser, x=latents, sigmas=sigmas,
                      extra_args=extra_args, callback=step_callback, disable=disable, kwargs=kwargs, seed=seed,
                      budget=plan.budget(sigmas.numel() - 1), exact=plan.extends_exactly(), key=key,
                      base_model=base_model, noise_form=noise_form, rows_policy=rows_policy, scorers=(guide, select),
                      run_info=_run_info(spec, seed), host=host)


def run(call: SearchCall) -> SearchOutcome:
    """Run the search of ``call``; with a kept state of its key and a smaller budget, extend that one instead
    (search_core.extend.STRATEGIES), then keep this one."""
    from ..search_core.evaluation import DenoiserGradientError
    from ..search_core.extend import STRATEGIES, Earlier
    from ..search_core.trace import Trace
    algorithm, host = call.plan.algorithm, call.host
    folder = None if host.state_folder is None else host.state_folder()
    previous = None if call.key is None else kept.find(call.key, algorithm, call.budget, tuple(call.x.shape),
                                                        call.sigmas.numel() - 1, call.exact, folder)
    extends = None
    if previous is not None:
        extends = {"from_budget": previous.budget, "budget": call.budget, "exact": call.exact}
        log.info("extending the %s search %s from budget %d to %d (%s)", algorithm, call.key[:12], previous.budget,
                 call.budget, "exact" if call.exact else "a further population")
    forwarder = EventForwarder(call.plan.node_id, scorers=call.scorers, node_type=call.plan.node_type,
                               run_info={**call.run_info, **({"extends": extends} if extends else {})},
                               send=host.send_event, check_interrupt=host.check_interrupted,
                               send_text=host.send_text, prompt_id=host.prompt_id())
    trace = Trace(on_event=forwarder)
    try:
        samples = STRATEGIES[algorithm](
            call.search_fn, call.model, call.x, call.sigmas, call.extra_args, call.callback, call.disable,
            seed=call.seed, budget=call.budget, exact=call.exact, trace=trace,
            earlier=None if previous is None else Earlier(previous.budget, previous.tensors), **call.kwargs)
    except DenoiserGradientError as error:
        raise ValueError(f"Local Search Settings: gradient_mode 'denoiser' could not backpropagate through this "
                         f"model ({error}); set gradient_mode to 'x0', which works with every model") from error
    if call.key is not None:
        kept.keep(call.key, algorithm, call.budget, trace, None if previous is None else previous.budget, folder)
    return SearchOutcome(samples=samples, trace=trace, noise_form=call.noise_form,
                         candidates=_output_space(call.base_model, call.sigmas, trace.particles),
                         rows_per_call=call.rows_policy.largest, extends=extends)


def _run_info(spec, seed: int) -> dict:
    """The start event's extra keys: which verifiers guided and selected, and the sampling seed."""
    def name(verifier):
        return None if verifier is None else str(getattr(verifier, "name", type(verifier).__name__))
    return {"verifiers": {"guide": name(spec.guide_verifier), "select": name(spec.select_verifier)}, "seed": seed}


def _output_space(base_model, sigmas, particles):
    """Map final particles [B, N, ...] the way ComfyUI maps a sampler's return value (noise scaling, latent format)."""
    if particles is None:
        return None
    flat = particles.reshape(-1, *particles.shape[2:])
    flat = base_model.model_sampling.inverse_noise_scaling(sigmas[-1], flat)
    flat = base_model.process_latent_out(flat.to(torch.float32))
    return flat.reshape(particles.shape[0], particles.shape[1], *flat.shape[1:])
