"""Widget definitions shared by the search nodes (tooltips give the paper's ranges) and their parsing."""
from __future__ import annotations

import math

from ..search_core.config import DELTA_SCHEDULES, GRAD_MODES, RESAMPLINGS, SCORINGS, TEMPERATURES
from ..search_core.presets import BASELINES, PRESETS
from ..bridge.video import AGGREGATES, DECODERS, VideoScoring

VERIFIER_TYPE = "SEARCH_VERIFIER"
LOCAL_SEARCH_TYPE = "DIFFUSION_SEARCH_LOCAL"
SEARCH_CATEGORY = "sampling/custom_sampling/search"
CUSTOM = "custom"

# Display order: the paper's BFS first, then the baselines it subsumes, the table's other baselines, seed pruning, then
# the free design space.
PRESET_ORDER = ["bfs", "best_of_n", "fk", "das", "treeg", "svdd", "sop", "dsearch", "dsearch_r", "seed_pruning"]


def _float_specs(node_class) -> dict[str, dict]:
    """{input name: its options} for every FLOAT input of a node (required and optional)."""
    types = node_class.INPUT_TYPES()
    specs = {}
    for group in ("required", "optional"):
        for name, spec in types.get(group, {}).items():
            if spec[0] == "FLOAT":
                specs[name] = spec[1] if len(spec) > 1 else {}
    return specs


def float_problem(name: str, value, spec: dict) -> str | None:
    """Why `value` is not acceptable for FLOAT input `name` (non-finite, not a number, out of range), or None."""
    low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
    span = f"a finite number in [{low:g}, {high:g}]"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{name} must be {span}, got {value!r}"
    if not math.isfinite(number):
        return f"{name} is {number}, which the search cannot use (it would silently change the algorithm): set {span}"
    if not low <= number <= high:
        return f"{name} = {number:g} is out of range: set {span}"
    return None


def validate_floats(node_class, **values):
    """For VALIDATE_INPUTS: True, or the first problem of a FLOAT input (linked inputs arrive as None: checked when
    the node runs)."""
    specs = _float_specs(node_class)
    for name, value in values.items():
        if value is not None and name in specs:
            problem = float_problem(name, value, specs[name])
            if problem:
                return problem
    return True


def check_floats(node_class, **values) -> None:
    """At execution: raise ValueError naming the FLOAT input that is not finite or out of its range."""
    verdict = validate_floats(node_class, **values)
    if verdict is not True:
        raise ValueError(verdict)


def preset_choices() -> list[str]:
    known = {**PRESETS, **BASELINES}
    return [name for name in PRESET_ORDER if name in known] + \
           [name for name in known if name not in PRESET_ORDER] + [CUSTOM]


def sampling_inputs(scheduler_names: list[str]) -> dict:
    """KSampler's own inputs (model, conditioning, latent, steps, cfg, scheduler, denoise), with tooltips."""
    return {
        "model": ("MODEL", {"tooltip": "The diffusion model (SD1.5, SDXL, SD3, FLUX, ...) to search with."}),
        "positive": ("CONDITIONING", {"tooltip": "The conditioning to follow (CLIP Text Encode)."}),
        "negative": ("CONDITIONING", {"tooltip": "The conditioning to avoid (ignored at cfg 1)."}),
        "latent_image": ("LATENT", {"tooltip": "Where to start: Empty Latent Image (widened to the model's channels, "
                                               "e.g. 16 for SD3 / FLUX) or VAE Encode with denoise < 1."}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000, "tooltip":
                          "Denoising steps, as in KSampler; every particle takes each step (cost ~ particles x "
                          "steps)."}),
        "cfg": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01, "tooltip":
                          "Classifier-free guidance scale, as in KSampler (FLUX: 1.0, with a FluxGuidance node)."}),
        "scheduler": (scheduler_names, {"tooltip": "How the noise levels are spaced, as in KSampler."}),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip":
                              "How much of the input latent to re-noise, as in KSampler (1.0 = from noise)."}),
    }


def scoring_inputs() -> dict:
    """vae, guide verifier, prompt: what the scoring path latent -> image -> reward needs."""
    return {
        "vae": ("VAE", {"tooltip": "Decodes x0 predictions for the verifier. A TAESD VAE (VAELoader 'taesd') makes "
                                   "intermediate scoring ~6x cheaper than the full VAE."}),
        "verifier": (VERIFIER_TYPE, {"tooltip": "Guide verifier: scores particles during the search (and gives "
                                                "local search its gradient)."}),
        "prompt": ("STRING", {"default": "", "multiline": True,
                              "tooltip": "The prompt text the verifier compares against (ImageReward, CLIP, ...)."}),
    }


def scoring_options() -> dict:
    return {
        "score_size": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 8,
                               "tooltip": "Decode for scoring at this longest side (0 = full size). Verifiers "
                                          "look at 224 px, so 256-512 loses little and decodes faster."}),
        "chunk_size": ("INT", {"default": 8, "min": 1, "max": 256,
                               "tooltip": "Particles decoded and scored per batch; lower it when memory is short."}),
    }


def optional_scoring_inputs() -> dict:
    return {
        "select_verifier": (VERIFIER_TYPE, {"tooltip": "Dual verifiers (paper Sec. 4): a second verifier that "
                                                       "selects/resamples, so the guide verifier cannot be "
                                                       "over-optimised. Empty: the guide verifier selects too."}),
        **video_inputs(),
    }


def video_inputs() -> dict:
    """How video latents (Wan, ...) are scored; ignored for images. Optional widgets, after every other widget."""
    return {
        "video_frames": ("INT", {"default": 4, "min": 0, "max": 1024, "tooltip":
                         "Video only: latent frames scored per particle, evenly spaced (first and last included); "
                         "each is decoded on its own (cheap; exact for the first frame). 0 = decode the whole "
                         "video (every frame, exact, slowest)."}),
        "video_aggregate": (list(AGGREGATES), {"default": "mean", "tooltip":
                            "Video only: a particle's reward from its frame rewards. mean = average frame; min = "
                            "the worst frame (penalises videos with one bad frame)."}),
        "temporal_weight": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.01, "tooltip":
                            "Video only: adds weight x temporal consistency (minus the mean absolute change "
                            "between consecutive scored frames, pixels in 0..1) to the reward; 0 = off. Too "
                            "large favours still videos."}),
        "video_decoder": (list(DECODERS), {"default": "vae", "tooltip":
                          "Video only: vae = the connected VAE decodes the scored frames; preview = ComfyUI's "
                          "linear latent-to-RGB preview colours (no VAE call, much cheaper, coarse)."}),
    }


def video_scoring(video_frames=4, video_aggregate="mean", temporal_weight=0.0, video_decoder="vae") -> VideoScoring:
    """The VideoScoring of the optional video widgets (defaults when a workflow predates them)."""
    return VideoScoring(frames=int(video_frames), aggregate=video_aggregate, temporal_weight=float(temporal_weight),
                        decoder=video_decoder).validate()


def bfs_inputs() -> dict:
    return {
        "preset": (preset_choices(), {"default": "bfs", "tooltip":
                   "bfs = the paper's BFS (λ(exp(γt)−1) ramp, max, SSP; at the end resampled when ESS < 0.5·N, then "
                   "the best); best_of_n; fk = FK-steering (constant λ, max floored at 0, multinomial; a final "
                   "corrected resampling draws from p·exp(λr)); das = DAS w/o gradient (tempered λ_t·r_t − λ_s·r_s "
                   "every step, SSP when ESS < 0.5·N, final draw by weight); treeg (best half at every step); svdd "
                   "(greedy every step); sop = Search over Paths (N = particles, M 8 copies per survivor, start "
                   "at flow time 0.8, re-noise Δf 0.1 up, solve Δb 0.2 down, keep the top N; ~13x the NFE of N "
                   "trajectories); dsearch = DSearch (beam 5N shrinking to N exponentially, 5 children per member "
                   "per step, 25+ at search steps: ~80x the NFE; source ranges: duplicate 5-20, oversample 1-5); "
                   "dsearch_r = DSearch-R (width N, the worst 3 % (at least one) replaced by a draw ∝ exp(λ·r); "
                   "source 1-5 %; ~20x); seed_pruning = progressive seed pruning (2N seeds, deterministic steps, "
                   "pruned to N at 25 % and N/2 at 50 %: the NFE of N trajectories); custom = the three axes below. "
                   "Resampling needs a stochastic step: the BFS presets step with eta = 1 (ancestral); with eta = 0 "
                   "resampled copies never diverge."}),
        "particles": ("INT", {"default": 4, "min": 1, "max": 256,
                              "tooltip": "N particles per latent (paper: 2, 4, 8). 1 = the plain sampler. Raising it "
                                         "and queueing again extends the last search of the same inputs: only the "
                                         "new particles run (Best-of-N: the same result as one run of the new N; "
                                         "other presets: a further population, the better pick is kept)."}),
        "lam": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 1000.0, "step": 0.5,
                          "tooltip": "λ, inverse temperature: weights ∝ exp(λ_t·score) (paper: 10 for ImageReward). "
                                     "TreeG and SVDD rank, so λ does not change them."}),
        "resampling_steps": ("INT", {"default": 4, "min": 0, "max": 1000, "tooltip":
                                     "How many evenly spaced resampling points (paper: 4, at steps 20/40/60/80 of "
                                     "100). Ignored by das, treeg and svdd (every step)."}),
        "ess_threshold": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                                    "Resample an item only when ESS < threshold·N and carry its weights otherwise "
                                    "(adaptive SMC; paper and DAS: 0.5). 0 = the preset's own (das: 0.5; the "
                                    "others and custom: always resample)."}),
        "temperature": (list(TEMPERATURES), {"default": "increase_paper", "tooltip":
                        "custom only. constant; increase_paper λ(exp(γt)−1) (the paper's BFS: 0.17/0.38/0.61/0.89 λ "
                        "at 20/40/60/80 %); increase_exp λ·min(1, (1+γ)^t−1) (DAS); increase_linear λ·2t/T (paper "
                        "code); inf = greedy."}),
        "scoring": (list(SCORINGS), {"default": "max", "tooltip":
                    "custom only. current r_t; difference λ_t·r_t − λ_s·r_s (tempered increments: the weights "
                    "telescope to exp(λ·r)); max over the path (paper's best)."}),
        "resampling": (list(RESAMPLINGS), {"default": "ssp", "tooltip":
                       "custom only. ssp (Srinivasan sampling; the paper's key gain), multinomial, systematic, "
                       "stratified, residual, top_half, greedy, none."}),
    }


def bfs_config(preset, lam, resampling_steps, ess_threshold, temperature, scoring, resampling):
    """BFSConfig from widgets: a preset with λ / resampling count / ESS overridden, or the custom axes."""
    from ..search_core.config import BFSConfig
    overrides = dict(lam=float(lam), num_resamples=int(resampling_steps))
    if ess_threshold > 0 or preset == CUSTOM:  # 0 keeps a preset's own (DAS checks the ESS at every step)
        overrides["ess_threshold"] = float(ess_threshold) if ess_threshold > 0 else None
    if preset == CUSTOM:
        return BFSConfig(name=CUSTOM, temperature=temperature, scoring=scoring, resampling=resampling,
                         **overrides).validate()
    if preset in BASELINES:   # λ weights only DSearch-R's replacement draw; the other widgets do not apply
        return BASELINES[preset].replace(lam=float(lam)) if hasattr(BASELINES[preset], "lam") else BASELINES[preset]
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: use one of {preset_choices()}")
    return PRESETS[preset].replace(**overrides)


def dfs_inputs() -> dict:
    return {
        "delta": ("FLOAT", {"default": 0.0, "min": -1e6, "max": 1e6, "step": 0.01, "tooltip":
                            "δ: backtrack when the particle's score falls below δ_t. Higher = more backtracking, "
                            "more compute, better samples (set it near the verifier's typical good score)."}),
        "delta_schedule": (list(DELTA_SCHEDULES), {"default": "constant", "tooltip":
                           "constant δ_t = δ; alpha_scaled δ_t = δ/ᾱ_t (reference code; epsilon models only)."}),
        "backtrack_steps": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip":
                                    "ΔT: re-noise this many steps up when backtracking; 0 = a quarter of the steps "
                                    "(the best setting on the exact testbed; paper: 12-14 of 16)."}),
        "nfe_budget": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip":
                               "Denoiser evaluations per latent (0 = two dives), local search's recurrences "
                               "included. At least one full dive (less is an error): every dive started completes, "
                               "so DFS backtracks only while the budget left can still finish the dive. Raising "
                               "it and queueing again resumes the latents that ran out of budget (the result of "
                               "one run with the new budget, or the earlier sample when that was better)."}),
        "max_backtracks": ("INT", {"default": -1, "min": -1, "max": 10000, "tooltip": "-1 = no cap."}),
        "check_from": ("INT", {"default": -1, "min": -1, "max": 10000,
                               "tooltip": "First step (0-based) whose score is checked against δ_t; -1 = half the "
                                          "steps. Early x0 predictions are blurry: a constant δ checked early fails "
                                          "good particles too and spends the budget on restarts. The last step (the "
                                          "complete sample) is always checked, also when check_from is beyond it."}),
    }


def dfs_config(delta, delta_schedule, backtrack_steps, nfe_budget, max_backtracks, check_from):
    from ..search_core.config import DFSConfig
    return DFSConfig(delta=float(delta), delta_schedule=delta_schedule, backtrack_steps=int(backtrack_steps) or None,
                     nfe_budget=int(nfe_budget) or None, max_backtracks=None if max_backtracks < 0 else
                     int(max_backtracks), check_from=None if check_from < 0 else int(check_from)).validate()


def local_inputs() -> dict:
    return {
        "gradient_mode": (list(GRAD_MODES), {"default": "x0", "tooltip":
                          "x0: gradient of the reward at the x0 prediction (cheap). denoiser: gradient through "
                          "the model too (SD1.5, SDXL, SD3, FLUX; both ComfyUI versions); a backward pass costs ~2 "
                          "more NFE and holds the model's activations, so it needs far more memory than x0."}),
        "langevin_steps": ("INT", {"default": 1, "min": 1, "max": 100, "tooltip":
                                   "Gradient iterations per guided step (paper ImageNet: 4)."}),
        "recur_steps": ("INT", {"default": 1, "min": 0, "max": 100, "tooltip":
                                "Recurrences: re-noise and repeat the guided step (paper: 1). Each costs 1 NFE."}),
        "mu": ("FLOAT", {"default": 0.4, "min": 0.0, "max": 100.0, "step": 0.01,
                         "tooltip": "μ, x0-space step size (paper ImageNet: 0.4)."}),
        "rho": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 100.0, "step": 0.01,
                          "tooltip": "ρ, step size through the denoiser (paper ImageNet: 0.2)."}),
        "start_step": ("INT", {"default": 0, "min": 0, "max": 10000,
                               "tooltip": "First denoising step with local search."}),
        "grad_clip": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.1,
                                "tooltip": "Per-particle gradient-norm clip; 0 = none."}),
    }


def local_options() -> dict:
    """Optional (older workflows lack them; the defaults apply)."""
    return {"report_gain": ("BOOLEAN", {"default": True, "tooltip":
                            "Score every guided x0 once more so the search view shows what each Langevin step "
                            "gained. Off: one verifier pass less per guided step (about a quarter of local "
                            "search's time when decoding dominates); the search itself is unchanged."})}


def local_config(gradient_mode, langevin_steps, recur_steps, mu, rho, start_step, grad_clip, report_gain=True):
    from ..search_core.config import LangevinConfig
    return LangevinConfig(grad_mode=gradient_mode, steps=int(langevin_steps), recur_steps=int(recur_steps),
                          mu=float(mu), rho=float(rho), start_step=int(start_step),
                          grad_clip=float(grad_clip) if grad_clip > 0 else None,
                          report_gain=bool(report_gain)).validate()
