"""Random-weight full-size models for the GPU check, built without any download: the SDXL UNet (2.6 B parameters, its
real layout: 320/640/1280 channels, transformer depths 0/2/10) and the SD / SDXL VAE (83 M, ComfyUI's AutoencoderKL
layout). Weights are drawn in place on the given device (a GPU draws 2.6 B normals in well under a second)."""
from __future__ import annotations

import os

import torch
from safetensors.torch import save_file

from .tiny_families import SDXL_ADM, SDXL_CONTEXT
from .tiny_models import TIME_EMBED, _res_block, _StateDict, _transformer

SDXL_FULL_FILE = "random_sdxl_unet.safetensors"
SD_VAE_FILE = "random_sd_vae.safetensors"


class _DeviceStateDict(_StateDict):
    """_StateDict drawing in place in float16 on `device` (one pass over memory per weight)."""

    def __init__(self, seed: int, device="cpu"):
        super().__init__(seed)
        self.device = torch.device(device)
        self.g = torch.Generator(self.device).manual_seed(seed)

    def randn(self, key, *shape, std=0.02):
        self.tensors[key] = torch.empty(*shape, device=self.device, dtype=torch.float16).normal_(0.0, std,
                                                                                               generator=self.g)

    def const(self, key, value, *shape):
        self.tensors[key] = torch.full(shape, float(value), device=self.device, dtype=torch.float16)


def full_sdxl_unet_state_dict(seed: int = 0, device="cpu") -> dict[str, torch.Tensor]:
    """SDXL base's UNet layout: levels 320/640/1280, 2 ResBlocks down / 3 up, transformer depths 0/2/10, middle 10."""
    sd = _DeviceStateDict(seed, device)
    base, mults, depths = 320, (1, 2, 4), (0, 2, 10)
    sd.linear("time_embed.0", TIME_EMBED, base)
    sd.linear("time_embed.2", TIME_EMBED, TIME_EMBED)
    sd.linear("label_emb.0.0", TIME_EMBED, SDXL_ADM)
    sd.linear("label_emb.0.2", TIME_EMBED, TIME_EMBED)
    sd.conv("input_blocks.0.0", base, 4, std=0.1)
    ch, skips, index = base, [base], 1
    for level, (mult, depth) in enumerate(zip(mults, depths)):
        for _ in range(2):
            out = mult * base
            _res_block(sd, f"input_blocks.{index}.0.", ch, out)
            ch = out
            if depth:
                _transformer(sd, f"input_blocks.{index}.1.", ch, SDXL_CONTEXT, depth, linear=True)
            skips.append(ch)
            index += 1
        if level < len(mults) - 1:
            sd.conv(f"input_blocks.{index}.0.op", ch, ch)
            skips.append(ch)
            index += 1
    _res_block(sd, "middle_block.0.", ch, ch)
    _transformer(sd, "middle_block.1.", ch, SDXL_CONTEXT, depths[-1], linear=True)
    _res_block(sd, "middle_block.2.", ch, ch)
    index = 0
    for level in reversed(range(len(mults))):
        for block in range(3):
            out = mults[level] * base
            _res_block(sd, f"output_blocks.{index}.0.", ch + skips.pop(), out)
            ch, sub = out, 1
            if depths[level]:
                _transformer(sd, f"output_blocks.{index}.1.", ch, SDXL_CONTEXT, depths[level], linear=True)
                sub = 2
            if level and block == 2:
                sd.conv(f"output_blocks.{index}.{sub}.conv", ch, ch)
            index += 1
    sd.norm("out.0", base)
    sd.conv("out.2", 4, base, std=0.01)
    return {k: v.contiguous() for k, v in sd.tensors.items()}


def sd_vae_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The SD1.x / SDXL VAE (ComfyUI's AutoencoderKL, ch 128, mults 1/2/4/4) with seeded random weights, float16."""
    from comfy.ldm.models.autoencoder import AutoencoderKL  # ComfyUI's own class: its keys are what VAELoader reads
    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}
    model = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in model.state_dict().items():   # ComfyUI's ops skip init: every tensor is drawn here
        if "norm" in key:
            value = torch.ones(tensor.shape) if key.endswith("weight") else torch.zeros(tensor.shape)
        elif key.endswith("bias"):
            value = torch.zeros(tensor.shape)
        else:
            fan_in = max(1, tensor[0].numel()) if tensor.dim() > 1 else 1
            value = torch.randn(tensor.shape, generator=generator) * fan_in ** -0.5
        state[key] = value.to(torch.float16).contiguous()
    return state


def write_once(path: str, build) -> None:
    """Write build()'s state dict to path unless it is there (atomic: two runs may build it at once)."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    save_file({k: v.cpu() for k, v in build().items()}, tmp)
    os.replace(tmp, path)
