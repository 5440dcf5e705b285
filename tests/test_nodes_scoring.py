"""The scoring path (latent -> process_latent_out -> decode -> verifier), verifier nodes and the rank node, in ComfyUI."""
import importlib
import json
import sys

import pytest
import torch

from comfy_harness import ComfyExecutionError


def _pack_module(comfy, name):
    return sys.modules[f"{comfy.pack.__name__}.bridge.{name}"]


def _colour_batch(colours):
    """API nodes making a batch of flat 64 px images of the given 0xRRGGBB colours (EmptyImage + ImageBatch)."""
    graph, previous = {}, None
    for i, colour in enumerate(colours):
        graph[f"img{i}"] = {"class_type": "EmptyImage",
                            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": colour}}
        if previous is None:
            previous = [f"img{i}", 0]
        else:
            graph[f"batch{i}"] = {"class_type": "ImageBatch", "inputs": {"image1": previous, "image2": [f"img{i}", 0]}}
            previous = [f"batch{i}", 0]
    return graph, previous


def test_rank_node_sorts_by_verifier(comfy):
    # grey has colourfulness 0, saturated red the most: the order is known from the colours themselves.
    colours = [0x808080, 0xE01010, 0x4060A0]
    graph, images = _colour_batch(colours)
    graph["verifier"] = {"class_type": "DiffusionSearchVerifierColourfulness",
                         "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 2}}
    graph["rank"] = {"class_type": "DiffusionSearchRankImages",
                     "inputs": {"images": images, "verifier": ["verifier", 0], "prompt": "", "top_k": 2}}
    for slot, key in enumerate(("ranked", "scores", "top", "best")):
        graph[f"cap_{key}"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["rank", slot], "key": key}}
    comfy.run(graph)
    scores = json.loads(comfy.captured["scores"])
    assert scores["order"] == [1, 2, 0]
    assert scores["scores"] == sorted(scores["scores"], reverse=True)
    ranked, top = comfy.captured["ranked"], comfy.captured["top"]
    assert ranked.shape == (3, 64, 64, 3) and top.shape == (2, 64, 64, 3)
    assert torch.allclose(ranked[0, 0, 0], torch.tensor([0xE0, 0x10, 0x10]) / 255.0, atol=1e-3)
    assert comfy.captured["best"] == pytest.approx(scores["scores"][0])


def test_rank_node_rejects_latent(comfy, tiny_graph):
    graph = tiny_graph()
    graph["verifier"] = {"class_type": "DiffusionSearchVerifierColourfulness",
                         "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 2}}
    graph["rank"] = {"class_type": "DiffusionSearchRankImages",
                     "inputs": {"images": ["latent", 0], "verifier": ["verifier", 0], "prompt": "", "top_k": 1}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["rank", 0], "key": "x"}}
    with pytest.raises(ComfyExecutionError, match="IMAGE|LATENT"):
        comfy.run(graph)


def test_combined_verifier_is_weighted_sum(comfy):
    colours = [0x808080, 0xE01010, 0x10E010]
    graph, images = _colour_batch(colours)
    graph["colour"] = {"class_type": "DiffusionSearchVerifierColourfulness",
                       "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 8}}
    graph["prompt"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                       "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 8}}
    graph["mix"] = {"class_type": "DiffusionSearchCombineVerifiers",
                    "inputs": {"verifier_1": ["colour", 0], "weight_1": 0.5, "normalise": "raw",
                               "verifier_2": ["prompt", 0], "weight_2": 2.0}}
    for name in ("colour", "prompt", "mix"):
        graph[f"rank_{name}"] = {"class_type": "DiffusionSearchRankImages",
                                 "inputs": {"images": images, "verifier": [name, 0], "prompt": "green", "top_k": 1}}
        graph[f"cap_{name}"] = {"class_type": "DiffusionSearchTestCapture",
                                "inputs": {"value": [f"rank_{name}", 1], "key": name}}
    comfy.run(graph)
    by_index = {}
    for name in ("colour", "prompt", "mix"):
        doc = json.loads(comfy.captured[name])
        by_index[name] = dict(zip(doc["order"], doc["scores"]))
    for i in range(3):
        expected = 0.5 * by_index["colour"][i] + 2.0 * by_index["prompt"][i]
        assert by_index["mix"][i] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # "green" in the prompt: the green image wins under the mix although red is as colourful
    assert max(by_index["mix"], key=by_index["mix"].get) == 2


def test_verifier_without_weights_names_the_folder(comfy):
    graph = {"ir": {"class_type": "DiffusionSearchVerifierImageReward",
                    "inputs": {"weights": comfy.node_classes["DiffusionSearchVerifierImageReward"]
                               .INPUT_TYPES()["required"]["weights"][0][0],
                               "device": "cpu", "dtype": "float32", "chunk_size": 2}},
             "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ir", 0], "key": "ir"}}}
    with pytest.raises(ComfyExecutionError, match="models/image_reward"):
        comfy.run(graph)


@pytest.fixture(scope="module")
def tiny_unet_and_vae(comfy, tiny_models):
    with torch.inference_mode():
        unet = comfy.node_classes["UNETLoader"]().load_unet(tiny_models["unet"], **(
            {"weight_dtype": "default"} if "weight_dtype" in comfy.node_classes["UNETLoader"].INPUT_TYPES()["required"]
            else {}))[0]
        vae = comfy.node_classes["VAELoader"]().load_vae(tiny_models["vae"])[0]
    return unet, vae


@pytest.fixture
def float32_vae(comfy, tiny_models):
    """The tiny VAE forced to float32 (on a GPU ComfyUI picks bf16, too coarse for finite differences), TF32 off."""
    comfy_sd, comfy_utils = (importlib.import_module(name) for name in ("comfy.sd", "comfy.utils"))
    path = comfy.folder_paths.get_full_path("vae", tiny_models["vae"])
    with torch.inference_mode():
        vae = comfy_sd.VAE(sd=comfy_utils.load_torch_file(path), dtype=torch.float32)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield vae
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def test_scoring_path_gradient_matches_finite_difference(comfy, tiny_unet_and_vae, float32_vae):
    """Gradients reach the latent through a VAE copy even though the weights were made in inference mode."""
    scoring = _pack_module(comfy, "scoring")
    unet, vae = tiny_unet_and_vae[0], float32_vae
    verifier = comfy.pack.verifiers.ColourfulnessVerifier() if hasattr(comfy.pack, "verifiers") else None
    if verifier is None:
        from verifiers import ColourfulnessVerifier
        verifier = ColourfulnessVerifier()
    scorer = scoring.LatentScorer(unet.model, vae, verifier, "", chunk_size=2)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 8, 8, generator=g)
    direction = torch.randn(3, 4, 8, 8, generator=g)
    with torch.inference_mode():  # how ComfyUI runs every node
        plain = scorer.score(x0)
        with torch.inference_mode(False):
            x = x0.clone().requires_grad_(True)
        rewards = scorer.score_with_grad(x)
        with torch.inference_mode(False):
            (grad,) = torch.autograd.grad(rewards.sum(), x)
        eps = 1e-3
        up, down = scorer.score(x0 + eps * direction), scorer.score(x0 - eps * direction)
    assert plain.shape == (3,) and torch.allclose(plain, rewards.detach(), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    numeric = (up - down) / (2 * eps)
    analytic = (grad * direction).flatten(1).sum(1)
    assert torch.allclose(numeric, analytic, rtol=0.05, atol=0.05 * analytic.abs().max().item())
    assert scorer.evaluations == 3 + 3 + 3 + 3


def test_scoring_at_reduced_size_decodes_smaller(comfy, tiny_unet_and_vae):
    scoring = _pack_module(comfy, "scoring")
    unet, vae = tiny_unet_and_vae
    from verifiers import ColourfulnessVerifier
    scorer = scoring.LatentScorer(unet.model, vae, ColourfulnessVerifier(), "", score_size=32)
    with torch.inference_mode():
        images = scorer.decode(torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)))
    assert images.shape == (2, 32, 32, 3)
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_scorer_without_vae_names_the_fix(comfy, tiny_unet_and_vae):
    scoring = _pack_module(comfy, "scoring")
    from verifiers import ColourfulnessVerifier
    with pytest.raises(ValueError, match="VAE"):
        scoring.LatentScorer(tiny_unet_and_vae[0].model, None, ColourfulnessVerifier(), "")
