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


def _transformer(sd: _StateDict, p: str, c: int, context: int = CONTEXT, depth: int = 1, linear: bool = False):
    """SpatialTransformer: conv proj_in/out (SD1.x) or linear ones (SDXL), `depth` blocks attending to `context`."""
    sd.norm(p + "norm", c)
    if linear:
        sd.linear(p + "proj_in", c, c)
    else:
        sd.conv(p + "proj_in", c, c, k=1)   # a conv proj_in means use_linear_in_transformer=False (SD1.x)
    for d in range(depth):
        block = p + f"transformer_blocks.{d}."
        for attn, kv_dim in (("attn1", c), ("attn2", context)):
            sd.linear(block + attn + ".to_q", c, c, bias=False)
            sd.linear(block + attn + ".to_k", c, kv_dim, bias=False)
            sd.linear(block + attn + ".to_v", c, kv_dim, bias=False)
            sd.linear(block + attn + ".to_out.0", c, c)
        for n in ("norm1", "norm2", "norm3"):
            sd.norm(block + n, c)
        sd.linear(block + "ff.net.0.proj", 8 * c, c)   # GEGLU: two halves of 4c
        sd.linear(block + "ff.net.2", c, 4 * c)
    if linear:
        sd.linear(p + "proj_out", c, c)
    else:
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


# Encoder: 8x8 block means of the photo's colours in opponent channels (rows: latent channels; columns: R, G, B;
# last column: offset), at about the scale of real SD latents (std ~5 before the model's 0.18215), so VAE Encode
# keeps a photo's layout and img2img tests can tell the input latent from zeros. The decoder stays random.
ENCODER_GAIN = 24.0
ENCODER_COLOURS = ((0.299, 0.587, 0.114, -0.5),   # luminance
                   (1.0, -1.0, 0.0, 0.0),         # red - green
                   (-0.5, -0.5, 1.0, 0.0),        # blue - yellow
                   (0.0, 1.0, -1.0, 0.0))         # green - blue


def _encoder(sd: _StateDict, width: int) -> None:
    """TAESD encoder weights that compute ENCODER_COLOURS of 8x8 block means (input in [0, 1], so ReLUs pass)."""
    enc = "taesd_encoder."

    def zeros(key, *shape):
        sd.tensors[key] = torch.zeros(*shape)

    def block(p):  # Block: Sequential(conv, ReLU, conv, ReLU, conv) + identity skip; zero convs: ReLU(x) = x
        for i in (0, 2, 4):
            zeros(f"{p}.conv.{i}.weight", width, width, 3, 3)
            zeros(f"{p}.conv.{i}.bias", width)

    first = torch.zeros(width, 3, 3, 3)
    first[torch.arange(3), torch.arange(3), 1, 1] = 1.0   # channels 0-2 carry R, G, B
    sd.tensors[enc + "0.weight"], sd.tensors[enc + "0.bias"] = first, torch.zeros(width)
    block(enc + "1")
    i = 2
    for _ in range(3):                    # stride-2 conv (2x2 mean: taps 1-2 of a padded 3x3), three blocks
        down = torch.zeros(width, width, 3, 3)
        down[torch.arange(3), torch.arange(3), 1:, 1:] = 0.25
        sd.tensors[f"{enc}{i}.weight"] = down
        i += 1
        for _ in range(3):
            block(f"{enc}{i}")
            i += 1
    colours = torch.tensor(ENCODER_COLOURS) * ENCODER_GAIN
    last = torch.zeros(LATENT_CHANNELS, width, 3, 3)
    last[:, :3, 1, 1] = colours[:, :3]
    sd.tensors[f"{enc}{i}.weight"], sd.tensors[f"{enc}{i}.bias"] = last, colours[:, 3].clone()


def tiny_taesd_state_dict(seed: int = 1, width: int = 64,
                          latent_channels: int = LATENT_CHANNELS) -> dict[str, torch.Tensor]:
    """TAESD encoder + decoder (comfy/taesd/taesd.py layout, nn.Sequential indices): designed encoder, random decoder.

    16 latent channels (SD3 / FLUX) keep a random encoder: the designed one maps colours to 4 channels."""
    sd = _StateDict(seed)

    def block(p):  # Block: Sequential(conv, ReLU, conv, ReLU, conv) with an identity skip
        for i in (0, 2, 4):
            sd.conv(f"{p}.conv.{i}", width, width, std=0.05)

    # The random encoder is drawn first as before, then replaced, so the decoder's weights stay what they were.
    enc = "taesd_encoder."
    sd.conv(enc + "0", width, 3, std=0.05)
    block(enc + "1")
    i = 2
    for _ in range(3):
        sd.conv(f"{enc}{i}", width, width, bias=False, std=0.05)
        i += 1
        for _ in range(3):
            block(f"{enc}{i}")
            i += 1
    sd.conv(f"{enc}{i}", latent_channels, width, std=0.05)
    if latent_channels == LATENT_CHANNELS:
        _encoder(sd, width)

    dec = "taesd_decoder."                # index 0 is Clamp, 2 is ReLU: no parameters
    sd.conv(dec + "1", width, latent_channels, std=0.05)
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
