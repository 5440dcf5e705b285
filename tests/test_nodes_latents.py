"""Latents and VAEs the search cannot use are refused before sampling, naming the latent node or VAE to use."""
import pytest
from safetensors.torch import save_file
import torch

from comfy_harness import MODERN_ONLY, ComfyExecutionError, add_search_sampling, skip_unless_modern

SIZE = 32
STAGE_C_PREVIEWER = "tiny_stable_cascade_previewer.safetensors"


def _verifier():
    return {"class_type": "DiffusionSearchVerifierPromptColour",
            "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}


def _sampler_custom(tiny_graph, latent_node=None, vae="vae"):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = _verifier()
    add_search_sampling(graph, {"class_type": "DiffusionSearchBFSSampler", "inputs": {
        "vae": [vae, 0], "verifier": ["ver", 0], "prompt": "red", "preset": "bfs", "particles": 2, "lam": 10.0,
        "resampling_steps": 1, "ess_threshold": 0.0, "temperature": "constant", "scoring": "max",
        "resampling": "ssp", "score_size": 0, "chunk_size": 16}}, steps=2)
    if latent_node is not None:
        graph["latent"] = latent_node
    return graph


def _ksampler(tiny_graph, latent_node=None, vae="vae"):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = _verifier()
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
        "model": ["unet", 0], "seed": 0, "steps": 2, "cfg": 3.0, "scheduler": "normal", "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0, "vae": [vae, 0],
        "verifier": ["ver", 0], "prompt": "red", "search": "bfs", "particles": 2, "lam": 10.0, "resampling_steps": 1,
        "delta": 0.0, "backtrack_steps": 1, "nfe_budget": 0, "score_size": 0, "chunk_size": 16}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 0], "key": "out"}}
    if latent_node is not None:
        graph["latent"] = latent_node
    return graph


GRAPHS = {"SamplerCustom": _sampler_custom, "KSampler (Search)": _ksampler}


def _latent(comfy, shape, noise=True):
    """A LATENT of any shape (as another model's latent node or a broken custom node makes), through the test node."""
    size = [int(s) for s in shape.split(",")]
    key = f"bad_latent_{shape}_{noise}"
    comfy.test_nodes.LATENTS[key] = torch.randn(size, generator=torch.Generator().manual_seed(0)) if noise \
        else torch.zeros(size)
    return {"class_type": "DiffusionSearchTestLatent", "inputs": {"key": key}}


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("shape, noise, message", [
    ("1,4,4", True, r"3 dimensions.*needs 4.*Empty Latent Image"),
    ("1,4,1,4,4", True, r"5 dimensions.*image model.*video.*Empty Latent Image"),
    ("1,16,4,4", True, r"16 channels.*4-channel latent space.*Empty Latent Image"),
    ("0,4,4,4", False, r"empty batch.*batch_size >= 1"),
])
def test_latents_the_search_cannot_use_are_refused_naming_the_latent_node(comfy, tiny_graph, graph, shape, noise,
                                                                           message):
    if graph == "SamplerCustom" and shape == "1,4,4" and not comfy.modern:
        skip_unless_modern(comfy, "the 2024 SamplerCustom estimates memory from the latent's shape (IndexError) "
                                  "before any sampler code runs; KSampler (Search) and modern ComfyUI reach the check")
    with pytest.raises(ComfyExecutionError, match=message):
        comfy.run(GRAPHS[graph](tiny_graph, _latent(comfy, shape, noise)))


@pytest.fixture(scope="module")
def stable_cascade_vae(comfy, tiny_models):
    """A VAE file ComfyUI reads as Stable Cascade's stage-C previewer: a VAE of a 16-channel latent space."""
    import os
    path = os.path.join(tiny_models["models_dir"], "vae", STAGE_C_PREVIEWER)
    save_file({"blocks.11.num_batches_tracked": torch.tensor(0)}, path)
    return STAGE_C_PREVIEWER


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_vae_of_another_latent_space_is_refused_naming_the_vae(comfy, tiny_graph, stable_cascade_vae, graph):
    built = GRAPHS[graph](tiny_graph, vae="cascade_vae")
    built["cascade_vae"] = {"class_type": "VAELoader", "inputs": {"vae_name": stable_cascade_vae}}
    with pytest.raises(ComfyExecutionError, match=r"decodes 16-channel latents.*4-channel.*model's own VAE.*taesd"):
        comfy.run(built)


def test_video_models_take_5d_latents_and_image_models_do_not(comfy):
    """The one latent check knows video latent formats (modern ComfyUI: latent_dimensions == 3)."""
    import importlib
    from types import SimpleNamespace
    latents = importlib.import_module(f"{comfy.pack.__name__}.bridge.latents")
    formats = importlib.import_module("comfy.latent_formats")
    image_model = SimpleNamespace(latent_format=formats.SD15())
    latents.check_latent(image_model, torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="image model"):
        latents.check_latent(image_model, torch.zeros(2, 4, 3, 8, 8))
    video = getattr(formats, "HunyuanVideo", None)
    if video is None:
        pytest.skip(f"{MODERN_ONLY}: this ComfyUI has no video latent formats")
    video_model = SimpleNamespace(latent_format=video())
    latents.check_latent(video_model, torch.zeros(1, 16, 3, 8, 8))
    with pytest.raises(ValueError, match="video model.*video latent node, EmptyHunyuanLatentVideo"):
        latents.check_latent(video_model, torch.zeros(1, 16, 8, 8))
    with pytest.raises(ValueError, match="4 channels.*16-channel"):
        latents.check_latent(video_model, torch.zeros(1, 4, 3, 8, 8))
