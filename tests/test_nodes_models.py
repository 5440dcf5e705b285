"""Model families through the search nodes: v-prediction (both ComfyUI versions) and flow models (modern only).

The 2024 snapshot has no flow (CONST) model sampling at all, so the flow path runs only when COMFYUI_PATH points to a
modern ComfyUI: there `ModelSamplingSD3` turns the tiny UNet into a flow model (x = (1-σ)·x0 + σ·ε).
"""
import pytest
import torch

from comfy_harness import ComfyExecutionError, add_search_sampling, skip_unless_modern

SIZE = 32


def _graph(tiny_graph, patch, search):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["patched"] = patch
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    return add_search_sampling(graph, search, seed=3, steps=4, model="patched", scheduler="simple")


def _scoring():
    return {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "red", "score_size": 0, "chunk_size": 16}


def _bfs():
    return {"class_type": "DiffusionSearchBFSSampler", "inputs": dict(
        _scoring(), preset="fk", particles=3, lam=10.0, resampling_steps=2, ess_threshold=0.0,
        temperature="constant", scoring="max", resampling="ssp")}


def _dfs(schedule):
    return {"class_type": "DiffusionSearchDFSSampler", "inputs": dict(
        _scoring(), delta=0.0, delta_schedule=schedule, backtrack_steps=1, nfe_budget=0, max_backtracks=-1,
        check_from=1)}


def _start_event(comfy):
    return next(d for e, d in comfy.events if e == "diffusion_search.event" and d["type"] == "start")


def test_v_prediction_model_searches_in_eps_form(comfy, tiny_graph):
    patch = {"class_type": "ModelSamplingDiscrete",
             "inputs": {"model": ["unet", 0], "sampling": "v_prediction", "zsnr": False}}
    comfy.events.clear()
    comfy.run(_graph(tiny_graph, patch, _bfs()))
    assert _start_event(comfy)["noise_form"] == "eps"  # ComfyUI's wrapper turns v into x0: x = x0 + σε still
    assert torch.isfinite(comfy.captured["out"]["samples"]).all()


def _flow_patch(comfy):
    skip_unless_modern(comfy, "the 2024 snapshot has no flow (CONST) model sampling")
    return {"class_type": "ModelSamplingSD3", "inputs": {"model": ["unet", 0], "shift": 3.0}}


def test_flow_model_searches_in_flow_form(comfy, tiny_graph):
    patch = _flow_patch(comfy)
    comfy.events.clear()
    comfy.run(_graph(tiny_graph, patch, _bfs()))
    start = _start_event(comfy)
    assert start["noise_form"] == "flow" and max(start["sigmas"]) <= 1.0
    assert torch.isfinite(comfy.captured["out"]["samples"]).all()


def test_flow_model_with_epsilon_only_option_is_refused(comfy, tiny_graph):
    patch = _flow_patch(comfy)
    with pytest.raises(ComfyExecutionError, match="flow model"):
        comfy.run(_graph(tiny_graph, patch, _dfs("alpha_scaled")))
