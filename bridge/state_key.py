"""The state key of a search: a SHA-256 over an explicit list of its inputs (``StateInputs``), all but the budget.

Any change of an input gives another key, so a changed input never reuses a stale state (kept.py). Each kind of value
has its own rule (``_Digest.value``): plain data by value, tensors by content, weights by a strided sample of every
tensor (a LoRA changes them all), ComfyUI's conds by their tensor, weight patches by their tensors and strengths,
verifiers by ``key_fields()`` and their weights, dataclasses by their fields, functions by name and captured values.
A value of any other type is not guessed from its attributes: KeyTooComplex, so the search runs whole, is not kept,
and a warning names the type (never a stale reuse).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import types
import uuid
from typing import Any, NamedTuple

import torch

log = logging.getLogger(__name__)

KEY_VERSION = 2           # part of every key: bump when what a key covers changes
SAMPLE = 4096             # elements hashed per weight tensor (strided): a LoRA changes them all
MAX_VISITS = 50000        # objects walked per part of a key: beyond it (or too deep) the search is not kept
MAX_DEPTH = 16


class KeyTooComplex(ValueError):
    """An input too large or deep to digest fully, or of a type without a rule: the search runs whole and is not kept
    (never a stale reuse)."""


class WeightsOnly:
    """A module hashed by its weights alone (ComfyUI's model, a VAE: their attributes count loads and patches)."""

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
        digest.visits, digest.path = 0, [name]
        digest.text(name)
        digest.value(parts[name])
    return digest.hexdigest()


def _tensor_bytes(t: torch.Tensor, limit: int | None = None) -> bytes:
    flat = t.detach().reshape(-1)
    if limit is not None and flat.numel() > limit:
        flat = flat[:: -(-flat.numel() // limit)]
    return flat.to("cpu", copy=True).contiguous().view(torch.uint8).numpy().tobytes()


def _type_name(value) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _is_comfy(value, module: str, base: str) -> bool:
    """Whether ``value`` is an instance of ComfyUI's ``module.base`` or a subclass (without importing ComfyUI)."""
    return any(c.__name__ == base and c.__module__ == module for c in type(value).__mro__)


PLAIN = (bool, int, float, str, bytes)


class _Digest:
    """SHA-256 over the values of StateInputs, one explicit rule per kind of value (``value``)."""

    def __init__(self):
        self.hash = hashlib.sha256()
        self.visits = 0
        self.seen: dict[int, object] = {}   # id -> object, kept alive: a freed temporary's id comes back
        self.path: list[str] = []           # where the digest is (for the message of a value without a rule)

    def text(self, value) -> None:
        self.hash.update(str(value).encode("utf-8", "replace") + b"\0")

    def value(self, value: Any, depth: int = 0) -> None:
        """The rule of ``value``'s kind; KeyTooComplex for a type without one."""
        self.visits += 1
        if self.visits > MAX_VISITS or depth > MAX_DEPTH:
            raise KeyTooComplex(f"more than {MAX_VISITS} objects or {MAX_DEPTH} levels")
        if value is None or isinstance(value, PLAIN):
            self.text(f"{type(value).__name__}:{value!r}")
        elif isinstance(value, torch.Tensor):
            self.text(f"tensor {value.dtype} {tuple(value.shape)}")
            self.hash.update(_tensor_bytes(value, 1 << 20))
        elif isinstance(value, (torch.dtype, torch.device)):
            self.text(value)
        elif isinstance(value, uuid.UUID):
            self.text("uuid")   # ComfyUI gives every cond a fresh one per run: an identity, not an input
        elif id(value) in self.seen:
            self.text("<seen>")
        else:
            self.seen[id(value)] = value
            self.composite(value, depth)

    def composite(self, value: Any, depth: int) -> None:
        if isinstance(value, WeightsOnly):
            self.module(value.module)
        elif callable(getattr(value, "key_fields", None)):   # a verifier (verifiers/base.py): settings + weights
            self.text(f"keyed {_type_name(value)}")
            if isinstance(value, torch.nn.Module):
                self.module(value)
            self.value(value.key_fields(), depth + 1)
        elif isinstance(value, torch.nn.Module):   # a model sampling object patch, a module in an option: weights
            self.module(value)
        elif isinstance(value, dict):
            self.mapping(value, depth)
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
            self.text(f"{type(value).__name__}[{len(value)}]")
            for item in items:
                self.value(item, depth + 1)
        elif _is_comfy(value, "comfy.conds", "CONDRegular"):   # CONDCrossAttn, CONDNoiseShape, ...: the tensor
            self.text(f"cond {type(value).__qualname__}")
            self.value(value.cond, depth + 1)
        elif _is_comfy(value, "comfy.weight_adapter.base", "WeightAdapterBase"):   # a LoRA patch (modern ComfyUI)
            self.text(f"adapter {type(value).__qualname__} {getattr(value, 'name', '')}")
            self.value([value.weights, getattr(value, "multiplier", 1.0)], depth + 1)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):   # VideoScoring, configs
            self.text(f"dataclass {_type_name(value)}")
            self.value({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth + 1)
        elif isinstance(value, functools.partial):
            self.text("partial")
            self.value([value.func, value.args, value.keywords], depth + 1)
        elif isinstance(value, types.FunctionType):   # by name, and what it captured (a closure's settings)
            self.text(f"fn {value.__module__}.{value.__qualname__}")
            cells = [c.cell_contents for c in (value.__closure__ or ()) if _filled(c)]
            self.value([value.__defaults__, value.__kwdefaults__, cells], depth + 1)
        elif isinstance(value, (types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType)):
            self.text(f"method {getattr(value, '__module__', '')}.{value.__qualname__}")
            owner = getattr(value, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.value(owner, depth + 1)
        else:
            where = "/".join(self.path)   # safe_key logs the warning: the search runs whole, not kept
            raise KeyTooComplex(f"no key rule for a {_type_name(value)} (at {where}); give it a key_fields() method "
                                f"(plain data) or leave it out of the search's inputs")

    def mapping(self, value: dict, depth: int) -> None:
        for key in sorted(value, key=str):
            self.text(key)
            self.path.append(str(key))
            self.value(value[key], depth + 1)
            self.path.pop()

    def module(self, module: torch.nn.Module) -> None:
        """The module's type and weights: a strided sample of every parameter and buffer."""
        self.text(f"module {_type_name(module)}")
        samples = []
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            self.text(f"{name} {tensor.dtype} {tuple(tensor.shape)}")
            flat = tensor.detach().reshape(-1)
            step = max(1, -(-flat.numel() // SAMPLE))
            samples.append(flat[::step].to(torch.float32))   # exact for every float format up to float32
        if samples:  # one transfer for the whole model
            self.hash.update(torch.cat([s.to(samples[0].device) for s in samples]).cpu().numpy().tobytes())

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:   # a cell not yet assigned (a recursive closure being defined)
        return False
    return True
