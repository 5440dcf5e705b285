"""Memory policy of a search inside ComfyUI: rows per denoiser call, and where the VAE and verifier live.

A search must fit where plain sampling fits. The denoiser sees the N·B particle rows in chunks sized from the free
memory ComfyUI's memory manager reports and the model's own estimate (`BaseModel.memory_required`, the numbers
ComfyUI's `calc_cond_batch` batches by); the VAE and verifier come to the GPU for scoring and leave when the denoiser
needs the room, and are loaded so that ComfyUI keeps the UNet where it is.
"""
from __future__ import annotations

import importlib
import logging

import torch

from . import compat

log = logging.getLogger(__name__)

# ComfyUI's calc_cond_batch batches while memory_required(shape) * 1.5 < free memory: the same margin here.
GPU_MARGIN = 1.5
# On the CPU an allocation past the RAM is not an exception but the kernel's OOM killer, and the RAM is shared with
# the OS and other programs: plan with a share of what is available.
CPU_SHARE = 0.5


def _mm():
    return importlib.import_module("comfy.model_management")


def rows_that_fit(budget_bytes: float, fixed_bytes: float, per_row_bytes: float, copies: int = 2) -> int:
    """Rows per denoiser call whose estimated memory fixed + copies·rows·per_row stays within the budget (>= 1).

    ``copies``: model rows per particle row (2 with CFG: ComfyUI batches cond and uncond together)."""
    if per_row_bytes <= 0:
        raise ValueError(f"per_row_bytes={per_row_bytes} must be > 0")
    return max(1, int((budget_bytes - fixed_bytes) // (per_row_bytes * max(1, copies))))


def _linear_estimate(base_model, row_shape) -> tuple[float, float]:
    """(fixed, per row) bytes of one model call from ComfyUI's memory_required, which is affine in the batch."""
    one = float(base_model.memory_required([1, *row_shape]))
    two = float(base_model.memory_required([2, *row_shape]))
    per_row = max(two - one, 1.0)
    return max(one - per_row, 0.0), per_row


def cfg_copies(model_k, extra_args: dict | None) -> int:
    """Model rows per particle row: 1 when CFG is off (cfg == 1, ComfyUI skips the uncond pass), else 2."""
    inner = getattr(model_k, "inner_model", None)
    cfg = getattr(inner, "cfg", None)                     # modern: the CFGGuider
    if cfg is None:
        cfg = (extra_args or {}).get("cond_scale")       # 2024: passed in extra_args
    try:
        return 1 if cfg is not None and float(cfg) == 1.0 else 2
    except (TypeError, ValueError):
        return 2


class DenoiserRowPolicy:
    """``rows_per_call(shape)`` for search_core: how many particle rows one denoiser call may take now."""

    def __init__(self, base_model, device: torch.device, copies: int = 2, free_memory=None):
        self.base_model = base_model
        self.device = torch.device(device)
        self.copies = int(copies)
        self._free_memory = free_memory or (lambda dev: compat.free_memory_for_batch(base_model, dev))
        self._estimates: dict = {}
        self.largest = 0   # the most rows one call was allowed (benchmarks report it)
        self.all_rows = None   # the widest shape asked about: every particle row of the search

    def budget(self) -> float:
        free = float(self._free_memory(self.device))
        return free * CPU_SHARE if self.device.type == "cpu" else free / GPU_MARGIN

    def estimate(self, row_shape) -> tuple[float, float]:
        key = tuple(int(s) for s in row_shape)
        if key not in self._estimates:
            self._estimates[key] = _linear_estimate(self.base_model, key)
        return self._estimates[key]

    def bytes_for(self, shape) -> float:
        """Estimated memory of one call with every row of ``shape``."""
        fixed, per_row = self.estimate(shape[1:])
        return fixed + per_row * self.copies * int(shape[0])

    def __call__(self, shape) -> int:
        if self.all_rows is None or int(shape[0]) > self.all_rows[0]:
            self.all_rows = tuple(int(s) for s in shape)
        fixed, per_row = self.estimate(shape[1:])
        rows = min(int(shape[0]), rows_that_fit(self.budget(), fixed, per_row, self.copies))
        if rows < int(shape[0]):
            log.debug("denoiser: %d of %d particle rows per call (free memory)", rows, int(shape[0]))
        self.largest = max(self.largest, rows)
        return rows


def _loaded_entry(patcher):
    """ComfyUI's LoadedModel entry of ``patcher`` (None when it is not loaded)."""
    for entry in _mm().current_loaded_models:
        if entry.model is patcher:
            return entry
    return None


def unet_patcher_of(base_model):
    """The ModelPatcher ComfyUI loaded for this sampling run (found in the memory manager's loaded models)."""
    for entry in _mm().current_loaded_models:
        patcher = entry.model
        if patcher is not None and getattr(patcher, "model", None) is base_model:
            return patcher
    return None


def move_verifier(verifier, device: torch.device) -> None:
    """Move a verifier (and the verifiers inside a composite) so images go where its weights are."""
    verifier.to(device)
    for module in verifier.modules():
        if hasattr(module, "score_chunk") and hasattr(module, "device"):
            module.device = torch.device(device)


class ScoringResidency:
    """Brings the VAE and the verifier to the compute device for scoring and sends them away when memory is short.

    Loading goes through ComfyUI's memory manager with the UNet kept: models to free are chosen among the others
    (``free_memory(..., keep_loaded=[UNet])``), then the VAE is loaded beside the UNet. CPU runs move nothing.
    """

    def __init__(self, vae, verifiers, device: torch.device, policy: DenoiserRowPolicy | None = None,
                 unet_patcher=None):
        self.vae = vae
        self.verifiers = [v for v in verifiers if v is not None]
        self.device = torch.device(device)
        self.policy = policy
        self.unet_patcher = unet_patcher
        self.offloaded = 0     # times the VAE/verifiers were sent away to give the denoiser room
        self._loaded_once = False
        self._warned = False
        # Only verifiers the user put on the compute device travel; one left on the CPU stays there.
        self._travel = [v for v in self.verifiers if _same_device(getattr(v, "device", None), self.device)]
        self._home = {id(v): v.device for v in self._travel}

    @property
    def on_gpu(self) -> bool:
        return self.device.type not in ("cpu", "mps")

    def _keep(self, *patchers):
        return [e for e in (_loaded_entry(p) for p in patchers if p is not None) if e is not None]

    def before_scoring(self) -> None:
        mm = _mm()
        if not self.on_gpu:
            if not self._loaded_once:   # CPU: one load per search (cheap bookkeeping, nothing moves)
                mm.load_models_gpu([self.vae.patcher])
                self._loaded_once = True
            return
        vae_loaded = _loaded_entry(self.vae.patcher) is not None
        need = sum(_module_bytes(v) for v in self._travel if not _same_device(v.device, self.device))
        if not vae_loaded:
            need += float(self.vae.patcher.model_size())
        if need > 0:
            # Make room among the other models (text encoders, ...) first, never by unloading the UNet.
            want = need * 1.2 + mm.minimum_inference_memory()
            mm.free_memory(want, self.device, keep_loaded=self._keep(self.unet_patcher, self.vae.patcher))
            if mm.get_free_memory(self.device) < want and not self._warned:
                self._warned = True
                log.warning("search: the VAE and verifier do not fit beside the UNet; ComfyUI may offload part of "
                            "the UNet to load them (slower). A TAESD VAE or a smaller verifier avoids it.")
        if not vae_loaded:
            # Asked only when the VAE is not loaded: each call may make ComfyUI free memory among loaded models.
            mm.load_models_gpu([p for p in (self.unet_patcher, self.vae.patcher) if p is not None])
        for verifier in self._travel:
            if not _same_device(verifier.device, self.device):
                move_verifier(verifier, self._home[id(verifier)])

    def after_scoring(self) -> None:
        if not self.on_gpu or self.policy is None or self.policy.all_rows is None:
            return
        mm = _mm()
        want = self.policy.bytes_for(self.policy.all_rows) * GPU_MARGIN
        if mm.get_free_memory(self.device) >= want:
            return   # room enough: keep them loaded for the next scoring step
        for verifier in self._travel:
            move_verifier(verifier, mm.unet_offload_device())
        mm.free_memory(want, self.device, keep_loaded=self._keep(self.unet_patcher))
        mm.soft_empty_cache()
        self.offloaded += 1
        log.info("search: VAE and verifier sent off the GPU after scoring to give the denoiser room")


def _same_device(a, b) -> bool:
    if a is None:
        return False
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def _module_bytes(module: torch.nn.Module) -> float:
    return float(sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers())))
