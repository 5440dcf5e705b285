"""The all-in-one search KSampler node in the real ComfyUI: outputs, ranking, trace, bad input, flow models."""
import json

import pytest
import torch

from comfy_harness import ComfyExecutionError, add_search_sampling

SIZE = 32


def _ksampler_graph(tiny_graph, search="bfs", batch=2, particles=3, seed=0, latent=("latent", 0), **extra):
    graph = tiny_graph(batch=batch, size=SIZE)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    inputs = {"model": ["unet", 0], "seed": seed, "steps": 5, "cfg": 3.0, "scheduler": "normal",
              "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": list(latent), "denoise": 1.0,
              "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "search": search,
              "particles": particles, "lam": 10.0, "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2,
              "nfe_budget": 0, "score_size": 0, "chunk_size": 16}
    inputs.update(extra)
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": inputs}
    for slot, key in enumerate(("best", "candidates", "scores", "trace")):
        graph[f"cap_{key}"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", slot], "key": key}}
    return graph


def test_ksampler_outputs_best_ranked_candidates_scores_and_trace(comfy, tiny_graph):
    comfy.run(_ksampler_graph(tiny_graph))
    best, candidates = comfy.captured["best"]["samples"], comfy.captured["candidates"]["samples"]
    scores, trace = json.loads(comfy.captured["scores"]), json.loads(comfy.captured["trace"])
    assert best.shape == (2, 4, SIZE // 8, SIZE // 8) and candidates.shape == (6, 4, SIZE // 8, SIZE // 8)
    for item, rewards in enumerate(scores["rewards"]):
        assert rewards == sorted(rewards, reverse=True)
        # the best latent is the first candidate of its item (both in ComfyUI's output latent space)
        assert torch.allclose(best[item], candidates[item * 3], atol=1e-5)
    assert trace["version"] == 1 and trace["events"][0]["type"] == "start" and trace["events"][-1]["type"] == "final"
    assert scores["nfe"] == trace["events"][-1]["nfe"] == 2 * 3 * 5


def test_ksampler_matches_sampler_custom_with_the_same_seed(comfy, tiny_graph):
    """The all-in-one node is SamplerCustom + the BFS sampler: same seed and settings, same latent."""
    comfy.run(_ksampler_graph(tiny_graph, seed=11))
    all_in_one = comfy.captured["best"]["samples"].clone()
    graph = tiny_graph(batch=2, size=SIZE)
    graph["ver"] = _ksampler_graph(tiny_graph)["ver"]
    add_search_sampling(graph, {"class_type": "DiffusionSearchBFSSampler", "inputs": {
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "preset": "bfs", "particles": 3,
        "lam": 10.0, "resampling_steps": 2, "ess_threshold": 0.0, "temperature": "constant", "scoring": "max",
        "resampling": "ssp", "score_size": 0, "chunk_size": 16}}, seed=11, steps=5)
    comfy.run(graph)
    assert torch.allclose(all_in_one, comfy.captured["out"]["samples"], atol=1e-5)


def test_ksampler_dfs_and_progress(comfy, tiny_graph):
    comfy.progress.clear()
    comfy.run(_ksampler_graph(tiny_graph, search="dfs", batch=1, delta=1e6, nfe_budget=8))
    trace = json.loads(comfy.captured["trace"])
    assert any(e["type"] == "backtrack" for e in trace["events"])
    assert comfy.captured["candidates"]["samples"].shape[0] >= 1
    assert comfy.progress, "the node must report progress to ComfyUI's progress bar"


def test_ksampler_rejects_a_non_latent(comfy, tiny_graph):
    graph = _ksampler_graph(tiny_graph, latent=("pos", 0))
    with pytest.raises(ComfyExecutionError, match="LATENT|latent"):
        comfy.run(graph)

