"""Finished searches kept for extension: a byte-bounded LRU cache of states and their files.

States are found by the key of their inputs (state_key.py). They are CPU tensors; they are also written to ComfyUI's output folder (``diffusion_search_states/``) as safetensors + JSON (no pickle), so
a search can be extended after a restart.
"""
from __future__ import annotations

import collections
import dataclasses
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
