"""Tiny random-weight models of SDXL, SD3 and FLUX in their real layouts, detected by ComfyUI's own loading code.

ComfyUI recognises a model family from the keys and shapes of its file, and some sizes are fixed by that detection:
- SDXL: `model_channels=320`, linear transformer projections, `context_dim=2048`, `adm_in_channels=2816` and input
  transformer depths [0, 0, 2, 2, 10, 10] (both ComfyUI versions); the output and middle depths mirror them as in
  SDXL. Only the widths shrink: every level keeps 320 channels (SDXL: 320, 640, 1280). 283 M parameters, written
  in float16 (570 MB).
- SD3 (MMDiT): the hidden size is 64 x depth; depth 2 gives hidden 128, 2 heads. T5-sized context (4096) and a
  2048-wide pooled vector, as SD3 Medium. Under 2 M parameters.
- FLUX: ComfyUI fixes hidden 3072, 24 heads, a 4096-wide context; one double and one single block (FLUX dev has 19
  and 38) with the guidance embedding. About 546 M parameters: the file is written in bfloat16 (1.1 GB).
SD3 and FLUX load only in modern ComfyUI (the 2024 snapshot has no MMDiT or FLUX). Pure torch + safetensors.
"""
from __future__ import annotations

import os

import torch
from safetensors.torch import save_file

from .tiny_models import TIME_EMBED, VAE_FILE, _res_block, _StateDict, _transformer, tiny_taesd_state_dict

SDXL_CHANNELS = 320
SDXL_CONTEXT = 2048
SDXL_ADM = 2816           # pooled CLIP-G (1280) + six 256-wide size embeddings
SDXL_POOLED = 1280
SDXL_DEPTHS = (0, 2, 10)  # transformer blocks per level, as SDXL

SD3_DEPTH = 2
SD3_CONTEXT = 4096
SD3_POOLED = 2048
SD3_POS_EMBED = 16        # positions per side (SD3: 192)

FLUX_HIDDEN = 3072
FLUX_CONTEXT = 4096
FLUX_POOLED = 768
FLUX_HEAD = 128



class _FastStateDict(_StateDict):
    """_StateDict that draws in place (one pass over memory per weight; these models have hundreds of millions)."""

    def randn(self, key, *shape, std=0.02):
        self.tensors[key] = torch.empty(*shape).normal_(0.0, std, generator=self.g)


FAMILY_LATENT_CHANNELS = {"sd15": 4, "sdxl": 4, "sd3": 16, "flux": 16}
# What the conditioning of each family looks like: (context width, pooled width or None).
FAMILY_CONDITIONING = {"sd15": (768, None), "sdxl": (SDXL_CONTEXT, SDXL_POOLED), "sd3": (SD3_CONTEXT, SD3_POOLED),
                       "flux": (FLUX_CONTEXT, FLUX_POOLED)}


def tiny_sdxl_unet_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """SDXL's UNet layout (3 levels, 2 ResBlocks down / 3 up, depths 0/2/10, middle 10) at 320 channels, float16."""
    sd = _FastStateDict(seed)
    c = SDXL_CHANNELS
    sd.linear("time_embed.0", TIME_EMBED, c)
    sd.linear("time_embed.2", TIME_EMBED, TIME_EMBED)
    sd.linear("label_emb.0.0", TIME_EMBED, SDXL_ADM)
    sd.linear("label_emb.0.2", TIME_EMBED, TIME_EMBED)
    sd.conv("input_blocks.0.0", c, 4, std=0.1)
    block = 1
    for level, depth in enumerate(SDXL_DEPTHS):
        for _ in range(2):
            _res_block(sd, f"input_blocks.{block}.0.", c, c)
            if depth:
                _transformer(sd, f"input_blocks.{block}.1.", c, SDXL_CONTEXT, depth, linear=True)
            block += 1
        if level < len(SDXL_DEPTHS) - 1:
            sd.conv(f"input_blocks.{block}.0.op", c, c)   # stride-2 downsampling conv
            block += 1
    _res_block(sd, "middle_block.0.", c, c)
    _transformer(sd, "middle_block.1.", c, SDXL_CONTEXT, SDXL_DEPTHS[-1], linear=True)
    _res_block(sd, "middle_block.2.", c, c)
    block = 0
    for level, depth in reversed(list(enumerate(SDXL_DEPTHS))):
        for i in range(3):   # each concatenates one skip connection (all 320 wide here)
            _res_block(sd, f"output_blocks.{block}.0.", 2 * c, c)
            if depth:
                _transformer(sd, f"output_blocks.{block}.1.", c, SDXL_CONTEXT, depth, linear=True)
            if i == 2 and level > 0:
                sd.conv(f"output_blocks.{block}.{2 if depth else 1}.conv", c, c)   # upsampling conv
            block += 1
    sd.norm("out.0", c)
    sd.conv("out.2", 4, c, std=0.01)
    return {k: v.to(torch.float16).contiguous() for k, v in sd.tensors.items()}


def _mmdit_block(sd: _StateDict, p: str, hidden: int, last: bool):
    # The last joint block's context stream is "pre only": attention input, no projection or MLP after it.
    sd.linear(p + "attn.qkv", 3 * hidden, hidden)
    if not last:
        sd.linear(p + "attn.proj", hidden, hidden)
        sd.linear(p + "mlp.fc1", 4 * hidden, hidden)
        sd.linear(p + "mlp.fc2", hidden, 4 * hidden)
    sd.linear(p + "adaLN_modulation.1", (2 if last else 6) * hidden, hidden)


def tiny_sd3_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """SD3's MMDiT with two joint blocks (hidden 128), 16 latent channels, patch 2."""
    sd = _StateDict(seed)
    hidden = 64 * SD3_DEPTH
    sd.randn("pos_embed", 1, SD3_POS_EMBED ** 2, hidden)
    sd.randn("x_embedder.proj.weight", hidden, 16, 2, 2, std=0.1)
    sd.const("x_embedder.proj.bias", 0, hidden)
    sd.linear("t_embedder.mlp.0", hidden, 256)
    sd.linear("t_embedder.mlp.2", hidden, hidden)
    sd.linear("y_embedder.mlp.0", hidden, SD3_POOLED)
    sd.linear("y_embedder.mlp.2", hidden, hidden)
    sd.linear("context_embedder", hidden, SD3_CONTEXT)
    for d in range(SD3_DEPTH):
        _mmdit_block(sd, f"joint_blocks.{d}.context_block.", hidden, last=d == SD3_DEPTH - 1)
        _mmdit_block(sd, f"joint_blocks.{d}.x_block.", hidden, last=False)
    sd.linear("final_layer.linear", 2 * 2 * 16, hidden, std=0.01)
    sd.linear("final_layer.adaLN_modulation.1", 2 * hidden, hidden)
    return {k: v.contiguous() for k, v in sd.tensors.items()}


def tiny_flux_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """FLUX dev's DiT (guidance embedding) with one double-stream and one single-stream block, in bfloat16."""
    sd = _FastStateDict(seed)
    h = FLUX_HIDDEN
    sd.linear("img_in", h, 16 * 4)
    for name, width in (("time_in", 256), ("vector_in", FLUX_POOLED), ("guidance_in", 256)):
        sd.linear(f"{name}.in_layer", h, width)
        sd.linear(f"{name}.out_layer", h, h)
    sd.linear("txt_in", h, FLUX_CONTEXT)
    for stream in ("img", "txt"):
        p = f"double_blocks.0.{stream}_"
        sd.linear(p + "mod.lin", 6 * h, h)
        sd.linear(p + "attn.qkv", 3 * h, h)
        sd.const(p + "attn.norm.query_norm.scale", 1, FLUX_HEAD)
        sd.const(p + "attn.norm.key_norm.scale", 1, FLUX_HEAD)
        sd.linear(p + "attn.proj", h, h)
        sd.linear(p + "mlp.0", 4 * h, h)
        sd.linear(p + "mlp.2", h, 4 * h)
    p = "single_blocks.0."
    sd.linear(p + "linear1", 3 * h + 4 * h, h)
    sd.linear(p + "linear2", h, h + 4 * h)
    sd.const(p + "norm.query_norm.scale", 1, FLUX_HEAD)
    sd.const(p + "norm.key_norm.scale", 1, FLUX_HEAD)
    sd.linear(p + "modulation.lin", 3 * h, h)
    sd.linear("final_layer.linear", 2 * 2 * 16, h, std=0.01)
    sd.linear("final_layer.adaLN_modulation.1", 2 * h, h)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in sd.tensors.items()}


FAMILY_BUILDERS = {"sdxl": tiny_sdxl_unet_state_dict, "sd3": tiny_sd3_state_dict, "flux": tiny_flux_state_dict}


def write_family_model(models_dir, family: str) -> dict[str, str]:
    """Write the tiny `family` model under models_dir/unet/ and a matching TAESD under models_dir/vae/ (idempotent)."""
    files = {"unet": (f"tiny_{family}_unet.safetensors", FAMILY_BUILDERS[family])}
    channels = FAMILY_LATENT_CHANNELS[family]
    vae_name = VAE_FILE if channels == 4 else f"tiny_taesd_{channels}ch_vae.safetensors"
    files["vae"] = (vae_name, lambda: tiny_taesd_state_dict(latent_channels=channels))
    for kind, (name, build) in files.items():
        path = os.path.join(models_dir, kind, name)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"   # two test runs may build the same file at once
            save_file(build(), tmp)
            os.replace(tmp, path)
    return {kind: name for kind, (name, _) in files.items()}
