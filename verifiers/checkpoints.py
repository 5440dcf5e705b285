"""Reading weight files (torch pickle or safetensors) without executing code, and strict key checks."""
from __future__ import annotations

from pathlib import Path

import torch


def read_state_dict(path: str | Path, unwrap: tuple[str, ...] = ("state_dict", "model")) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors / .pt / .bin / .pth file; unwraps {'state_dict': ...} and 'module.' prefixes."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # pickles with classes, TorchScript archives
            raise ValueError(f"cannot read weights from {path}: {error}. Use a plain state-dict file "
                             "(.safetensors, or a torch-saved dict of tensors)") from error
    for key in unwrap:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_exact(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Assign every parameter of `module` from `state` (extra keys ignored); a missing key is a clear error."""
    wanted = module.state_dict().keys()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise ValueError(f"{source} lacks {len(missing)} tensors this verifier needs (e.g. {missing[:3]}): "
                         "is it the right file for this verifier?")
    bad = [k for k in wanted if tuple(state[k].shape) != tuple(module.state_dict()[k].shape)]
    if bad:
        k = bad[0]
        raise ValueError(f"{source}: tensor {k} has shape {tuple(state[k].shape)}, expected "
                         f"{tuple(module.state_dict()[k].shape)}: the config does not match the weights")
    module.load_state_dict({k: state[k] for k in wanted}, strict=True, assign=True)
