"""The one verifier interface: images [B,H,W,3] in [0,1] + prompts -> rewards [B] (paper §3, "verifiers")."""
from __future__ import annotations

import logging
from typing import Sequence

import torch

logger = logging.getLogger(__name__)

# Pixel values may overshoot [0, 1] slightly after a VAE decode; beyond this it is a caller bug.
RANGE_TOLERANCE = 1e-3


class RewardError(ValueError):
    """A verifier produced NaN or infinite rewards; never let them reach resampling weights."""


class MissingWeightsError(FileNotFoundError):
    """A weights file a loader needs is absent; the message names the file, its folder and its source."""

    def __init__(self, filename: str, folder: str, source: str, looked_in: str | None = None):
        where = f" (looked in {looked_in})" if looked_in else ""
        self.message = (
            f"Missing verifier file '{filename}'{where}. Put it in the ComfyUI models folder "
            f"'models/{folder}/' (or pass its path explicitly). Get it from: {source}. "
            "Verifiers never download anything."
        )
        super().__init__(self.message)
        self.filename, self.folder, self.source = filename, folder, source

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)  # OSError would read our positional args as (errno, strerror, ...)

    def __str__(self) -> str:
        return self.message


def normalise_prompts(prompts: str | Sequence[str] | None, batch: int) -> list[str]:
    """One prompt per image: a single string (or one-element list) is repeated over the batch."""
    if prompts is None:
        return [""] * batch
    if isinstance(prompts, str):
        return [prompts] * batch
    prompts = list(prompts)
    if not all(isinstance(p, str) for p in prompts):
        raise TypeError("prompts must be a string or a list of strings")
    if len(prompts) == 1:
        return prompts * batch
    if len(prompts) != batch:
        raise ValueError(
            f"got {len(prompts)} prompts for {batch} images: pass one prompt, or exactly one per image"
        )
    return prompts


def check_images(images: torch.Tensor) -> None:
    """Validate ComfyUI's IMAGE layout: float [B,H,W,3] with values in [0,1]."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor [B,H,W,3], got {type(images).__name__}")
    if images.dim() != 4 or images.shape[-1] != 3:
        hint = " (looks channels-first: permute(0, 2, 3, 1) it)" if images.dim() == 4 and images.shape[1] == 3 else ""
        raise ValueError(f"images must be shaped [B,H,W,3] (ComfyUI IMAGE layout), got {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0,1], got dtype {images.dtype}: divide uint8 images by 255")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch: pass at least one image")
    with torch.no_grad():
        lo, hi = images.detach().aminmax()
    if not torch.isfinite(lo) or not torch.isfinite(hi):
        raise ValueError("images contain NaN or inf: check the decoder output before scoring")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"images must be in [0,1], got values in [{lo.item():.3g}, {hi.item():.3g}]: "
            "map VAE output with (x + 1) / 2 and clamp(0, 1), or divide 0-255 images by 255"
        )


def make_grad_ready(module: torch.nn.Module) -> None:
    """Replace inference-mode parameters/buffers with normal frozen copies so autograd can save them."""
    with torch.inference_mode(False):
        for sub in module.modules():
            for key, param in list(sub._parameters.items()):
                if param is not None and param.is_inference():
                    sub._parameters[key] = torch.nn.Parameter(param.clone(), requires_grad=False)
            for key, buf in list(sub._buffers.items()):
                if buf is not None and buf.is_inference():
                    sub._buffers[key] = buf.clone()


class Verifier(torch.nn.Module):
    """Base class: validates, chunks and checks rewards; subclasses implement `score_chunk` (NCHW in [0,1])."""

    name: str = "verifier"
    differentiable: bool = True
    needs_prompt: bool = False

    def __init__(self, *, chunk_size: int = 8, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.device = torch.device(device)
        self.dtype = dtype

    def finish_init(self) -> "Verifier":
        """Move weights to the verifier's device/dtype and freeze them; call at the end of a subclass __init__."""
        self.to(device=self.device, dtype=self.dtype)
        self.requires_grad_(False)
        self.eval()
        return self

    def to(self, *args, **kwargs) -> "Verifier":
        """Module.to that also moves where images are sent (self.device / self.dtype)."""
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        if device is not None:
            self.device = torch.device(device)
        if dtype is not None and dtype.is_floating_point:
            self.dtype = dtype
        return super().to(*args, **kwargs)

    def key_fields(self) -> dict:
        """The settings that shape this verifier's rewards, as plain data (numbers, strings, lists, dicts): what the
        state key of a search hashes besides the verifier's weights (bridge/state_key.py). A subclass with settings
        of its own (a label, a preprocessing, weights of parts) adds them; chunking and the device are not settings."""
        return {"name": self.name, "differentiable": self.differentiable, "needs_prompt": self.needs_prompt}

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Rewards [b] for images [b,3,H,W] in [0,1] on self.device/self.dtype; override in subclasses."""
        raise NotImplementedError

    def score(self, images: torch.Tensor, prompts: str | Sequence[str] | None = None, *, grad: bool = False) -> torch.Tensor:
        """Rewards [B] float32 (higher is better) on the images' device; differentiable in images if grad=True."""
        check_images(images)
        prompts = normalise_prompts(prompts, images.shape[0])
        if grad and not self.differentiable:
            raise ValueError(f"verifier '{self.name}' is not differentiable: use grad=False or pick a differentiable verifier")
        if grad:
            if images.is_inference():
                raise ValueError(
                    "images were made under torch.inference_mode() and cannot carry gradients: build them inside "
                    "`with torch.inference_mode(False):` (ComfyUI runs nodes in inference mode)"
                )
            make_grad_ready(self)
            with torch.inference_mode(False), torch.enable_grad():
                rewards = self._score_all(images, prompts)
        else:
            with torch.no_grad():
                rewards = self._score_all(images, prompts)
        return rewards

    def _score_all(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pieces = []
        for start in range(0, images.shape[0], self.chunk_size):
            chunk = images[start:start + self.chunk_size]
            chunk = chunk.to(device=self.device, dtype=self.dtype).permute(0, 3, 1, 2).clamp(0, 1)
            rewards = self.score_chunk(chunk, prompts[start:start + self.chunk_size])
            pieces.append(rewards.reshape(-1).float())
        rewards = torch.cat(pieces).to(images.device)
        bad = ~torch.isfinite(rewards.detach())
        if bad.any():
            raise RewardError(
                f"verifier '{self.name}' returned NaN/inf rewards for images {bad.nonzero().flatten().tolist()}: "
                "check the images (NaN latents, a broken VAE decode) or run the verifier in float32"
            )
        return rewards

    def extra_repr(self) -> str:
        return f"name={self.name!r}, differentiable={self.differentiable}, chunk_size={self.chunk_size}"
