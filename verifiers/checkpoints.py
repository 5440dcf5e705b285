"""Reading weight files (torch pickle or safetensors) without executing code, and strict key checks.

Every verifier loader reads its weights through `read_state_dict` and checks them with `check_state` / `load_exact`,
so every bad file gets one kind of message: the file, what is wrong with it, and what to do.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import torch

ZIP_MAGIC = b"PK\x03\x04"
GET_AGAIN = "download or copy it again (compare its size with the source's)"


class WeightsFileError(ValueError):
    """A weights file cannot be used: empty, truncated, not a weights file, unsafe, or of another architecture."""


def _fail(path: Path, problem: str, fix: str) -> WeightsFileError:
    return WeightsFileError(f"cannot use weights file {path}: {problem}. {fix}")


def _safetensors_problem(path: Path, size: int) -> str:
    """Why a .safetensors file did not load, read from its header (8-byte length, JSON, then the tensor bytes)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if head.startswith(ZIP_MAGIC):
            return "it is a torch zip checkpoint named .safetensors (not a weights file of this kind): rename it to .pt"
        if len(head) < 8:
            return f"it is truncated ({size} bytes, shorter than a safetensors header)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            if length > 100_000_000:
                return "it is not a safetensors file (its first bytes are no safetensors header)"
            return f"it is truncated (the header alone needs {length + 8} bytes, the file has {size})"
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return "it is not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "it is not a safetensors file (its header is no JSON object)"
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        return f"it is truncated ({size} of {needed} bytes)"
    return "it is corrupt"


def _torch_problem(path: Path, error: Exception) -> tuple[str, str]:
    """(what is wrong, the fix) for a torch.load failure under weights_only=True, judged by the file's first bytes."""
    text = str(error)
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head == ZIP_MAGIC[:2]:  # torch's zip format
        if not zipfile.is_zipfile(path):
            return "it is truncated or corrupt (an incomplete zip archive)", f"The file is incomplete: {GET_AGAIN}"
        if "TorchScript" in text:
            return "it is a TorchScript archive, not a state dict", "Use the plain state-dict (.pt/.bin) release"
    elif not head.startswith(b"\x80"):  # every torch pickle starts with the PROTO opcode
        return ("it is not a weights file (neither a torch checkpoint nor safetensors)",
                "Pick the weights file itself (.safetensors / .pt / .bin / .pth), not a page or an archive")
    if "Weights only load failed" in text and "Unsupported global" in text:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        return (f"it holds Python objects besides tensors ({found.group(1) if found else 'a global'}), which could "
                "run code when unpickled: refused (weights_only), nothing in it was run",
                "Use a .safetensors file, or a state dict of tensors saved with torch.save, from a source you trust")
    if isinstance(error, EOFError) or any(s in text for s in ("Ran out of input", "truncated", "unexpected EOF")):
        return "it is truncated (it ends before its data does)", f"The file is incomplete: {GET_AGAIN}"
    first = text.splitlines()[0][:160] if text else ""
    return f"torch cannot read it ({type(error).__name__}: {first})", f"It may be corrupt: {GET_AGAIN}"


def read_state_dict(path: str | Path, unwrap: tuple[str, ...] = ("state_dict", "model")) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors / .pt / .bin / .pth file, never running code; unwraps {'state_dict': ...} and
    'module.' prefixes; a bad file raises WeightsFileError naming it and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "there is no such file", "Check the path, or pick another file")
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, "it is empty (0 bytes)", f"The download or copy did not finish: {GET_AGAIN}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(path), device="cpu")
        except Exception as error:  # SafetensorError (rust), OSError
            raise _fail(path, _safetensors_problem(path, size), f"If it is incomplete, {GET_AGAIN}") from error
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # UnpicklingError, EOFError, RuntimeError (zip), KeyError (garbage) ...
            problem, fix = _torch_problem(path, error)
            raise _fail(path, problem, fix) from error
    for key in unwrap:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise _fail(path, f"it holds a {type(state).__name__}, not a state dict of tensors",
                    "Use the weights file (a dict of tensor names to tensors)")
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise _fail(path, "it holds no tensors", "Pick the weights file itself")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _examples(keys, count: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:count]) + (", ..." if len(keys) > count else "")


def check_state(expected: dict[str, tuple], state: dict[str, torch.Tensor], source: str | Path, *, what: str,
                fix: str, allow_unexpected: bool = True) -> None:
    """Raise WeightsFileError when `state` lacks tensors of `expected` {name: shape}, has them in other shapes, or
    (allow_unexpected=False) holds extra ones: the weights are of another architecture."""
    missing = [k for k in expected if k not in state]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    unexpected = [] if allow_unexpected else [k for k in state if k not in expected]
    if not (missing or wrong or unexpected):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the {len(expected)} tensors it needs are missing ({_examples(missing)})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} have other shapes (e.g. {k}: file {tuple(state[k].shape)}, model "
                     f"{tuple(expected[k])})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors are not in the model ({_examples(unexpected)})")
    raise WeightsFileError(f"weights file {source} does not fit {what}: {'; '.join(parts)}. {fix}")


def load_exact(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path, *, what: str | None = None,
               fix: str = "Is it the right file for this verifier?", allow_unexpected: bool = True) -> None:
    """Assign every parameter of `module` from `state` after `check_state`; meta modules take the tensors as they
    are (assign), others copy them in."""
    current = module.state_dict()
    check_state({k: tuple(v.shape) for k, v in current.items()}, state, source,
                what=what or type(module).__name__, fix=fix, allow_unexpected=allow_unexpected)
    on_meta = any(t.is_meta for t in current.values())
    module.load_state_dict({k: state[k] for k in current}, strict=True, assign=on_meta)
