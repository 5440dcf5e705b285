"""What the tests use to run real ComfyUI: re-exported from devtools/ (shared with the demo and benchmarks)."""
import pytest

from devtools.comfy_runtime import (  # noqa: F401
    PACK_NAME, ComfyExecutionError, ComfyInterrupted, ComfyRuntime, comfyui_root, is_modern, make_custom_nodes_dir)
from devtools.tiny_models import write_tiny_models  # noqa: F401
from devtools.ui_workflow import ui_to_api  # noqa: F401

# The one reason a test may skip in CI: it needs modern ComfyUI and this pass runs the 2024 snapshot (.ci/run runs both;
# tests/conftest.py fails any other skip under CI=true).
MODERN_ONLY = "needs modern ComfyUI"
# A generator of committed pictures run by hand (e.g. UPDATE_SCREENSHOTS=1), not a check: its skip is no gap in CI.
ON_DEMAND = "on demand"


def skip_unless_modern(comfy, what: str) -> None:
    """Skip, with the reason CI accepts, when the running ComfyUI is the 2024 snapshot."""
    if not comfy.modern:
        pytest.skip(f"{MODERN_ONLY}: {what} (set COMFYUI_PATH to a modern ComfyUI; CI runs it in its modern pass)")


def add_search_sampling(graph: dict, sampler_node: dict, seed: int = 0, steps: int = 6, cfg: float = 3.0,
                        model: str = "unet", scheduler: str = "normal") -> dict:
    """Add a search SAMPLER node, BasicScheduler, SamplerCustom and a capture of its latent (key "out") to a graph
    from the `tiny_graph` fixture (which provides unet, pos, neg and latent); `model` names a node patching the UNet."""
    graph["search"] = sampler_node
    graph["sched"] = {"class_type": "BasicScheduler",
                      "inputs": {"model": [model, 0], "scheduler": scheduler, "steps": steps, "denoise": 1.0}}
    graph["sc"] = {"class_type": "SamplerCustom",
                   "inputs": {"model": [model, 0], "add_noise": True, "noise_seed": seed, "cfg": cfg,
                              "positive": ["pos", 0], "negative": ["neg", 0], "sampler": ["search", 0],
                              "sigmas": ["sched", 0], "latent_image": ["latent", 0]}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["sc", 0], "key": "out"}}
    return graph
