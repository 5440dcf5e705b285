"""The scoring path: x0 prediction -> process_latent_out -> decode (VAE or TAESD, optionally smaller) -> verifier.

Video latents [M, C, T, h, w] are scored frame by frame and aggregated per particle (bridge/video.py).
"""
from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F

from . import compat
from .video import VideoScoring, frame_indices, frames_first, preview_frames, video_reward

log = logging.getLogger(__name__)


class LatentScorer:
    """Turns x0 predictions in the model's latent space into rewards, batched in chunks (paper Sec. 3: f(x_{0|t}))."""

    def __init__(self, base_model, vae, verifier, prompt: str, *, score_size: int = 0, chunk_size: int = 8,
                 check_interrupt=compat.check_interrupted, residency=None, video: VideoScoring | None = None):
        if vae is None:
            raise ValueError("scoring needs a VAE to decode latents into images: connect a VAE (or a TAESD VAE "
                             "from VAELoader for cheap intermediate scores) to the 'vae' input")
        if verifier is None:
            raise ValueError("scoring needs a verifier: connect a DiffusionSearch verifier loader to 'verifier'")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.base_model = base_model
        self.vae = vae
        self.verifier = verifier
        self.prompt = prompt
        self.score_size = int(score_size)
        self.chunk_size = int(chunk_size)
        self.check_interrupt = check_interrupt
        self._grad_decoder = None
        self._affine_out = None   # (key, a, b) of process_latent_out for the differentiable path
        self._vae_loaded = False
        self.residency = residency   # memory.ScoringResidency: VAE/verifier placement around each scoring call
        self.video = (video or VideoScoring()).validate()
        self.evaluations = 0   # verifier evaluations (images scored), reported in progress and events
        self.seconds = 0.0     # wall time spent decoding and scoring (benchmarks separate it from search overhead)

    # -- decoding -------------------------------------------------------------------------------------------------
    def _latent_out(self, x0: torch.Tensor) -> torch.Tensor:
        """process_latent_out, differentiable when x0 needs gradients: some latent formats (Wan, LTXV) hold per-channel
        mean/std tensors made under inference mode, which autograd refuses to save; their map is affine per channel,
        so it is applied as x·a + b with a, b taken from it once as normal tensors."""
        if not x0.requires_grad:
            return self.base_model.process_latent_out(x0)
        key = (x0.dim(), x0.shape[1], x0.device, x0.dtype)
        if self._affine_out is None or self._affine_out[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                probe = torch.zeros((3, x0.shape[1]) + (1,) * (x0.dim() - 2), device=x0.device, dtype=x0.dtype)
                probe[1], probe[2] = 1, 2
                out = self.base_model.process_latent_out(probe).clone()
                offset, scale = out[:1], out[1:2] - out[:1]
                if not torch.allclose(out[2:3], offset + 2 * scale, rtol=1e-4, atol=1e-5):
                    raise ValueError("this model's latent format is not affine per channel, so verifier gradients "
                                     "cannot reach its latents: set langevin_steps to 0 in Local Search Settings")
            self._affine_out = (key, scale, offset)
        return x0 * self._affine_out[1] + self._affine_out[2]

    def _to_vae_latent(self, x0: torch.Tensor) -> torch.Tensor:
        latent = self._latent_out(x0)
        if self.score_size > 0:
            # Shrink the latent, not the image: decoding cost scales with the latent area.
            ratio = getattr(self.vae, "upscale_ratio", 8)
            ratio = ratio[-1] if isinstance(ratio, (tuple, list)) else ratio   # video VAEs: (time, h, w)
            longest = max(latent.shape[-2:]) * ratio
            if self.score_size < longest:
                scale = self.score_size / longest
                size = [max(1, round(s * scale)) for s in latent.shape[-2:]]
                flat = latent.movedim(2, 1).flatten(0, 1) if latent.dim() == 5 else latent   # frames into the batch
                flat = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=True)
                latent = flat.reshape(latent.shape[0], latent.shape[2], latent.shape[1], *size).movedim(1, 2) \
                    if latent.dim() == 5 else flat
        return latent

    def _decode_with(self, module, latent: torch.Tensor) -> torch.Tensor:
        vae = self.vae
        latent = latent.to(device=vae.device, dtype=vae.vae_dtype)
        if latent.dim() == 4:
            # NHWC is the fast layout of oneDNN and cuDNN convolutions: 2-3x faster decodes on CPU in bf16.
            latent = latent.contiguous(memory_format=torch.channels_last)
        pixels = module.decode(latent).float()
        return vae.process_output(pixels).movedim(1, -1)

    def _ensure_vae_loaded(self) -> None:
        # Once per search: asking ComfyUI's memory manager at every chunk costs more than a tiny decode.
        if self.residency is None and not self._vae_loaded:
            compat.load_models_to_device([self.vae.patcher])
            self._vae_loaded = True

    def _decode_rows(self, x0: torch.Tensor) -> int:
        """Particles decoded per batch: chunk_size, fewer when the VAE's own estimate says the GPU is short."""
        rows = self.chunk_size
        estimate = getattr(self.vae, "memory_used_decode", None)
        device = torch.device(self.vae.device)
        if estimate is not None and device.type == "cuda":
            per_row = float(estimate([1, *self._to_vae_latent(x0[:1]).shape[1:]], self.vae.vae_dtype))
            free = compat.free_memory_bytes(device)
            rows = max(1, min(rows, int(free // max(per_row, 1.0))))
        return rows

    def _scoring_call(self, leave: bool = True):
        """Context for one scoring call: the VAE/verifier come to the device and (``leave``) go if memory is short."""
        return _Residency(self.residency, leave)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """IMAGE batch [M, H, W, 3] in [0, 1] for x0 predictions [M, C, h, w] (no gradients)."""
        self._ensure_vae_loaded()
        return self._decode_with(self.vae.first_stage_model, self._to_vae_latent(x0))

    def decode_differentiable(self, x0: torch.Tensor) -> torch.Tensor:
        """Same as decode, through a VAE copy made outside inference mode so autograd reaches x0."""
        return self._decode_with(self._grad_module(), self._to_vae_latent(x0))

    def _grad_module(self):
        if self._grad_decoder is None:
            self._ensure_vae_loaded()
            self._grad_decoder = compat.copy_for_grad(self.vae.first_stage_model)
        return self._grad_decoder

    def frames(self, x0: torch.Tensor, differentiable: bool = False) -> torch.Tensor:
        """The frames scored for video x0 predictions [M, C, T, h, w]: [M, K, H, W, 3] in [0, 1]."""
        spec, m = self.video, x0.shape[0]
        index = frame_indices(x0.shape[2], spec.frames)
        if spec.decoder == "preview":
            ratio = getattr(self.vae, "upscale_ratio", 8)
            ratio = int(ratio[-1] if isinstance(ratio, (tuple, list)) else ratio)
            images = preview_frames(x0[:, :, index], self.base_model.latent_format, ratio)
            return images.reshape(m, len(index), *images.shape[1:])
        module = self._grad_module() if differentiable else self.vae.first_stage_model
        if not differentiable:
            self._ensure_vae_loaded()
        if spec.frames == 0:   # the whole video, decoded causally: every frame, exact
            return self._decode_with(module, self._to_vae_latent(x0))
        latent = frames_first(self._to_vae_latent(x0[:, :, index]))   # each chosen frame decoded on its own
        images = self._decode_with(module, latent)                     # [M·K, 1, H, W, 3]
        return images.reshape(m, len(index), *images.shape[-3:])

    def _rewards(self, x0: torch.Tensor, grad: bool) -> torch.Tensor:
        """Rewards [M] of one chunk of x0 predictions (images, or videos scored frame by frame)."""
        if x0.dim() == 5:
            frames = self.frames(x0, differentiable=grad)                # [M, K, H, W, 3]
            flat = frames.flatten(0, 1)
            frame_rewards = self._verify(flat, grad)
            self.evaluations += flat.shape[0]
            return video_reward(frame_rewards.to(x0.device).reshape(frames.shape[:2]), frames.to(x0.device),
                                self.video)
        images = self.decode_differentiable(x0) if grad else self.decode(x0)
        self.evaluations += x0.shape[0]
        return self._verify(images, grad).to(x0.device)

    def _verify(self, images: torch.Tensor, grad: bool) -> torch.Tensor:
        """The verifier's rewards, one call per verifier chunk with a Cancel check between: a slow verifier on a large
        decode chunk must not hold Cancel up (batch-relative verifiers, z-scores or ranks, see the chunk at once)."""
        rows = images.shape[0]
        if not getattr(self.verifier, "batch_relative", False):
            rows = max(1, int(getattr(self.verifier, "chunk_size", 0) or rows))
        pieces = []
        for start in range(0, images.shape[0], rows):
            if start:
                self.check_interrupt()
            part = images[start:start + rows]
            pieces.append(self.verifier.score(part, [self.prompt] * part.shape[0], grad=grad).float())
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    # -- scoring --------------------------------------------------------------------------------------------------
    def score(self, x0: torch.Tensor) -> torch.Tensor:
        """Rewards [M] (float32, on x0's device) of the selecting/guiding verifier, no gradients."""
        started = time.perf_counter()
        rewards = []
        with torch.no_grad(), self._scoring_call():
            for chunk in x0.split(self._decode_rows(x0)):
                self.check_interrupt()
                rewards.append(self._rewards(chunk, grad=False))
        rewards = torch.cat(rewards)
        _synchronize(x0.device)  # the search reads the rewards at once; count the wait here, not in the search
        self.seconds += time.perf_counter() - started
        return rewards

    def score_with_grad(self, x0: torch.Tensor) -> torch.Tensor:
        """Differentiable rewards [M] (on x0's device) w.r.t. x0, for the guide verifier of local search; works inside
        inference mode."""
        if not getattr(self.verifier, "differentiable", False):
            raise ValueError(f"verifier '{getattr(self.verifier, 'name', self.verifier)}' is not differentiable, so "
                             "it cannot guide local search; pick a differentiable guide verifier or set "
                             "Langevin steps to 0")
        self.check_interrupt()
        started = time.perf_counter()
        with torch.inference_mode(False), torch.enable_grad(), self._scoring_call(leave=False):
            x0 = x0.clone() if x0.is_inference() else x0
            rewards = self._rewards(x0, grad=True)
        self.seconds += time.perf_counter() - started  # forward only; the backward runs in the caller
        return rewards


class _Residency:
    def __init__(self, residency, leave: bool):
        self.residency = residency
        self.leave = leave   # not before a backward pass: the caller still needs the weights

    def __enter__(self):
        if self.residency is not None:
            self.residency.before_scoring()

    def __exit__(self, *exc):
        if self.residency is not None and self.leave and exc[0] is None:
            self.residency.after_scoring()
        return False


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
