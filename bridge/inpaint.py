"""Inpainting for particle rows: ComfyUI's inpainting wrapper (KSamplerX0Inpaint) made per item, not per batch.

ComfyUI blends its B rows of input latent and noise into the model's input and output where the noise mask is 0.
A search calls the model on B·N particle rows (DFS: any subset of items). search_core hands every model call the
rows of its particles' items for each per-item tensor in ``extra_args``, so the input latent and the noise travel
there beside ComfyUI's ``denoise_mask``, and the wrapper's own blend runs unchanged on matching rows.
"""
from __future__ import annotations

import torch

LATENT_KEY = "diffusion_search_inpaint_latent"
NOISE_KEY = "diffusion_search_inpaint_noise"


class ParticleInpaint:
    """The sampler's model (KSamplerX0Inpaint) with its input latent and noise taken per row from extra_args."""

    def __init__(self, model_k):
        self.model_k = model_k
        self.inner_model = model_k.inner_model  # compat.base_model_of walks .inner_model

    def __call__(self, x, sigma, **extra_args):
        latent, noise = extra_args.pop(LATENT_KEY), extra_args.pop(NOISE_KEY)
        saved = self.model_k.latent_image, self.model_k.noise
        self.model_k.latent_image, self.model_k.noise = latent, noise
        try:
            return self.model_k(x, sigma, **extra_args)
        finally:
            self.model_k.latent_image, self.model_k.noise = saved


def per_row_inpainting(model_k, extra_args: dict, n_items: int):
    """(model, extra_args) for a search; unchanged without a noise mask, else ParticleInpaint and per-item args."""
    mask = extra_args.get("denoise_mask")
    if mask is None:
        return model_k, extra_args
    latent, noise = getattr(model_k, "latent_image", None), getattr(model_k, "noise", None)
    if not isinstance(latent, torch.Tensor) or not isinstance(noise, torch.Tensor):
        raise ValueError("inpainting needs ComfyUI's input latent and noise on the sampler's model (KSAMPLER's "
                         "inpainting wrapper); this ComfyUI version does not provide them: remove the noise mask")
    args = dict(extra_args)
    # One row per item, so search_core treats them as per-item (a batch of 1 or a mask for all items broadcasts).
    args["denoise_mask"] = _rows(mask, n_items, "noise mask")
    args[LATENT_KEY] = _rows(latent, n_items, "input latent")
    args[NOISE_KEY] = _rows(noise, n_items, "noise")
    return ParticleInpaint(model_k), args


def _rows(value: torch.Tensor, n_items: int, name: str) -> torch.Tensor:
    if value.shape[0] == n_items:
        return value
    if value.shape[0] == 1:
        return value.expand(n_items, *value.shape[1:])
    raise ValueError(f"the {name} has {value.shape[0]} rows for a batch of {n_items} latents; give one mask per "
                     f"latent or one mask for all")
