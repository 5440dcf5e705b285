"""Video search: frame scoring rules (both ComfyUI versions) and BFS / DFS / local search on a tiny random Wan 2.1
text-to-video model with a Wan VAE, through SamplerCustom (modern ComfyUI only: the 2024 snapshot has no Wan)."""
import sys

import pytest
import torch

from comfy_harness import skip_unless_modern

VIDEO_WIDGETS = ("video_frames", "video_aggregate", "temporal_weight", "video_decoder")
SEARCH_NODES = ("DiffusionSearchBFSSampler", "DiffusionSearchDFSSampler", "DiffusionSearchLocalSampler",
                "DiffusionSearchKSampler")


def _video(comfy):
    return sys.modules[f"{comfy.pack.__name__}.bridge.video"]


def test_frame_rewards_aggregate_and_temporal_term(comfy):
    video = _video(comfy)
    assert video.frame_indices(9, 4) == [0, 3, 5, 8] and video.frame_indices(3, 0) == [0, 1, 2]
    assert video.frame_indices(5, 1) == [0] and video.frame_indices(2, 7) == [0, 1]
    rewards = torch.tensor([[1.0, 2.0, 6.0], [3.0, 3.0, 3.0]])
    assert torch.equal(video.aggregate(rewards, "mean"), torch.tensor([3.0, 3.0]))
    assert torch.equal(video.aggregate(rewards, "min"), torch.tensor([1.0, 3.0]))
    still = torch.full((1, 3, 4, 4, 3), 0.5)
    flicker = torch.stack([torch.zeros(4, 4, 3), torch.ones(4, 4, 3), torch.zeros(4, 4, 3)])[None]
    consistency = video.temporal_consistency(torch.cat([still, flicker]))
    assert consistency.tolist() == [0.0, -1.0]   # minus the mean absolute change between consecutive frames
    spec = video.VideoScoring(aggregate="min", temporal_weight=0.5)
    assert video.video_reward(rewards, torch.cat([still, flicker]), spec).tolist() == [1.0, 2.5]
    for bad in (dict(aggregate="max"), dict(decoder="taesd"), dict(frames=-1), dict(temporal_weight=float("nan"))):
        with pytest.raises(ValueError, match="video_|temporal_weight"):
            video.VideoScoring(**bad).validate()


def test_search_nodes_have_video_widgets_with_tooltips(comfy):
    for node in SEARCH_NODES:
        optional = comfy.node_classes[node].INPUT_TYPES()["optional"]
        for name in VIDEO_WIDGETS:
            assert name in optional and optional[name][1]["tooltip"], (node, name)


@pytest.fixture(scope="module")
def wan(comfy, tiny_models):
    skip_unless_modern(comfy, "the 2024 ComfyUI snapshot has no Wan video models (comfy.ldm.wan)")
    from devtools.tiny_video_models import write_tiny_wan_models

    return write_tiny_wan_models(tiny_models["models_dir"])


def _wan_graph(wan, sampler, seed=0, steps=3, frames=5, batch=1):
    return {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": wan["wan_unet"], "weight_dtype": "default"}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": wan["wan_vae"]}},
        "pos": {"class_type": "DiffusionSearchTestConditioning",
                "inputs": {"seed": seed, "text": "a red fox running", "width": 4096, "tokens": 8}},
        "neg": {"class_type": "DiffusionSearchTestConditioning",
                "inputs": {"seed": seed + 1, "text": "", "width": 4096, "tokens": 8}},
        "latent": {"class_type": "EmptyHunyuanLatentVideo",
                   "inputs": {"width": 32, "height": 32, "length": frames, "batch_size": batch}},
        "ver": {"class_type": "DiffusionSearchVerifierPromptColour",
                "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}},
        "sched": {"class_type": "BasicScheduler",
                  "inputs": {"model": ["unet", 0], "scheduler": "simple", "steps": steps, "denoise": 1.0}},
        "search": sampler,
        "sc": {"class_type": "SamplerCustom",
               "inputs": {"model": ["unet", 0], "add_noise": True, "noise_seed": seed, "cfg": 3.0,
                          "positive": ["pos", 0], "negative": ["neg", 0], "sampler": ["search", 0],
                          "sigmas": ["sched", 0], "latent_image": ["latent", 0]}},
        "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["sc", 0], "key": "video"}},
    }


def _scoring(**video):
    inputs = {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red fox running", "score_size": 0,
              "chunk_size": 8, "video_frames": 2, "video_aggregate": "mean", "temporal_weight": 0.0,
              "video_decoder": "preview"}
    inputs.update(video)
    return inputs


SAMPLERS = {
    "bfs": lambda **v: {"class_type": "DiffusionSearchBFSSampler", "inputs": {
        **_scoring(**v), "preset": "bfs", "particles": 3, "lam": 10.0, "resampling_steps": 2, "ess_threshold": 0.0,
        "temperature": "constant", "scoring": "max", "resampling": "ssp"}},
    "dfs": lambda **v: {"class_type": "DiffusionSearchDFSSampler", "inputs": {
        **_scoring(**v), "delta": 10.0, "delta_schedule": "constant", "backtrack_steps": 1, "nfe_budget": 5,
        "max_backtracks": -1, "check_from": 1}},
    "local": lambda **v: {"class_type": "DiffusionSearchLocalSampler", "inputs": {
        **_scoring(**v), "particles": 2, "local_search": ["settings", 0]}},
}


def _events(comfy, kind):
    return [d for e, d in comfy.events if e == "diffusion_search.event" and d["type"] == kind]


@pytest.mark.parametrize("algorithm", sorted(SAMPLERS))
def test_search_on_wan_video_latents(comfy, wan, algorithm):
    graph = _wan_graph(wan, SAMPLERS[algorithm](video_aggregate="min", temporal_weight=0.5))
    if algorithm == "local":
        graph["settings"] = {"class_type": "DiffusionSearchLocalSearchSettings", "inputs": {
            "gradient_mode": "x0", "langevin_steps": 1, "recur_steps": 0, "mu": 0.1, "rho": 0.0,
            "grad_clip": 0.0, "start_step": 0}}
    comfy.events.clear()
    comfy.run(graph)
    samples = comfy.captured["video"]["samples"]
    assert samples.shape == (1, 16, 2, 4, 4) and torch.isfinite(samples).all()   # [B, C, T, h, w]: 5 frames
    final = _events(comfy, "final")[-1]
    if algorithm == "dfs":
        assert final["nfe"] <= 5 and _events(comfy, "backtrack")   # δ = 10 is out of reach: it backtracks
    else:
        assert final["nfe"] == {"bfs": 3 * 3, "local": 2 * 3}[algorithm]   # particles x steps
    # every scored particle costs two frames (video_frames = 2) of verifier evaluations
    assert final["evaluations"] % 2 == 0 and final["evaluations"] > 0


def test_wan_vae_frames_and_the_first_frame_is_exact(comfy, wan):
    """Chosen frames decoded one by one through the real Wan VAE: the first equals the causal decode's first."""
    scoring = sys.modules[f"{comfy.pack.__name__}.bridge.scoring"]
    video = _video(comfy)
    with torch.inference_mode():
        unet = comfy.node_classes["UNETLoader"]().load_unet(wan["wan_unet"], "default")[0]
        vae = comfy.node_classes["VAELoader"]().load_vae(wan["wan_vae"])[0]
        verifier = comfy.node_classes["DiffusionSearchVerifierColourfulness"]().load("cpu", "float32", 8)[0]
        x0 = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(0))
        whole = scoring.LatentScorer(unet.model, vae, verifier, "", video=video.VideoScoring(frames=0))
        subset = scoring.LatentScorer(unet.model, vae, verifier, "", video=video.VideoScoring(frames=1))
        every, first = whole.frames(x0), subset.frames(x0)
        rewards = subset.score(x0)
    assert every.shape == (1, 5, 32, 32, 3) and first.shape == (1, 1, 32, 32, 3)   # 1 + 4·(T-1) frames
    assert torch.allclose(first[:, 0], every[:, 0], atol=2e-3)
    assert rewards.shape == (1,) and torch.isfinite(rewards).all() and subset.evaluations == 1



def test_wan_vae_gradient_reaches_the_video_latent(comfy, wan):
    """Local search's guide path through the Wan VAE: the Wan latent format's inference-mode mean/std tensors do not
    block autograd, the reward matches the plain one, and a small step along the gradient raises it."""
    scoring = sys.modules[f"{comfy.pack.__name__}.bridge.scoring"]
    with torch.inference_mode():
        unet = comfy.node_classes["UNETLoader"]().load_unet(wan["wan_unet"], "default")[0]
        vae = comfy.node_classes["VAELoader"]().load_vae(wan["wan_vae"])[0]
        verifier = comfy.node_classes["DiffusionSearchVerifierColourfulness"]().load("cpu", "float32", 8)[0]
        scorer = scoring.LatentScorer(unet.model, vae, verifier, "", video=_video(comfy).VideoScoring(frames=1))
        x0 = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode(False):
            x = x0.clone().requires_grad_(True)
        reward = scorer.score_with_grad(x)
        with torch.inference_mode(False):
            (grad,) = torch.autograd.grad(reward.sum(), x)
        plain = scorer.score(x0)
        step = scorer.score(x0 + 0.05 * grad / grad.norm())
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert torch.allclose(reward.detach(), plain, rtol=1e-3, atol=1e-4)
    assert step > plain
