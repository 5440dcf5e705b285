"""Repeated runs of one search graph: the same output every time, and no memory kept from run to run."""
import gc
import warnings

import torch

SIZE = 32


def _graph(tiny_graph, search):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
        "model": ["unet", 0], "seed": 5, "steps": 4, "cfg": 3.0, "scheduler": "normal", "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0, "vae": ["vae", 0],
        "verifier": ["ver", 0], "prompt": "a red apple", "search": search, "particles": 3, "lam": 10.0,
        "resampling_steps": 2, "delta": 1e6, "backtrack_steps": 2, "nfe_budget": 8, "score_size": 0,
        "chunk_size": 16}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 0], "key": "best"}}
    return graph


def _live_tensor_bytes() -> int:
    gc.collect()
    total = 0
    with warnings.catch_warnings():  # isinstance on some deprecated torch objects warns
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor) and not obj.is_meta:
                    total += obj.untyped_storage().nbytes()
            except Exception:  # objects that are mid-teardown
                continue
    return total


def _run(comfy, tiny_graph, search, run):
    graph = _graph(tiny_graph, search)
    graph["ks"]["inputs"]["prompt"] = "a red apple" + " " * run  # a new prompt: ComfyUI runs the node again
    comfy.run(graph)
    return comfy.captured["best"]["samples"].numpy().tobytes()  # bytes: not counted as live tensors


def test_repeated_runs_give_identical_latents_and_keep_no_memory(comfy, tiny_graph):
    outputs, memory = [], []
    for run in range(3):
        outputs.append(_run(comfy, tiny_graph, "bfs", run))
        memory.append(_live_tensor_bytes())
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    # after the first run (model loading, caches), a run leaves no more live tensors behind than the one before:
    # a run that kept even one latent's bytes would fail
    assert memory[2] <= memory[1], memory
    assert _run(comfy, tiny_graph, "dfs", 0) == _run(comfy, tiny_graph, "dfs", 1)
