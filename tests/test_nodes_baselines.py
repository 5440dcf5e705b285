"""SoP, DSearch, DSearch-R and seed pruning through the real nodes: BFS Search Sampler (SamplerCustom) and KSampler
(Search) on the tiny SD1.5 model; the NFE the trace reports is the one the sampler counted."""
import json

import pytest

from comfy_harness import add_search_sampling

SIZE = 32
BASELINES = ("sop", "dsearch", "dsearch_r", "seed_pruning")


def _verifier():
    return {"class_type": "DiffusionSearchVerifierPromptColour",
            "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}


def _bfs_node(preset, particles):
    return {"class_type": "DiffusionSearchBFSSampler", "inputs": {
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "preset": preset, "particles": particles,
        "lam": 10.0, "resampling_steps": 2, "ess_threshold": 0.0, "temperature": "constant", "scoring": "max",
        "resampling": "ssp", "score_size": 0, "chunk_size": 16}}


@pytest.mark.parametrize("preset", BASELINES)
def test_preset_runs_through_the_bfs_search_sampler(comfy, tiny_graph, preset):
    graph = tiny_graph(batch=2, size=SIZE)
    graph["ver"] = _verifier()
    add_search_sampling(graph, _bfs_node(preset, 2), seed=3, steps=8 if preset == "seed_pruning" else 4)
    comfy.events.clear()
    comfy.run(graph)
    out = comfy.captured["out"]["samples"]
    events = [data for event, data in comfy.events if event == "diffusion_search.event"]
    start, final = events[0], events[-1]
    assert out.shape == (2, 4, SIZE // 8, SIZE // 8) and bool(out.isfinite().all())
    assert start["type"] == "start" and start["config"]["preset"] == preset and final["type"] == "final"
    assert final["nfe"] == sum(final["nfe_per_item"]) > 0
    if preset == "seed_pruning":
        assert final["nfe"] == 2 * 2 * 8    # N trajectories' NFE: 2 items x N 2 x 8 steps
    steps = [e for e in events if e["type"] == "step"]
    assert steps and all(e["node"] == final["node"] for e in steps)


@pytest.mark.parametrize("preset", BASELINES)
def test_preset_runs_through_ksampler_search(comfy, tiny_graph, preset):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = _verifier()
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
        "model": ["unet", 0], "seed": 1, "steps": 4, "cfg": 3.0, "scheduler": "normal", "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0, "vae": ["vae", 0],
        "verifier": ["ver", 0], "prompt": "a red apple", "search": preset, "particles": 2, "lam": 10.0,
        "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2, "nfe_budget": 0, "score_size": 0,
        "chunk_size": 16}}
    for slot, key in enumerate(("best", "candidates", "scores", "trace")):
        graph[f"cap_{key}"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", slot],
                                                                                       "key": key}}
    comfy.run(graph)
    scores, trace = json.loads(comfy.captured["scores"]), json.loads(comfy.captured["trace"])
    rewards = scores["rewards"][0]
    assert rewards == sorted(rewards, reverse=True)
    assert comfy.captured["candidates"]["samples"].shape[0] == len(rewards)
    assert scores["nfe"] == trace["events"][-1]["nfe"] and trace["events"][0]["config"]["preset"] == preset


def test_budget_explorer_compares_the_baselines_with_bfs(comfy, tiny_graph):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = _verifier()
    graph["explore"] = {"class_type": "DiffusionSearchBudgetExplorer", "inputs": {
        "model": ["unet", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "presets": "bfs, sop, seed_pruning",
        "budgets": "2", "seed": 5, "seeds": 1, "steps": 8, "cfg": 3.0, "scheduler": "normal", "denoise": 1.0,
        "lam": 10.0, "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2, "score_size": 0, "chunk_size": 16,
        "filename_prefix": "explorer_baselines"}}
    graph["cap_runs"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["explore", 2],
                                                                                "key": "runs"}}
    comfy.run(graph)
    runs = {run["preset"]: run for run in json.loads(comfy.captured["runs"])["runs"]}
    assert set(runs) == {"bfs", "sop", "seed_pruning"}
    assert runs["seed_pruning"]["nfe_per_image"] == runs["bfs"]["nfe_per_image"] == 2 * 8   # N trajectories
    assert runs["sop"]["nfe_per_image"] > runs["bfs"]["nfe_per_image"]                      # the re-solves count
