"""Tiny random-weight Wan 2.1 text-to-video models that modern ComfyUI's own loaders detect (tests, previews).

- DiT: ComfyUI's `WanModel` at dim 128 (one head of 128: detection reads heads as dim // 128), one block, FFN 256,
  16 latent channels, text width 4096 (umt5-xxl's): about 1 M parameters, bare keys for UNETLoader. Detected as
  WAN21_T2V (flow sampling, shift 8, Wan21 latent format).
- VAE: ComfyUI fixes the Wan 2.1 VAE's width (96) when it detects one, so it cannot be shrunk; the decoder alone
  (73 M parameters, float16, about 150 MB) and the encoder's first conv are written, and VAELoader loads it (the
  other encoder keys missing: warned, unused).
Random weights are drawn from a seeded generator. Needs a modern ComfyUI on sys.path (the 2024 one has no Wan).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

WAN_UNET_FILE = "tiny_wan21_t2v.safetensors"
WAN_VAE_FILE = "tiny_wan21_vae_decoder.safetensors"
TEXT_DIM = 4096
LATENT_CHANNELS = 16


def _randomise(module: torch.nn.Module, seed: int) -> dict:
    """Seeded weights for every parameter (fan-in scaled normal; norms' scales 1, biases 0) as a state dict."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in module.state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gamma", "scale") or (tensor.dim() == 1 and "norm" in name and leaf == "weight"):
            value = torch.ones(tensor.shape)
        elif leaf == "bias" or tensor.dim() == 0:
            value = torch.zeros(tensor.shape)
        elif tensor.dim() == 1:
            value = torch.randn(tensor.shape, generator=generator) * 0.02
        else:
            fan_in = math.prod(tensor.shape[1:]) if tensor.dim() > 1 else tensor.shape[0]
            value = torch.randn(tensor.shape, generator=generator) / math.sqrt(max(fan_in, 1))
        out[name] = value
    return out


def tiny_wan_unet_state_dict(seed: int = 0) -> dict:
    """Bare WanModel keys (UNETLoader layout) for a 1-block, dim-128 text-to-video DiT."""
    import comfy.ops
    from comfy.ldm.wan.model import WanModel

    with torch.device("meta"):
        model = WanModel(model_type="t2v", patch_size=(1, 2, 2), in_dim=LATENT_CHANNELS, dim=128, ffn_dim=256,
                         freq_dim=256, text_dim=TEXT_DIM, out_dim=LATENT_CHANNELS, num_heads=1, num_layers=1,
                         operations=comfy.ops.disable_weight_init)
    weights = _randomise(model, seed)
    weights["head.head.weight"] = weights["head.head.weight"] * 0.1   # small start outputs, like a trained model's
    return {k: v.to(torch.float32).contiguous() for k, v in weights.items()}


def tiny_wan_vae_state_dict(seed: int = 1) -> dict:
    """Wan 2.1 VAE decoder keys (width 96, as ComfyUI requires), the latent-side conv and the encoder's first conv
    (ComfyUI 0.33 reads the image channels from it), float16."""
    from comfy.ldm.wan.vae import WanVAE

    with torch.device("meta"):
        vae = WanVAE(dim=96, z_dim=LATENT_CHANNELS, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                     temperal_downsample=[False, True, True], dropout=0.0)
    weights = _randomise(vae, seed)
    return {k: v.to(torch.float16).contiguous() for k, v in weights.items()
            if k.startswith(("decoder.", "conv2.", "encoder.conv1."))}


def write_tiny_wan_models(models_dir) -> dict:
    """Write both files under models_dir/{unet,vae}/ (once) and return their names."""
    from safetensors.torch import save_file

    models_dir = Path(models_dir)
    for folder, name, build in (("unet", WAN_UNET_FILE, tiny_wan_unet_state_dict),
                                ("vae", WAN_VAE_FILE, tiny_wan_vae_state_dict)):
        path = models_dir / folder / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file(build(), str(path))
    return {"wan_unet": WAN_UNET_FILE, "wan_vae": WAN_VAE_FILE}


def swap_in_tiny_wan(prompt: dict, names: dict, size: int, frames: int, steps: int | None, particles: int = 2) -> dict:
    """A Wan text-to-video prompt (ComfyUI's template loaders) on the tiny Wan models, in place: the text encoder
    gives way to seeded test conditioning of umt5's width, the video shrinks to size x size x frames, the search
    scores latent previews with fewer particles (the real VAE is slow on a CPU; tests/test_nodes_video.py runs it)."""
    import zlib

    for node_id, node in list(prompt.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "UNETLoader":
            inputs.update(unet_name=names["wan_unet"], weight_dtype="default")
        elif kind == "VAELoader":
            inputs["vae_name"] = names["wan_vae"]
        elif kind == "CLIPLoader":
            del prompt[node_id]
        elif kind == "CLIPTextEncode":
            text = inputs.get("text", "")
            prompt[node_id] = {"class_type": "DiffusionSearchTestConditioning", "inputs": {
                "seed": zlib.crc32(text.encode()) % 2**31, "text": text, "width": TEXT_DIM, "tokens": 8}}
        elif kind == "EmptyHunyuanLatentVideo":
            inputs.update(width=size, height=size, length=frames)
        elif kind.startswith("DiffusionSearch") and "video_decoder" in inputs:
            inputs["video_decoder"] = "preview"
            if isinstance(inputs.get("particles"), int):
                inputs["particles"] = min(particles, inputs["particles"])
        if steps is not None and "steps" in inputs and not isinstance(inputs["steps"], list):
            inputs["steps"] = steps
    return prompt
