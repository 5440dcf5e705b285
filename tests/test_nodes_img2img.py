"""Img2img and inpainting search in the real ComfyUI, on real photos encoded by the tiny TAESD (64 px, 8x8 latents)."""
import json

import pytest
import torch

SIZE = 64
PHOTOS = ("china.png", "flower.png")


@pytest.fixture(scope="module")
def photos(comfy):
    """scikit-learn's two sample photos (CC-BY 2.0) and two mask pictures, 64 px, in ComfyUI's input folder."""
    datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    folder = comfy.folder_paths.get_input_directory()
    for name, array in zip(PHOTOS, datasets.load_sample_images().images):
        Image.fromarray(array).resize((SIZE, SIZE), Image.LANCZOS).save(f"{folder}/{name}")
    left, top = torch.zeros(SIZE, SIZE, dtype=torch.uint8), torch.zeros(SIZE, SIZE, dtype=torch.uint8)
    left[:, : SIZE // 2] = 255   # white = repaint: the left half of the first photo, the top half of the second
    top[: SIZE // 2, :] = 255
    for name, mask in (("mask_left.png", left), ("mask_top.png", top)):
        Image.fromarray(mask.numpy()).convert("RGB").save(f"{folder}/{name}")
    return folder


def _encoded_graph(tiny_graph, record=True):
    """Both photos as one latent batch (LoadImage -> ImageBatch -> VAEEncode); the UNet's inputs recorded."""
    graph = tiny_graph(batch=2, size=SIZE)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    graph["img0"] = {"class_type": "LoadImage", "inputs": {"image": PHOTOS[0]}}
    graph["img1"] = {"class_type": "LoadImage", "inputs": {"image": PHOTOS[1]}}
    graph["images"] = {"class_type": "ImageBatch", "inputs": {"image1": ["img0", 0], "image2": ["img1", 0]}}
    graph["encoded"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["images", 0], "vae": ["vae", 0]}}
    graph["cap_encoded"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["encoded", 0],
                                                                                  "key": "encoded"}}
    graph["model"] = {"class_type": "DiffusionSearchTestRecordModelInput", "inputs": {"model": ["unet", 0],
                                                                                     "key": "model_inputs"}}
    return graph


def _ksampler(graph, search="best_of_n", particles=4, denoise=0.4, seed=0, latent=("encoded", 0), steps=4,
              delta=1e6):
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
        "model": ["model", 0], "seed": seed, "steps": steps, "cfg": 3.0, "scheduler": "normal",
        "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": list(latent), "denoise": denoise,
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "search": search,
        "particles": particles, "lam": 10.0, "resampling_steps": 2, "delta": delta, "backtrack_steps": 2,
        "nfe_budget": 2 * steps + 2, "score_size": 0, "chunk_size": 16}}
    for slot, key in enumerate(("best", "candidates", "scores", "trace")):
        graph[f"cap_{key}"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", slot],
                                                                                     "key": key}}
    return graph


def _run(comfy, graph):
    comfy.captured.setdefault("model_inputs", []).clear()
    comfy.run(graph)
    return comfy.captured["model_inputs"]


def _start_coefficients(comfy, first_call, particles):
    """Per UNet input row at the first step: β = <x, L> / <L, L> against its own item's input latent L (model space).

    x = L + σ0·ε gives β ≈ 1; a particle started from zeros (σ0·ε) gives β ≈ 0."""
    import comfy.latent_formats as latent_formats

    latent = latent_formats.SD15().process_in(comfy.captured["encoded"]["samples"].float())
    rows, _ = first_call
    per_pass = latent.shape[0] * particles           # cond and uncond passes are stacked in one UNet call
    items = (torch.arange(rows.shape[0]) % per_pass) // particles
    own = latent[items]
    return ((rows.float() * own).flatten(1).sum(1) / (own * own).flatten(1).sum(1)).tolist()


def test_ksampler_denoise_below_one_starts_every_particle_from_the_input_latent(comfy, tiny_graph, photos):
    calls = _run(comfy, _ksampler(_encoded_graph(tiny_graph), particles=4, denoise=0.4))
    rows, sigma = calls[0]
    full = comfy.captured["candidates"]["samples"]
    assert full.shape == (8, 4, SIZE // 8, SIZE // 8) and rows.shape[0] in (8, 16)
    # denoise 0.4 starts part-way down the schedule, and every particle's start is the photo plus noise
    assert float(sigma.max()) < 3.0 and torch.allclose(sigma, sigma[:1].expand_as(sigma))
    beta = _start_coefficients(comfy, calls[0], 4)
    assert all(0.8 < b < 1.2 for b in beta), beta
    # particle 0 starts from ComfyUI's noise, the others from fresh noise: all different starts
    assert len({round(float(r.flatten()[0]), 5) for r in rows[:8]}) == 8


def _split_sigmas_graph(tiny_graph, seed, particles=3):
    graph = _encoded_graph(tiny_graph)
    graph["bfs"] = {"class_type": "DiffusionSearchBFSSampler", "inputs": {
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "preset": "bfs", "particles": particles,
        "lam": 10.0, "resampling_steps": 2, "ess_threshold": 0.0, "temperature": "constant", "scoring": "max",
        "resampling": "ssp", "score_size": 0, "chunk_size": 16}}
    graph["sched"] = {"class_type": "BasicScheduler",
                      "inputs": {"model": ["unet", 0], "scheduler": "normal", "steps": 8, "denoise": 1.0}}
    graph["split"] = {"class_type": "SplitSigmas", "inputs": {"sigmas": ["sched", 0], "step": 5}}
    graph["sc"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["model", 0], "add_noise": True, "noise_seed": seed, "cfg": 3.0, "positive": ["pos", 0],
        "negative": ["neg", 0], "sampler": ["bfs", 0], "sigmas": ["split", 1], "latent_image": ["encoded", 0]}}
    graph["cap_sigmas"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["split", 1],
                                                                                 "key": "sigmas"}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["sc", 0], "key": "out"}}
    return graph


def test_sampler_custom_split_sigmas_img2img_starts_from_the_photo_and_repeats(comfy, tiny_graph, photos):
    outputs = []
    for seed in (3, 4, 3):   # seed 4 in between, so ComfyUI's cache does not answer the repeat
        calls = _run(comfy, _split_sigmas_graph(tiny_graph, seed))
        rows, sigma = calls[0]
        assert torch.allclose(sigma.float(), comfy.captured["sigmas"][0].float().expand_as(sigma).cpu())
        beta = _start_coefficients(comfy, calls[0], 3)
        assert all(0.8 < b < 1.2 for b in beta), beta
        outputs.append(comfy.captured["out"]["samples"].clone())
    assert torch.equal(outputs[0], outputs[2]), "same seed, same image"
    assert not torch.allclose(outputs[0], outputs[1])


def _inpaint_graph(tiny_graph, search, particles, delta):
    graph = _encoded_graph(tiny_graph)
    graph["m0"] = {"class_type": "LoadImage", "inputs": {"image": "mask_left.png"}}
    graph["m1"] = {"class_type": "LoadImage", "inputs": {"image": "mask_top.png"}}
    graph["mask_images"] = {"class_type": "ImageBatch", "inputs": {"image1": ["m0", 0], "image2": ["m1", 0]}}
    graph["masks"] = {"class_type": "ImageToMask", "inputs": {"image": ["mask_images", 0], "channel": "red"}}
    graph["masked"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["encoded", 0],
                                                                      "mask": ["masks", 0]}}
    return _ksampler(graph, search=search, particles=particles, denoise=1.0, latent=("masked", 0), delta=delta)


# DFS: δ = -25 lies between the two items' scores (about -28 and -21 on this model), so only the first item
# backtracks and dives alone once the second is done: the model then sees a subset of the items.
@pytest.mark.parametrize("search,particles,delta", [("bfs", 3, 0.0), ("dfs", 1, -25.0)])
def test_inpainting_a_batch_keeps_each_items_unmasked_region(comfy, tiny_graph, photos, search, particles, delta):
    """Each item has its own mask and photo: every particle keeps its own item's unmasked latent, repaints the rest."""
    _run(comfy, _inpaint_graph(tiny_graph, search, particles, delta))
    if search == "dfs":
        backtracked = {event["item"] for event in json.loads(comfy.captured["trace"])["events"]
                       if event["type"] == "backtrack"}
        assert backtracked == {0}, backtracked
    latent = comfy.captured["encoded"]["samples"].float()
    keep = torch.zeros(2, SIZE // 8, SIZE // 8, dtype=torch.bool)
    keep[0, :, SIZE // 16:] = True       # right half of the first photo
    keep[1, SIZE // 16:, :] = True       # bottom half of the second
    for key in ("candidates", "best"):
        samples = comfy.captured[key]["samples"].float()
        per_item = samples.shape[0] // 2
        for row, sample in enumerate(samples):
            item = row // per_item
            kept = keep[item].expand_as(sample)
            assert torch.allclose(sample[kept], latent[item][kept], atol=1e-4), (key, row)
            assert (sample[~kept] - latent[item][~kept]).abs().mean() > 0.05, (key, row)
