"""Tiny random-weight models in the real file formats, built at test time (nothing binary is committed).

- An SD1.5-detected UNet: ComfyUI's SD15 detection needs model_channels=320, context_dim=768 and a conv proj_in;
  everything else (levels, blocks, depths) is read from the keys, so one level with one ResBlock + transformer in and
  two ResBlocks out (no middle block) is the smallest UNet both ComfyUI versions accept. Bare ldm keys, which the 2024
  `UNETLoader` requires and the modern one accepts.
- A TAESD-layout VAE: any state dict holding `taesd_decoder.1.weight` loads through `VAELoader` as TAESD.

Pure torch + safetensors, no ComfyUI import, so the same files serve every ComfyUI version.
"""
from __future__ import annotations

import os

import torch
from safetensors.torch import save_file

CHANNELS = 320          # SD15 detection requires it
CONTEXT = 768           # SD15 detection requires it (read from attn2.to_k)
TIME_EMBED = CHANNELS * 4
LATENT_CHANNELS = 4

UNET_FILE = "tiny_sd15_unet.safetensors"
VAE_FILE = "tiny_taesd_vae.safetensors"


class _StateDict:
    """Collects tensors under key prefixes, drawing every random weight from one generator."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)
        self.tensors: dict[str, torch.Tensor] = {}

    def randn(self, key, *shape, std=0.02):
        self.tensors[key] = torch.randn(*shape, generator=self.g) * std

    def const(self, key, value, *shape):
        self.tensors[key] = torch.full(shape, float(value))

    def linear(self, key, c_out, c_in, bias=True, std=0.02):
        self.randn(key + ".weight", c_out, c_in, std=std)
        if bias:
            self.const(key + ".bias", 0, c_out)

    def conv(self, key, c_out, c_in, k=3, bias=True, std=0.02):
        self.randn(key + ".weight", c_out, c_in, k, k, std=std)
        if bias:
            self.const(key + ".bias", 0, c_out)

    def norm(self, key, c):
        self.const(key + ".weight", 1, c)
        self.const(key + ".bias", 0, c)


def _res_block(sd: _StateDict, p: str, c_in: int, c_out: int):
    sd.norm(p + "in_layers.0", c_in)
    sd.conv(p + "in_layers.2", c_out, c_in)
    sd.linear(p + "emb_layers.1", c_out, TIME_EMBED)
    sd.norm(p + "out_layers.0", c_out)
    sd.conv(p + "out_layers.3", c_out, c_out)
    if c_in != c_out:
        sd.conv(p + "skip_connection", c_out, c_in, k=1)


def _transformer(sd: _StateDict, p: str, c: int):
    sd.norm(p + "norm", c)
    sd.conv(p + "proj_in", c, c, k=1)       # a conv proj_in means use_linear_in_transformer=False (SD1.x)
    block = p + "transformer_blocks.0."
    for attn, kv_dim in (("attn1", c), ("attn2", CONTEXT)):
        sd.linear(block + attn + ".to_q", c, c, bias=False)
        sd.linear(block + attn + ".to_k", c, kv_dim, bias=False)
        sd.linear(block + attn + ".to_v", c, kv_dim, bias=False)
        sd.linear(block + attn + ".to_out.0", c, c)
    for n in ("norm1", "norm2", "norm3"):
        sd.norm(block + n, c)
    sd.linear(block + "ff.net.0.proj", 8 * c, c)   # GEGLU: two halves of 4c
    sd.linear(block + "ff.net.2", c, 4 * c)
    sd.conv(p + "proj_out", c, c, k=1)


def tiny_unet_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """One-level SD1.5-layout UNet (about 13.6 M parameters)."""
    sd = _StateDict(seed)
    sd.linear("time_embed.0", TIME_EMBED, CHANNELS)
    sd.linear("time_embed.2", TIME_EMBED, TIME_EMBED)
    sd.conv("input_blocks.0.0", CHANNELS, LATENT_CHANNELS, std=0.1)
    _res_block(sd, "input_blocks.1.0.", CHANNELS, CHANNELS)
    _transformer(sd, "input_blocks.1.1.", CHANNELS)
    for i in range(2):  # each output block concatenates one skip connection
        _res_block(sd, f"output_blocks.{i}.0.", 2 * CHANNELS, CHANNELS)
    sd.norm("out.0", CHANNELS)
    sd.conv("out.2", LATENT_CHANNELS, CHANNELS, std=0.01)
    return {k: v.contiguous() for k, v in sd.tensors.items()}


def tiny_taesd_state_dict(seed: int = 1, width: int = 64) -> dict[str, torch.Tensor]:
    """TAESD encoder + decoder (comfy/taesd/taesd.py layout, nn.Sequential indices)."""
    sd = _StateDict(seed)

    def block(p):  # Block: Sequential(conv, ReLU, conv, ReLU, conv) with an identity skip
        for i in (0, 2, 4):
            sd.conv(f"{p}.conv.{i}", width, width, std=0.05)

    enc = "taesd_encoder."
    sd.conv(enc + "0", width, 3, std=0.05)
    block(enc + "1")
    i = 2
    for _ in range(3):                    # stride-2 conv, then three blocks, three times: 8x down
        sd.conv(f"{enc}{i}", width, width, bias=False, std=0.05)
        i += 1
        for _ in range(3):
            block(f"{enc}{i}")
            i += 1
    sd.conv(f"{enc}{i}", LATENT_CHANNELS, width, std=0.05)

    dec = "taesd_decoder."                # index 0 is Clamp, 2 is ReLU: no parameters
    sd.conv(dec + "1", width, LATENT_CHANNELS, std=0.05)
    i = 3
    for _ in range(3):                    # three blocks, Upsample, conv: 8x up
        for _ in range(3):
            block(f"{dec}{i}")
            i += 1
        i += 1
        sd.conv(f"{dec}{i}", width, width, bias=False, std=0.05)
        i += 1
    block(f"{dec}{i}")
    sd.conv(f"{dec}{i + 1}", 3, width, std=0.05)
    sd.tensors["vae_scale"] = torch.tensor(1.0)
    sd.tensors["vae_shift"] = torch.tensor(0.0)
    return {k: v.contiguous() for k, v in sd.tensors.items()}


def write_tiny_models(models_dir) -> dict[str, str]:
    """Write the tiny UNet and VAE under models_dir/{unet,vae}/ (idempotent); returns their file names."""
    paths = {
        "unet": (os.path.join(models_dir, "unet", UNET_FILE), tiny_unet_state_dict),
        "vae": (os.path.join(models_dir, "vae", VAE_FILE), tiny_taesd_state_dict),
    }
    for path, build in paths.values():
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            save_file(build(), tmp)
            os.replace(tmp, path)
    return {"unet": UNET_FILE, "vae": VAE_FILE}
