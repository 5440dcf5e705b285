"""Building open_clip models from local files only (architecture name or open_clip_config.json + weights)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import load_exact, read_state_dict

logger = logging.getLogger(__name__)
CONFIG_NAME = "open_clip_config.json"


@dataclass
class OpenClipParts:
    """A frozen open_clip model with its tokenizer and the preprocessing it was trained with."""

    model: torch.nn.Module
    tokenizer: object
    image_size: int
    mean: tuple
    std: tuple


def wants_quick_gelu(model_name: str, weights: Path, quick_gelu: bool | None) -> bool:
    """OpenAI CLIP weights were trained with QuickGELU; plain configs would silently give wrong outputs."""
    if quick_gelu is not None:
        return quick_gelu
    if model_name.endswith("-quickgelu"):
        return False  # the config already says so
    if "openai" in weights.name.lower() or "openai" in str(weights.parent).lower():
        logger.info("open_clip: %s looks like OpenAI weights: using QuickGELU (pass quick_gelu=False to override)",
                    weights)
        return True
    return False


def open_clip_layout(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Bring a state dict into the layout of `model` with open_clip's own converters (third-party and old text-tower
    layouts, resized position embeddings), as open_clip.load_checkpoint does after reading the file."""
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed
    try:
        from open_clip.convert import convert_state_dict
        state = convert_state_dict(model, state)
    except ImportError:  # older open_clip: no third-party layouts to convert
        pass
    if "positional_embedding" in state and not hasattr(model, "positional_embedding"):
        state = convert_to_custom_text_state_dict(state)
    for name in ("logit_scale", "logit_bias"):
        own = getattr(model, name, None)
        if name in state and own is not None and own.ndim != state[name].ndim:
            state[name] = state[name].reshape(own.shape)
    if "logit_bias" not in state and getattr(model, "logit_bias", None) is not None and "logit_scale" in state:
        state["logit_bias"] = torch.zeros_like(state["logit_scale"])
    state.pop("text.transformer.embeddings.position_ids", None)
    resize_pos_embed(state, model)
    resize_text_pos_embed(state, model)
    return state


def build_open_clip(model_name: str | None, weights: Path, *, config: Path | None = None,
                    quick_gelu: bool | None = None) -> OpenClipParts:
    """Architecture from a built-in name or a config file, weights from `weights`; nothing is downloaded."""
    import open_clip  # lazy: heavy, imports torchvision

    state = read_state_dict(weights)  # first: a bad file is named before a large model is built
    if config is not None:
        model_cfg = json.loads(Path(config).read_text())
        if "model_cfg" not in model_cfg:
            raise ValueError(f"{config} has no 'model_cfg': write {{\"model_cfg\": ..., \"preprocess_cfg\": ...}}")
        model = open_clip.create_model(f"local-dir:{Path(config).parent}", load_weights=False,
                                       force_quick_gelu=bool(quick_gelu))
        tokenizer = open_clip.get_tokenizer(f"local-dir:{Path(config).parent}")
        architecture = f"the open_clip architecture in {config}"
    else:
        if model_name not in open_clip.list_models():
            raise ValueError(f"unknown open_clip architecture '{model_name}': use one of open_clip.list_models(), "
                             f"e.g. ViT-B-32-quickgelu, ViT-L-14-quickgelu, ViT-H-14, or put {CONFIG_NAME} beside the weights")
        model = open_clip.create_model(model_name, pretrained=None,
                                       force_quick_gelu=wants_quick_gelu(model_name, weights, quick_gelu))
        tokenizer = open_clip.get_tokenizer(model_name)
        architecture = f"open_clip architecture '{model_name}'"
    load_exact(model, open_clip_layout(model, state), weights, what=architecture, allow_unexpected=False,
               fix="Pick the architecture these weights were trained with (model_name), or put "
                   f"{CONFIG_NAME} describing it beside the weights")
    preprocess = open_clip.get_model_preprocess_cfg(model)
    size = preprocess.get("size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    return OpenClipParts(model.eval(), tokenizer, int(size), tuple(preprocess.get("mean", (0.48145466, 0.4578275, 0.40821073))),
                         tuple(preprocess.get("std", (0.26862954, 0.26130258, 0.27577711))))
