"""Every search on tiny random-weight SDXL, SD3 and FLUX models, loaded by ComfyUI's own loaders (64 px, 2-3 steps).

SDXL runs in both ComfyUI versions; SD3 and FLUX exist only in modern ComfyUI. Each family takes the standard
4-channel Empty Latent Image, as users wire it: SD3 and FLUX latents have 16 channels, so the search nodes must widen
an empty latent like ComfyUI's own samplers do.
"""
import importlib
import json

import pytest
import torch

from devtools.tiny_families import FAMILY_LATENT_CHANNELS
from comfy_harness import skip_unless_modern

SIZE = 64
STEPS = 3
# cfg as each family is used: FLUX dev is guidance-distilled (cfg 1 skips the negative pass).
CFG = {"sdxl": 3.0, "sd3": 3.0, "flux": 1.0}
NOISE_FORM = {"sdxl": "eps", "sd3": "flow", "flux": "flow"}
FAMILIES = ["sdxl", "sd3", "flux"]


@pytest.fixture(params=FAMILIES)
def family(request, comfy, family_models):
    name = request.param
    if name != "sdxl":
        skip_unless_modern(comfy, f"the 2024 snapshot has no {name.upper()} model code")
    return name, family_models(name)


def _base(family_name, names, seed=0):
    return {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": names["unet"], "weight_dtype": "default"}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": names["vae"]}},
        "pos": {"class_type": "DiffusionSearchTestConditioning",
                "inputs": {"seed": seed, "text": "a red apple", "family": family_name}},
        "neg": {"class_type": "DiffusionSearchTestConditioning",
                "inputs": {"seed": seed + 1, "text": "", "family": family_name}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1}},
        "ver": {"class_type": "DiffusionSearchVerifierPromptColour",
                "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}},
    }


def _scoring():
    return {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "red", "score_size": 0, "chunk_size": 16}


def _local_settings(mode="x0"):
    return {"class_type": "DiffusionSearchLocalSearchSettings",
            "inputs": {"gradient_mode": mode, "langevin_steps": 1, "recur_steps": 1, "mu": 0.5, "rho": 0.2,
                       "start_step": 0, "grad_clip": 0.0}}


SAMPLER_NODES = {
    "bfs": lambda: {"class_type": "DiffusionSearchBFSSampler", "inputs": dict(
        _scoring(), preset="bfs", particles=2, lam=10.0, resampling_steps=1, ess_threshold=0.0,
        temperature="constant", scoring="max", resampling="ssp")},
    "dfs": lambda: {"class_type": "DiffusionSearchDFSSampler", "inputs": dict(
        _scoring(), delta=1e6, delta_schedule="constant", backtrack_steps=1, nfe_budget=2 * STEPS,
        max_backtracks=-1, check_from=1)},
    "local": lambda: {"class_type": "DiffusionSearchLocalSampler",
                      "inputs": dict(_scoring(), local_search=["settings", 0], particles=1)},
}


def sampler_custom_graph(family_name, names, algorithm, mode="x0"):
    graph = _base(family_name, names)
    graph["search"] = SAMPLER_NODES[algorithm]()
    graph["settings"] = _local_settings(mode)
    graph["sched"] = {"class_type": "BasicScheduler",
                      "inputs": {"model": ["unet", 0], "scheduler": "simple", "steps": STEPS, "denoise": 1.0}}
    graph["sc"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["unet", 0], "add_noise": True, "noise_seed": 5, "cfg": CFG[family_name], "positive": ["pos", 0],
        "negative": ["neg", 0], "sampler": ["search", 0], "sigmas": ["sched", 0], "latent_image": ["latent", 0]}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["sc", 0], "key": "out"}}
    return graph


def ksampler_graph(family_name, names, algorithm, mode="x0"):
    graph = _base(family_name, names)
    graph["settings"] = _local_settings(mode)
    search = {"bfs": "bfs", "dfs": "dfs", "local": "best_of_n"}[algorithm]
    inputs = dict(_scoring(), model=["unet", 0], seed=5, steps=STEPS, cfg=CFG[family_name], scheduler="simple",
                  positive=["pos", 0], negative=["neg", 0], latent_image=["latent", 0], denoise=1.0, search=search,
                  particles=1 if algorithm == "local" else 2, lam=10.0, resampling_steps=1, delta=1e6,
                  backtrack_steps=1, nfe_budget=2 * STEPS)
    if algorithm == "local":
        inputs["local_search"] = ["settings", 0]
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": inputs}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 0], "key": "out"}}
    graph["cap_trace"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 3], "key": "trace"}}
    return graph


def _events(comfy):
    return [data for event, data in comfy.events if event == "diffusion_search.event"]


def _check_search(comfy, family_name, algorithm):
    events = _events(comfy)
    start, final = events[0], events[-1]
    assert start["type"] == "start" and final["type"] == "final"
    assert start["noise_form"] == NOISE_FORM[family_name]
    out = comfy.captured["out"]["samples"]
    assert tuple(out.shape) == (1, FAMILY_LATENT_CHANNELS[family_name], SIZE // 8, SIZE // 8)
    assert torch.isfinite(out).all()
    if algorithm == "dfs":   # δ = 1e6 is never reached: DFS must backtrack within its budget
        assert any(e["type"] == "backtrack" for e in events)
    if algorithm == "local":
        assert any(e["type"] == "local" for e in events) and final["grad_evals"] > 0
    if algorithm == "bfs":
        assert start["n_particles"] == 2 and len(final["rewards"][0]) == 2
    return events


@pytest.mark.parametrize("algorithm", ["bfs", "dfs", "local"])
def test_search_through_sampler_custom(comfy, family, algorithm):
    family_name, names = family
    comfy.events.clear()
    comfy.run(sampler_custom_graph(family_name, names, algorithm))
    _check_search(comfy, family_name, algorithm)


@pytest.mark.parametrize("algorithm", ["bfs", "dfs", "local"])
def test_search_through_ksampler_search(comfy, family, algorithm):
    """KSampler (Search) widens the 4-channel empty latent for 16-channel families, as KSampler does."""
    family_name, names = family
    comfy.events.clear()
    comfy.run(ksampler_graph(family_name, names, algorithm))
    _check_search(comfy, family_name, algorithm)
    assert json.loads(comfy.captured["trace"])["events"][-1]["type"] == "final"


def _finite_difference_check(comfy, results):
    """A sampler function that compares d <D(x), v> / d x through the pack's differentiable denoiser with a central
    finite difference, where ComfyUI hands a sampler its wrapped model (CFG, conditioning and all)."""
    compat = importlib.import_module(f"{comfy.pack.__name__}.bridge.compat")

    def check(model, x, sigmas, extra_args=None, callback=None, disable=None, **_):
        extra_args = extra_args or {}
        denoise = compat.differentiable_denoiser(model, compat.base_model_of(model))
        g = torch.Generator().manual_seed(0)
        with torch.inference_mode(False):
            x = x.clone()
            sigma = sigmas[1].clone().expand(x.shape[0])   # a mid-schedule noise level
            v, u = (torch.randn(x.shape, generator=g).to(x) for _ in range(2))
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                value = (denoise(xg, sigma, **extra_args) * v).sum()
                (grad,) = torch.autograd.grad(value, xg)
            eps = 1e-2 * float(x.std())
            with torch.no_grad():
                plus = (denoise(x + eps * u, sigma, **extra_args) * v).sum()
                minus = (denoise(x - eps * u, sigma, **extra_args) * v).sum()
        results["analytic"] = float((grad * u).sum())
        results["numeric"] = float((plus - minus) / (2 * eps))
        return x

    return check


def test_gradient_through_the_denoiser_matches_finite_differences(comfy, family):
    """gradient_mode 'denoiser' backpropagates through the real model, in-place adds (FLUX, MMDiT) included."""
    family_name, names = family
    results = {}
    key = f"finite-difference-{family_name}"   # ComfyUI caches node outputs by their inputs: one key per family
    comfy.test_nodes.SAMPLER_FUNCTIONS[key] = _finite_difference_check(comfy, results)
    graph = sampler_custom_graph(family_name, names, "bfs")
    graph["search"] = {"class_type": "DiffusionSearchTestSampler", "inputs": {"key": key}}
    comfy.run(graph)
    analytic, numeric = results["analytic"], results["numeric"]
    assert analytic != 0.0
    assert abs(analytic - numeric) <= 0.03 * abs(numeric) + 1e-4, results


def test_local_search_with_denoiser_gradients(comfy, family):
    """KSampler (Search) with local search in gradient_mode 'denoiser' runs, and its guidance changes the result."""
    family_name, names = family
    outputs = {}
    for mode in ("x0", "denoiser"):
        comfy.events.clear()
        comfy.run(ksampler_graph(family_name, names, "local", mode=mode))
        _check_search(comfy, family_name, "local")
        outputs[mode] = comfy.captured["out"]["samples"].clone()
    assert not torch.allclose(outputs["x0"], outputs["denoiser"])
