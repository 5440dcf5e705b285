"""A TAESD-format VAE for the digits world, constructed exactly (weights written in code, nothing trained).

A latent is 4 x 8 x 8; every channel carries the same 8 x 8 grey digit. Decoding upsamples it 8x (nearest) to a
64 x 64 grey RGB image; encoding averages each 8 x 8 block of the image's luma (0.25 R + 0.5 G + 0.25 B) and writes it
to all four channels. So decode(encode(image)) is exact for blocky grey images and encode(decode(z)) == z wherever
the four channels agree (the data and what the denoiser learns); where they disagree, decoding uses their mean.

How ComfyUI runs TAESD (both versions, comfy/taesd/taesd.py + comfy/sd.py): decode = clamp(decoder(z * vae_scale))
after tanh(x / 3) * 3 at the decoder's input; encode = encoder(pixels in [0, 1]) / vae_scale. The latents stay
within |z * vae_scale| <= 0.25, where that tanh is the identity to 0.1 %. Every weight is 0, 1/4, 1/2 or 1 and
vae_scale is 3/64, all exact in float8 (e4m3), so the file is stored in float8 with no loss. Blocks get zero convs:
a Block is relu(conv(x) + x), the identity on the non-negative values that flow through it. The 2024 TAESD has no
vae_shift, so there is none (it would be 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

WIDTH = 64
LATENT_CHANNELS = 4
SCALE = 3.0 / 64.0                  # vae_scale: latent z -> decoder input u = z * SCALE, u = (grey - 0.5) / 2
SD15_SCALE_FACTOR = 0.18215         # ComfyUI's SD15 latent format: the model sees z * 0.18215
UPSCALE = 8
LUMA = (0.25, 0.5, 0.25)


def grey_to_latent(grey: torch.Tensor) -> torch.Tensor:
    """(B, 8, 8) grey in [0, 1] -> (B, 4, 8, 8) VAE latents (what VAEEncode returns for the decoded image)."""
    u = (grey - 0.5) / 2
    return (u / SCALE)[:, None].expand(-1, LATENT_CHANNELS, -1, -1).contiguous()


def latent_to_model(z: torch.Tensor) -> torch.Tensor:
    """VAE latent -> the denoiser's space (ComfyUI's SD15 process_latent_in)."""
    return z * SD15_SCALE_FACTOR


def model_to_latent(x: torch.Tensor) -> torch.Tensor:
    return x / SD15_SCALE_FACTOR


def decode(z: torch.Tensor) -> torch.Tensor:
    """(B, 4, 8, 8) latents -> (B, 3, 64, 64) images in [0, 1], the same function the VAE file computes."""
    t = torch.tanh(z * SCALE / 3) * 3
    grey = (0.5 * t.sum(dim=1, keepdim=True) + 0.5).clamp(0, 1)
    return F.interpolate(grey, scale_factor=UPSCALE, mode="nearest").expand(-1, 3, -1, -1)


def encode(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 64, 64) images in [0, 1] -> (B, 4, 8, 8) latents, the same function the VAE file computes."""
    luma = sum(w * images[:, i] for i, w in enumerate(LUMA))
    return grey_to_latent(F.avg_pool2d(luma[:, None], UPSCALE)[:, 0])


def taesd_state_dict() -> dict[str, torch.Tensor]:
    """The TAESD encoder + decoder weights (comfy/taesd/taesd.py layout, nn.Sequential indices), float32."""
    sd: dict[str, torch.Tensor] = {}

    def conv(key, c_out, c_in, bias=True):
        sd[key + ".weight"] = torch.zeros(c_out, c_in, 3, 3)
        if bias:
            sd[key + ".bias"] = torch.zeros(c_out)
        return sd[key + ".weight"]

    def block(key):                  # relu(conv(x) + x) with zero convs: identity on x >= 0
        for i in (0, 2, 4):
            conv(f"{key}.conv.{i}", WIDTH, WIDTH)

    enc = "taesd_encoder."
    w = conv(enc + "0", WIDTH, 3)
    for c, weight in enumerate(LUMA):   # channel 0 = luma, centre tap
        w[0, c, 1, 1] = weight
    block(enc + "1")
    i = 2
    for _ in range(3):                  # stride-2 conv with padding 1: taps (1,1),(1,2),(2,1),(2,2) = a 2x2 block mean
        w = conv(f"{enc}{i}", WIDTH, WIDTH, bias=False)
        w[0, 0, 1:3, 1:3] = 0.25
        i += 1
        for _ in range(3):
            block(f"{enc}{i}")
            i += 1
    w = conv(f"{enc}{i}", LATENT_CHANNELS, WIDTH)
    w[:, 0, 1, 1] = 0.5                 # u = luma / 2 - 1/4 in every latent channel
    sd[f"{enc}{i}.bias"][:] = -0.25

    dec = "taesd_decoder."              # 0 is the tanh clamp, 2 a ReLU: no parameters
    w = conv(dec + "1", WIDTH, LATENT_CHANNELS)
    w[0, :, 1, 1] = 0.5                 # grey = 0.5 + 0.5 * sum of the 4 channels' u = 0.5 + 2 u
    sd[dec + "1.bias"][0] = 0.5
    i = 3
    for _ in range(3):                  # three blocks, nearest upsample, identity conv: 8x up
        for _ in range(3):
            block(f"{dec}{i}")
            i += 1
        i += 1
        w = conv(f"{dec}{i}", WIDTH, WIDTH, bias=False)
        w[0, 0, 1, 1] = 1.0
        i += 1
    block(f"{dec}{i}")
    w = conv(f"{dec}{i + 1}", 3, WIDTH)
    w[:, 0, 1, 1] = 1.0                 # R = G = B = grey; TAESD maps it to 2 grey - 1, ComfyUI back to grey
    sd["vae_scale"] = torch.tensor(SCALE)
    return sd
