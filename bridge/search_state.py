"""Finished searches kept for extension: a key over every input but the budget, a byte-bounded LRU cache, files.

The key is a SHA-256 over the model's weights (a strided sample of every tensor) and patches, the conditioning, the
start noise and input latent, the seed, the sigmas, the search settings without the budget, the VAE, the verifiers
and the prompt: any change gives another key, so a changed input never reuses a stale state. States are CPU tensors;
they are also written to ComfyUI's output folder (``diffusion_search_states/``) as safetensors + JSON (no pickle), so
a search can be extended after a restart.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import math
import os

import torch

log = logging.getLogger(__name__)

CACHE_MB_ENV = "DIFFUSION_SEARCH_CACHE_MB"   # memory for kept states (default 256 MiB; 0 keeps none)
DEFAULT_CACHE_MB = 256.0
REUSE_ENV = "DIFFUSION_SEARCH_REUSE"         # "0": never extend (always run the whole search)
STATE_FOLDER = "diffusion_search_states"
SAMPLE = 4096             # elements hashed per weight tensor (strided): a LoRA changes them all
MAX_VISITS = 50000        # objects walked per part of a key: beyond it (or too deep) the search is not kept
MAX_DEPTH = 16


class KeyTooComplex(ValueError):
    """An input too large or deep to digest fully: the search runs whole and is not kept (never a stale reuse)."""
VERSION = 1


def cache_megabytes() -> float:
    """``DIFFUSION_SEARCH_CACHE_MB`` as a finite number >= 0; anything else is logged and the default is used."""
    text = os.environ.get(CACHE_MB_ENV)
    if text is None:
        return DEFAULT_CACHE_MB
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        log.warning("%s=%r is not a number of MiB >= 0 (e.g. 256; 0 keeps no search in memory): using the default "
                    "%g MiB", CACHE_MB_ENV, text, DEFAULT_CACHE_MB)
        return DEFAULT_CACHE_MB
    return value


def reuse_enabled() -> bool:
    return os.environ.get(REUSE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _tensor_bytes(t: torch.Tensor, limit: int | None = None) -> bytes:
    flat = t.detach().reshape(-1)
    if limit is not None and flat.numel() > limit:
        flat = flat[:: -(-flat.numel() // limit)]
    return flat.to("cpu", copy=True).contiguous().view(torch.uint8).numpy().tobytes()


class WeightsOnly:
    """A module hashed by its weights alone (ComfyUI's model: its attributes count loads and patches per run)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module


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
    """SHA-256 over nested values: tensors by content, modules by their weights, objects by their attributes."""

    def __init__(self):
        self.hash = hashlib.sha256()
        self.visits = 0
        self.seen: dict[int, object] = {}   # id -> object, kept alive: a freed temporary's id comes back

    def text(self, value) -> None:
        self.hash.update(str(value).encode("utf-8", "replace") + b"\0")

    def module(self, module: torch.nn.Module, attributes: bool = True) -> None:
        self.text(f"module {type(module).__module__}.{type(module).__qualname__}")
        samples = []
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            self.text(f"{name} {tensor.dtype} {tuple(tensor.shape)}")
            flat = tensor.detach().reshape(-1)
            step = max(1, -(-flat.numel() // SAMPLE))
            samples.append(flat[::step].to(torch.float32))   # exact for every float format up to float32
        if samples:  # one transfer for the whole model
            self.hash.update(torch.cat([s.to(samples[0].device) for s in samples]).cpu().numpy().tobytes())
        if attributes:  # settings (a composite's weights, a classifier's label), not what loading changes
            for name, sub in module.named_modules():
                settings = {k: v for k, v in vars(sub).items()
                            if not k.startswith("_") and k not in LOADING_ATTRIBUTES and _setting(v)}
                self.text(name)
                self.value(settings, 1)

    def value(self, value, depth: int = 0) -> None:
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
            self.module(value.module, attributes=False)
        elif isinstance(value, torch.nn.Module):
            self.seen[id(value)] = value
            self.module(value)
        elif isinstance(value, dict):
            self.seen[id(value)] = value
            for key in sorted(value, key=str):
                self.text(key)
                self.value(value[key], depth + 1)
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

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


def state_key(**parts) -> str:
    """The key of a search: a digest of the named parts (every input of the search except its budget).

    Raises KeyTooComplex when a part cannot be digested whole."""
    digest = _Digest()
    digest.text(f"diffusion-search-state v{VERSION}")
    for name in sorted(parts):
        digest.visits = 0
        digest.text(name)
        digest.value(parts[name])
    return digest.hexdigest()


@dataclasses.dataclass
class SearchState:
    """A finished search: its budget, CPU tensors (particles, rewards, resume state) and plain data (trace)."""

    key: str
    algorithm: str
    budget: int
    tensors: dict
    info: dict

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


class StateCache:
    """Least-recently-used states, at most ``max_bytes`` of tensors in all."""

    def __init__(self, max_bytes: int | None = None):
        if max_bytes is None:
            max_bytes = int(cache_megabytes() * 2 ** 20)
        self.max_bytes = max_bytes
        self.states: collections.OrderedDict[str, SearchState] = collections.OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(state.nbytes for state in self.states.values())

    def get(self, key: str) -> SearchState | None:
        state = self.states.get(key)
        if state is not None:
            self.states.move_to_end(key)
        return state

    def put(self, state: SearchState) -> None:
        self.states.pop(state.key, None)
        if state.nbytes > self.max_bytes:
            log.info("search state of %d bytes exceeds the cache (%d bytes): not kept in memory", state.nbytes,
                     self.max_bytes)
            return
        self.states[state.key] = state
        while self.nbytes > self.max_bytes:
            self.states.popitem(last=False)

    def clear(self) -> None:
        self.states.clear()


CACHE = StateCache()


def state_paths(folder: str, key: str) -> tuple[str, str]:
    stem = os.path.join(folder, key[:32])
    return stem + ".safetensors", stem + ".json"


def save_state(folder: str, state: SearchState) -> None:
    """Write the state as safetensors (tensors) + JSON (budget, trace); a failure is logged, never raised."""
    from safetensors.torch import save_file
    tensors_path, info_path = state_paths(folder, state.key)
    try:
        os.makedirs(folder, exist_ok=True)
        save_file({k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.tensors.items()},
                  tensors_path + ".tmp")
        os.replace(tensors_path + ".tmp", tensors_path)
        with open(info_path + ".tmp", "w", encoding="utf-8") as handle:
            json.dump({"version": VERSION, "key": state.key, "algorithm": state.algorithm, "budget": state.budget,
                       "info": state.info}, handle)
        os.replace(info_path + ".tmp", info_path)
    except (OSError, RuntimeError, ValueError) as error:
        log.warning("could not save the search state to %s (%s); extension after a restart will rerun", folder,
                    error)


class BadState(ValueError):
    """A kept state that is not what a search saved (truncated, hand-edited, of other inputs): it is set aside."""


def _set_aside(paths) -> list[str]:
    """Rename the files of a bad state to ``*.bad`` (``*.bad1``, ... when taken): kept for the user, never reused."""
    moved = []
    for path in paths:
        if not os.path.exists(path):
            continue
        target, number = path + ".bad", 0
        while os.path.exists(target):
            number += 1
            target = f"{path}.bad{number}"
        try:
            os.replace(path, target)
            moved.append(target)
        except OSError as error:
            log.warning("could not set the bad search state %s aside (%s)", path, error)
    return moved


def _read(tensors_path: str, info_path: str, key: str) -> SearchState | None:
    from safetensors.torch import load_file
    with open(info_path, encoding="utf-8") as handle:
        info = json.load(handle)
    if not isinstance(info, dict):
        raise BadState(f"its JSON is a {type(info).__name__}, not an object with version, key, algorithm, budget")
    if info.get("version") != VERSION:
        return None   # another version of the pack wrote it: not read (this search's state replaces it)
    algorithm, budget, extra = info.get("algorithm"), info.get("budget"), info.get("info")
    if info.get("key") != key:
        raise BadState(f"its key {str(info.get('key'))[:16]!r} is not the file name's {key[:16]!r}")
    if algorithm not in ("bfs", "dfs", "local"):
        raise BadState(f"algorithm {algorithm!r} is not bfs, dfs or local")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise BadState(f"budget {budget!r} is not a whole number >= 1")
    if not isinstance(extra, dict):
        raise BadState(f"'info' is a {type(extra).__name__}, not an object")
    tensors = load_file(tensors_path)
    if not all(isinstance(name, str) and isinstance(t, torch.Tensor) for name, t in tensors.items()):
        raise BadState("its tensors file holds something other than named tensors")
    return SearchState(key, algorithm, budget, tensors, extra)


def load_state(folder: str, key: str, check=None) -> SearchState | None:
    """The state saved under ``key``, or None (missing, or written by another version).

    ``check(state)`` raises ``BadState`` when the tensors do not fit the search (shapes, counts, finiteness, budget).
    An unreadable or failing state is logged, set aside (renamed ``*.bad``, never deleted) and None returned: the
    search runs whole and saves a good state in its place."""
    tensors_path, info_path = state_paths(folder, key)
    if not (os.path.exists(tensors_path) and os.path.exists(info_path)):
        return None
    try:
        state = _read(tensors_path, info_path, key)
        if state is not None and check is not None:
            check(state)
        return state
    except OSError as error:   # unreadable now (permissions, a busy disk): left in place, maybe readable later
        log.warning("could not read the saved search state %s (%s); running the whole search", tensors_path, error)
        return None
    except Exception as error:   # noqa: BLE001 - any broken file (truncated safetensors, bad JSON, wrong tensors)
        moved = _set_aside((tensors_path, info_path))
        log.warning("the saved search state %s is not usable (%s: %s); set aside as %s, running the whole search",
                    tensors_path, type(error).__name__, error, ", ".join(moved) or "(could not rename)")
        return None


def prune_folder(folder: str, max_bytes: int) -> None:
    """Delete the oldest saved states until the folder holds at most ``max_bytes``."""
    try:
        files = [os.path.join(folder, name) for name in os.listdir(folder)
                 if name.endswith((".safetensors", ".json"))]
    except OSError:
        return
    files.sort(key=lambda path: os.path.getmtime(path))
    total = sum(os.path.getsize(path) for path in files)
    for path in files:
        if total <= max_bytes:
            break
        total -= os.path.getsize(path)
        os.remove(path)
