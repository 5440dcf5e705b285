"""The state key of a search: a SHA-256 over an explicit list of its inputs (``StateInputs``), all but the budget.

Any change of an input gives another key, so a changed input never reuses a stale state (kept.py). Weights are hashed
by a strided sample of every tensor (a LoRA changes them all); tensors by content; plain data by value.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any, NamedTuple

import torch

log = logging.getLogger(__name__)

KEY_VERSION = 1           # part of every key: bump when what a key covers changes
SAMPLE = 4096             # elements hashed per weight tensor (strided): a LoRA changes them all
MAX_VISITS = 50000        # objects walked per part of a key: beyond it (or too deep) the search is not kept
MAX_DEPTH = 16


class KeyTooComplex(ValueError):
    """An input too large or deep to digest fully: the search runs whole and is not kept (never a stale reuse)."""


class WeightsOnly:
    """A module hashed by its weights alone (ComfyUI's model: its attributes count loads and patches per run)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module


class StateInputs(NamedTuple):
    """Every input of a search but its budget: the key digests exactly these fields (by name)."""

    settings: dict            # the plan without budget and node id: configs, prompt, scoring, VAE and verifiers
    model: WeightsOnly        # the denoiser's weights
    patches: dict | None      # the ModelPatcher's weight patches and object patches (LoRAs, model patches)
    conditioning: dict        # extra_args as the sampler got them, the guider's conds and cfg
    x: torch.Tensor           # the noised start
    sigmas: torch.Tensor
    seed: int
    noise_form: str
    latent: torch.Tensor | None   # the input latent (img2img, inpainting)
    noise: torch.Tensor | None    # ComfyUI's start noise (inpainting blends it)


def plan_settings(plan) -> dict:
    """The plan's part of the key: its settings without the budget and without the run's bookkeeping (node id)."""
    spec = plan.scoring
    dfs = None if plan.dfs is None else {**plan.dfs.to_dict(), "nfe_budget": None}
    return {"algorithm": plan.algorithm, "bfs": None if plan.bfs is None else plan.bfs.to_dict(), "dfs": dfs,
            "local": None if plan.local is None else plan.local.to_dict(), "prompt": spec.prompt,
            "score_size": spec.score_size, "video": spec.video, "reject_flow": plan.reject_flow,
            "guide": spec.guide_verifier, "select": spec.select_verifier,
            "vae": WeightsOnly(spec.vae.first_stage_model)}


def inputs_of(plan, model_k, base_model, patcher, x, sigmas, extra_args, seed, noise_form) -> StateInputs:
    """The StateInputs of a search: ``model_k`` is the sampler's model (its guider holds the conds and cfg)."""
    guider = getattr(model_k, "inner_model", None)
    conditioning = {"extra_args": dict(extra_args or {}),
                    "conds": getattr(guider, "original_conds", None), "cfg": getattr(guider, "cfg", None)}
    patches = None if patcher is None else {"patches": getattr(patcher, "patches", None),
                                            "object_patches": getattr(patcher, "object_patches", None)}
    return StateInputs(settings=plan_settings(plan), model=WeightsOnly(base_model), patches=patches,
                       conditioning=conditioning, x=x, sigmas=sigmas, seed=int(seed), noise_form=noise_form,
                       latent=getattr(model_k, "latent_image", None), noise=getattr(model_k, "noise", None))


def key_of(inputs: StateInputs) -> str:
    """The key of a search from its StateInputs."""
    return state_key(**inputs._asdict())


def safe_key(*args) -> str | None:
    """``key_of(inputs_of(*args))``, or None (the search runs whole and is not kept) when an input cannot be digested."""
    try:
        return key_of(inputs_of(*args))
    except Exception as error:   # an exotic input (quantized weights, a huge option) must never fail the search
        log.warning("search inputs could not be keyed (%s: %s); this search is not kept for extension",
                    type(error).__name__, error)
        return None


def state_key(**parts) -> str:
    """A digest of the named parts (``StateInputs`` gives a search's). Raises KeyTooComplex when a part cannot be
    digested whole."""
    digest = _Digest()
    digest.text(f"diffusion-search-state v{KEY_VERSION}")
    for name in sorted(parts):
        digest.visits = 0
        digest.text(name)
        digest.value(parts[name])
    return digest.hexdigest()


def _tensor_bytes(t: torch.Tensor, limit: int | None = None) -> bytes:
    flat = t.detach().reshape(-1)
    if limit is not None and flat.numel() > limit:
        flat = flat[:: -(-flat.numel() // limit)]
    return flat.to("cpu", copy=True).contiguous().view(torch.uint8).numpy().tobytes()


# What ComfyUI's ModelPatcher sets on a module when it loads it (both versions): not a setting of the module.
LOADING_ATTRIBUTES = {"current_patcher", "current_weight_patches_uuid", "device", "lowvram_patch_counter",
                      "model_loaded_weight_memory", "model_lowvram", "skip_injection", "model_offload_buffer_memory"}


def _setting(value) -> bool:
    """Plain data (numbers, strings, lists of them, dataclasses): what a module's settings are made of."""
    if isinstance(value, (list, tuple)):
        return all(_setting(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type))


class _Digest:
    """SHA-256 over the values of StateInputs, one rule per kind of value (``value``)."""

    def __init__(self):
        self.hash = hashlib.sha256()
        self.visits = 0
        self.seen: dict[int, object] = {}   # id -> object, kept alive: a freed temporary's id comes back

    def text(self, value) -> None:
        self.hash.update(str(value).encode("utf-8", "replace") + b"\0")

    def value(self, value: Any, depth: int = 0) -> None:
        """Plain values by repr; tensors by content; modules by weights (and plain settings); containers item by
        item; functions by name; other objects (ComfyUI's conds and patches, a VideoScoring) by their public
        fields."""
        self.visits += 1
        if self.visits > MAX_VISITS or depth > MAX_DEPTH:
            raise KeyTooComplex(f"more than {MAX_VISITS} objects or {MAX_DEPTH} levels")
        if value is None or isinstance(value, (bool, int, float, str, bytes)):
            self.text(f"{type(value).__name__}:{value!r}")
        elif isinstance(value, torch.Tensor):
            self.text(f"tensor {value.dtype} {tuple(value.shape)}")
            self.hash.update(_tensor_bytes(value, 1 << 20))
        elif isinstance(value, (torch.dtype, torch.device)):
            self.text(value)
        elif id(value) in self.seen:
            self.text("<seen>")
        elif isinstance(value, WeightsOnly):
            self.module(value.module, settings=False)
        elif isinstance(value, torch.nn.Module):
            self.seen[id(value)] = value
            self.module(value)
        elif isinstance(value, dict):
            self.seen[id(value)] = value
            self.mapping(value, depth)
        elif isinstance(value, (list, tuple)):
            self.seen[id(value)] = value
            self.text(f"{type(value).__name__}[{len(value)}]")
            for item in value:
                self.value(item, depth + 1)
        elif callable(value) and hasattr(value, "__qualname__"):   # functions: by name (patches, wrappers)
            self.text(f"fn {getattr(value, '__module__', '')}.{value.__qualname__}")
        elif dataclasses.is_dataclass(value) or hasattr(value, "__dict__"):
            self.seen[id(value)] = value
            self.text(f"object {type(value).__module__}.{type(value).__qualname__}")
            self.value({k: v for k, v in vars(value).items() if not k.startswith("_")}, depth + 1)
        else:
            self.text(f"object {type(value).__qualname__}")

    def mapping(self, value: dict, depth: int) -> None:
        for key in sorted(value, key=str):
            self.text(key)
            self.value(value[key], depth + 1)

    def module(self, module: torch.nn.Module, settings: bool = True) -> None:
        """The weights (a strided sample of every parameter and buffer) and, with ``settings``, each submodule's
        plain public attributes (a composite's weights, a classifier's label), not what loading changes."""
        self.text(f"module {type(module).__module__}.{type(module).__qualname__}")
        samples = []
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            self.text(f"{name} {tensor.dtype} {tuple(tensor.shape)}")
            flat = tensor.detach().reshape(-1)
            step = max(1, -(-flat.numel() // SAMPLE))
            samples.append(flat[::step].to(torch.float32))   # exact for every float format up to float32
        if samples:  # one transfer for the whole model
            self.hash.update(torch.cat([s.to(samples[0].device) for s in samples]).cpu().numpy().tobytes())
        if settings:
            for name, sub in module.named_modules():
                plain = {k: v for k, v in vars(sub).items()
                         if not k.startswith("_") and k not in LOADING_ATTRIBUTES and _setting(v)}
                self.text(name)
                self.value(plain, 1)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()
