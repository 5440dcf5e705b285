"""Memory policy inside real ComfyUI: rows per denoiser call from free memory, and a big batch under a small budget."""
import importlib
import sys

import pytest
import torch

from test_nodes_search import _bfs, _custom_graph


def _memory(comfy):
    return sys.modules[f"{comfy.pack.__name__}.bridge.memory"]


@pytest.fixture(scope="module")
def tiny_base_model(comfy, tiny_models):
    loader = comfy.node_classes["UNETLoader"]
    extra = {"weight_dtype": "default"} if "weight_dtype" in loader.INPUT_TYPES()["required"] else {}
    with torch.inference_mode():
        return loader().load_unet(tiny_models["unet"], **extra)[0].model


def test_rows_fit_the_budget_by_comfyuis_own_estimate(comfy, tiny_base_model):
    memory = _memory(comfy)
    row_shape = (4, 4, 4)
    fixed, per_row = memory._linear_estimate(tiny_base_model, row_shape)
    # the estimate is ComfyUI's memory_required, affine in the batch
    assert tiny_base_model.memory_required([5, *row_shape]) == pytest.approx(fixed + 5 * per_row)
    for budget_rows, copies in ((1, 2), (37, 2), (37, 1), (500, 2)):
        budget = fixed + per_row * copies * budget_rows + per_row / 2
        policy = memory.DenoiserRowPolicy(tiny_base_model, torch.device("cuda"), copies=copies,
                                          free_memory=lambda dev, b=budget: b * memory.GPU_MARGIN)
        rows = policy(torch.Size([10_000, *row_shape]))
        assert rows == budget_rows    # the most rows whose estimate stays within the budget
        assert policy.bytes_for([rows, *row_shape]) <= budget < policy.bytes_for([rows + 1, *row_shape])
    # the CPU plans with a share of the available RAM (an allocation past it is the OOM killer, not an error)
    cpu = memory.DenoiserRowPolicy(tiny_base_model, torch.device("cpu"), copies=2,
                                   free_memory=lambda dev: (fixed + per_row * 2 * 64.5) / memory.CPU_SHARE)
    assert cpu(torch.Size([1000, *row_shape])) == 64
    assert cpu(torch.Size([10, *row_shape])) == 10   # never more rows than there are
    assert memory.rows_that_fit(0, fixed, per_row) == 1  # always progress: one row per call at the least


def _rows(comfy, before=None):
    """Rows of every UNet call (recorded by ComfyUI's own unet function wrapper) since ``before`` (a list, length)."""
    calls = comfy.captured["unet_calls"]
    if before is not None and calls is before[0]:   # the recorder node was cached: its list kept growing
        calls = calls[before[1]:]
    return [int(model_input.shape[0]) for model_input, _ in calls]


def test_big_batch_runs_in_capped_calls_with_the_same_result(comfy, tiny_graph, tiny_base_model, monkeypatch):
    """64 particle rows (32 particles x 2 latents) in one call would exceed a small card's free memory; the search
    runs them in calls that fit and gives the same images as the uncapped run."""
    def graph(seed, verifier_chunk):
        g = _custom_graph(tiny_graph, _bfs("bfs", particles=32), seed=seed, steps=2, batch=2)
        g["ver"]["inputs"]["chunk_size"] = verifier_chunk   # a new input, so ComfyUI runs the graph again
        g["rec"] = {"class_type": "DiffusionSearchTestRecordModelInput", "inputs": {"model": ["unet", 0],
                                                                                      "key": "unet_calls"}}
        g["sc"]["inputs"]["model"] = ["rec", 0]
        return g

    comfy.run(graph(5, 16))
    uncapped, uncapped_rows = comfy.captured["out"]["samples"].clone(), _rows(comfy)
    memory = _memory(comfy)
    fixed, per_row = memory._linear_estimate(tiny_base_model, (4, 4, 4))
    mm = importlib.import_module("comfy.model_management")
    cap = 6
    budget = fixed + per_row * 2 * (cap + 0.5)       # room for 6 particle rows with CFG, by ComfyUI's estimate
    free = budget / memory.CPU_SHARE if mm.get_torch_device().type == "cpu" else budget * memory.GPU_MARGIN
    assert fixed + per_row * 2 * 64 > budget         # all 64 rows in one call would not fit
    monkeypatch.setattr(mm, "get_free_memory", lambda dev=None, torch_free_too=False:
                        (free, free) if torch_free_too else free)
    before = comfy.captured["unet_calls"], len(comfy.captured["unet_calls"])
    comfy.run(graph(5, 15))
    capped, capped_rows = comfy.captured["out"]["samples"], _rows(comfy, before)
    assert max(uncapped_rows) >= 64 and max(capped_rows) <= 2 * cap   # cond + uncond of `cap` particle rows
    assert sum(capped_rows) == sum(uncapped_rows)
    # same particles picked; values equal up to float rounding of different batch sizes in the UNet
    assert torch.allclose(capped, uncapped, rtol=1e-4, atol=1e-3)


def test_free_memory_is_counted_as_comfyuis_own_sampler_counts_it(comfy, tiny_base_model, monkeypatch):
    """ComfyUI 0.33 with dynamic VRAM counts the UNet weights it may evict as free (ModelPatcher.get_free_memory);
    the search batches by the same count, or it would run particles in needlessly small calls."""
    mm = importlib.import_module("comfy.model_management")
    model_patcher = importlib.import_module("comfy.model_patcher")
    compat = sys.modules[f"{comfy.pack.__name__}.bridge.compat"]
    memory = _memory(comfy)
    cpu = torch.device("cpu")
    if not hasattr(model_patcher.ModelPatcher, "get_free_memory"):   # 2024 and 0.3.x: the memory manager
        assert compat.free_memory_for_batch(tiny_base_model, cpu) == pytest.approx(mm.get_free_memory(cpu), rel=0.1)
        return
    evictable = 1e15

    class EvictingPatcher(model_patcher.ModelPatcher):   # what dynamic VRAM reports: free + evictable weights
        def get_free_memory(self, device):
            return super().get_free_memory(device) + evictable

    monkeypatch.setattr(tiny_base_model, "current_patcher", EvictingPatcher(tiny_base_model, cpu, cpu), raising=False)
    assert compat.free_memory_for_batch(tiny_base_model, cpu) >= evictable
    policy = memory.DenoiserRowPolicy(tiny_base_model, cpu, copies=2)
    assert policy.budget() >= evictable * memory.CPU_SHARE
