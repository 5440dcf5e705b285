"""Checks of the latent and the VAE against the model before a search samples: a wrong one gets an error naming the
fix (which latent node, which VAE) instead of a raw tensor error from deep inside sampling."""
from __future__ import annotations

import torch

# The empty-latent node that makes latents of each channel count (ComfyUI's own nodes).
EMPTY_LATENT_NODES = {4: "Empty Latent Image (SD1.5, SDXL)", 16: "EmptySD3LatentImage (SD3, FLUX)",
                      128: "the model's empty video latent node (e.g. EmptyLTXVLatentVideo)"}


# Video models: the empty latent node ComfyUI's own templates use, by latent format.
VIDEO_LATENT_NODES = {"Wan21": "EmptyHunyuanLatentVideo (Wan 2.1 templates)", "HunyuanVideo": "EmptyHunyuanLatentVideo",
                      "LTXV": "EmptyLTXVLatentVideo", "Mochi": "EmptyMochiLatentVideo",
                      "Wan22": "Wan22ImageToVideoLatent (Wan 2.2 5B templates)"}


def latent_format_of(base_model):
    return getattr(base_model, "latent_format", None)


def latent_channels_of(base_model) -> int | None:
    """Channels of the model's latent space (modern: latent_format.latent_channels; 2024: its preview factors)."""
    latent_format = latent_format_of(base_model)
    channels = getattr(latent_format, "latent_channels", None)
    if channels is None and getattr(latent_format, "latent_rgb_factors", None) is not None:
        channels = len(latent_format.latent_rgb_factors)
    return int(channels) if channels else None


def spatial_dims_of(base_model) -> int:
    """2 for image models, 3 for video models (modern ComfyUI's latent_format.latent_dimensions), 1 for audio."""
    return int(getattr(latent_format_of(base_model), "latent_dimensions", 2))


def _format_name(base_model) -> str:
    latent_format = latent_format_of(base_model)
    return type(latent_format).__name__ if latent_format is not None else "unknown"


def _latent_node(channels: int | None) -> str:
    return EMPTY_LATENT_NODES.get(channels, "the empty latent node made for this model") if channels else \
        "the empty latent node made for this model"


def check_latent(base_model, latent, name: str = "latent_image") -> None:
    """Refuse latents the search cannot use: not a tensor, empty batch, wrong number of dimensions (5-D only for
    video models), channels other than the model's, NaN/inf values."""
    if not isinstance(latent, torch.Tensor):
        raise ValueError(f"'{name}' must be a LATENT (e.g. from Empty Latent Image or VAE Encode), got "
                         f"{type(latent).__name__}")
    channels, dims = latent_channels_of(base_model), spatial_dims_of(base_model)
    node = VIDEO_LATENT_NODES.get(_format_name(base_model), _latent_node(channels)) if dims == 3 else \
        _latent_node(channels)
    if latent.dim() >= 1 and latent.shape[0] == 0:
        raise ValueError(f"'{name}' is an empty batch (shape {tuple(latent.shape)}): give it at least one latent "
                         f"(batch_size >= 1 in {node})")
    wanted = dims + 2
    if latent.dim() != wanted:
        if latent.dim() == 5 and dims == 2:
            fix = (f"this is an image model ({_format_name(base_model)}), and video (5-D) latents only suit video "
                   f"models: make the latent with {node}")
        elif dims == 3:
            fix = (f"this is a video model ({_format_name(base_model)}): make the latent with its empty video "
                   f"latent node, {node}")
        else:
            fix = (f"a latent is [batch, channels, height, width]; make it with {node} or VAE Encode (a node that "
                   "dropped or added a dimension fed this one)")
        raise ValueError(f"'{name}' has {latent.dim()} dimensions (shape {tuple(latent.shape)}), the model needs "
                         f"{wanted}: {fix}")
    if channels is not None and latent.shape[1] != channels:
        raise ValueError(f"'{name}' has {latent.shape[1]} channels but this model ({_format_name(base_model)}) works "
                         f"in a {channels}-channel latent space: make the latent with {node}, or VAE Encode with "
                         "this model's VAE")
    bad = int((~torch.isfinite(latent)).sum()) if latent.is_floating_point() else 0
    if bad:
        raise ValueError(f"'{name}' holds NaN/inf values ({bad} of {latent.numel()}): the node that made it (or the "
                         f"noise added to it) produced them, e.g. VAE Encode of a broken image or a latent math node "
                         f"dividing by zero. Make the latent again ({node}, or VAE Encode of a valid image)")


def check_vae(base_model, vae, name: str = "vae") -> None:
    """Refuse a VAE of another latent space than the model's (its latents would decode to noise or fail)."""
    vae_channels = getattr(vae, "latent_channels", None)
    channels = latent_channels_of(base_model)
    if vae_channels is not None and channels is not None and int(vae_channels) != channels:
        raise ValueError(f"'{name}' decodes {vae_channels}-channel latents but this model ({_format_name(base_model)})"
                         f" makes {channels}-channel ones: connect this model's own VAE (its checkpoint's VAE, or a "
                         f"VAE / TAESD made for {_format_name(base_model)}: taesd for SD1.5, taesdxl for SDXL, taesd3 "
                         "for SD3, taef1 for FLUX)")


def check_search_inputs(base_model, latent, vae) -> None:
    """Everything the search checks against the model before it samples: the latent, then the scoring VAE."""
    check_latent(base_model, latent)
    check_vae(base_model, vae)
