"""Rewrite an example workflow's API prompt for what runs here: the tiny random-weight model (tests, previews) or the
learned digits world (the demo, the pictures), and give its LoadImage nodes a real photo."""
from __future__ import annotations

import zlib
from pathlib import Path

VERIFIER_PREFIX = "DiffusionSearchVerifier"


def _rewire(prompt: dict, renames: dict) -> None:
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and (value[0], value[1]) in renames:
                node["inputs"][name] = renames[(value[0], value[1])]


def swap_in_tiny_model(prompt: dict, names: dict, size: int, steps: int | None) -> dict:
    """Replace checkpoint loading and text encoding with the tiny random model and test conditioning (tests)."""
    renames = {}
    for node_id, node in list(prompt.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "CheckpointLoaderSimple":
            vae_id = f"{node_id}_vae"
            prompt[node_id] = {"class_type": "UNETLoader",
                               "inputs": {"unet_name": names["unet"], "weight_dtype": "default"}}
            prompt[vae_id] = {"class_type": "VAELoader", "inputs": {"vae_name": names["vae"]}}
            renames[(node_id, 2)] = [vae_id, 0]
        elif kind == "CLIPTextEncode":
            text = inputs.get("text", "")
            prompt[node_id] = {"class_type": "DiffusionSearchTestConditioning",
                               "inputs": {"seed": zlib.crc32(text.encode()) % 2**31, "text": text}}
        elif kind in ("EmptyLatentImage", "ImageScale"):
            inputs.update(width=size, height=size)
        elif steps is not None and "steps" in inputs and not isinstance(inputs["steps"], list):
            inputs["steps"] = steps
    _rewire(prompt, renames)
    return prompt


def positive_encoders(prompt: dict) -> set[str]:
    """Ids of the text encoders that feed a 'positive' input (the others are negative prompts)."""
    return {str(node["inputs"]["positive"][0]) for node in prompt.values()
            if isinstance(node["inputs"].get("positive"), list)}


def swap_in_digits_world(prompt: dict, world, text: str, batch: int, steps: int | None, width: int = 64,
                         cfg: float | None = None) -> dict:
    """The workflow in a learned world (digits or numbers): its UNet, conditioning, VAE and guide classifier; nothing
    else changes but the prompt text, the latent size (64 px high, `width` wide) and, if asked, steps and CFG."""
    positives, renames = positive_encoders(prompt), {}
    for node_id, node in list(prompt.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "CheckpointLoaderSimple":
            vae_id = f"{node_id}_vae"
            prompt[node_id] = {"class_type": "UNETLoader", "inputs": {"unet_name": world.unet,
                                                                      "weight_dtype": "default"}}
            prompt[vae_id] = {"class_type": "VAELoader", "inputs": {"vae_name": world.vae}}
            renames[(node_id, 2)] = [vae_id, 0]
        elif kind == "CLIPTextEncode":   # the negative prompt becomes the unconditional (empty) embedding
            prompt[node_id] = world.conditioning(text if node_id in positives else "")
        elif kind.startswith(VERIFIER_PREFIX) and kind != f"{VERIFIER_PREFIX}Classifier":
            prompt[node_id] = world.guide.loader_node(chunk_size=64)
        elif kind == "EmptyLatentImage":
            inputs.update(width=width, height=64, batch_size=batch)
        elif cfg is not None and kind in ("SamplerCustom", "CFGGuider"):
            inputs["cfg"] = cfg
        if "prompt" in inputs and isinstance(inputs["prompt"], str):
            inputs["prompt"] = text
        if steps is not None and "steps" in inputs and not isinstance(inputs["steps"], list):
            inputs["steps"] = steps
    _rewire(prompt, renames)
    return prompt


def provide_input_images(prompt: dict, input_dir, size: int = 64) -> list[Path]:
    """Write a real photo (scikit-learn's china.jpg, CC-BY 2.0) for every LoadImage file missing from input_dir.

    The example workflows load ComfyUI's own input/example.png; a fresh input folder does not have it."""
    written = []
    for node in prompt.values():
        if node["class_type"] != "LoadImage":
            continue
        path = Path(input_dir) / str(node["inputs"]["image"])
        if path.exists():
            continue
        from PIL import Image
        from sklearn.datasets import load_sample_images

        photo = Image.fromarray(load_sample_images().images[0]).resize((size, size), Image.LANCZOS)
        path.parent.mkdir(parents=True, exist_ok=True)
        photo.save(path)
        written.append(path)
    return written
