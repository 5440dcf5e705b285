"""Writers of tiny verifier weight files in the real formats (random weights, generated at test time)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from verifiers.image_reward_model import ImageRewardNet, TextConfig, VisionConfig

TINY_WORDS = ("a photo of the an cat dog red blue green car tree house on in with painting sky big small "
              "at night sunny beautiful portrait astronaut riding horse").split()
TINY_VISION = VisionConfig(image_size=32, patch_size=16, width=128, depth=2, heads=2, mlp_hidden=256)


def write_tiny_vocab(path: Path) -> Path:
    """A BERT WordPiece vocab: [PAD] first (pad id 0, as the med config expects), specials, a few words."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS, "##s", "##ing"]
    path.write_text("\n".join(tokens) + "\n")
    return path


def med_config(vocab_size: int, *, layers: int = 2, intermediate: int = 256) -> dict:
    """BLIP's med_config.json fields (official values except the sizes given)."""
    return {
        "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": intermediate,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "model_type": "bert", "num_attention_heads": 12,
        "num_hidden_layers": layers, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": vocab_size,
        "encoder_width": 768, "add_cross_attention": True,
    }


def randomise_(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Fill a state dict in place: LayerNorms near identity, weights N(0, 0.05), reward head N(0, 1/fan_in)."""
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        if "LayerNorm" in key or ".norm" in key:
            base = 1.0 if key.endswith("weight") else 0.0
            tensor.copy_(base + 0.05 * torch.randn(tensor.shape, generator=generator))
        else:
            # the official head init (std 1/769) makes every reward ~0; unit gain per layer keeps rewards O(1)
            std = tensor.shape[-1] ** -0.5 if key.startswith("mlp.") and tensor.dim() == 2 else 0.05
            tensor.copy_(std * torch.randn(tensor.shape, generator=generator))


def write_image_reward_files(folder: Path, generator: torch.Generator, vision: VisionConfig = TINY_VISION,
                             layers: int = 2) -> Path:
    """ImageReward.pt + med_config.json + vocab.txt for a tiny random ImageReward, in the official layout."""
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_vocab(folder / "vocab.txt")
    vocab_size = len(TINY_WORDS) + 7 + 2  # + [DEC], [ENC] that BLIP's tokenizer adds
    config = med_config(vocab_size, layers=layers)
    (folder / "med_config.json").write_text(json.dumps(config, indent=1))
    fields = {k: config[k] for k in TextConfig.__dataclass_fields__ if k in config}
    net = ImageRewardNet(vision, TextConfig(**{**fields, "encoder_width": vision.width}))
    state = net.state_dict()
    # the official file also holds BLIP's contrastive projections, unused by the reward
    state["blip.vision_proj.weight"] = torch.zeros(256, vision.width)
    state["blip.text_proj.weight"] = torch.zeros(256, 768)
    randomise_(state, generator)
    torch.save(state, folder / "ImageReward.pt")
    return folder


TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def write_open_clip_files(folder: Path, generator: torch.Generator, *, quick_gelu: bool = False,
                          weights_name: str = "open_clip_pytorch_model.bin", wrap_state_dict: bool = False) -> Path:
    """open_clip_config.json + a random tiny CLIP's weights (wrapped in {'state_dict'} like HPSv2 if asked)."""
    import open_clip
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = dict(TINY_OPEN_CLIP, quick_gelu=quick_gelu)
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"size": 64, "mean": [0.48145466, 0.4578275, 0.40821073],
                                                         "std": [0.26862954, 0.26130258, 0.27577711]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    model = open_clip.CLIP(**model_cfg)
    state = model.state_dict()
    for key, tensor in state.items():
        if tensor.is_floating_point() and key != "logit_scale" and "ln_" not in key:
            tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    torch.save({"state_dict": state, "epoch": 1} if wrap_state_dict else state, folder / weights_name)
    return folder / weights_name


def write_aesthetic_head(path: Path, generator: torch.Generator, width: int = 32) -> Path:
    """The improved-aesthetic-predictor MLP layout (layers.0/2/4/6/7) with random weights."""
    from verifiers.image_reward_model import RewardHead
    head = RewardHead(width)
    state = head.state_dict()
    for key, tensor in state.items():
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * tensor.shape[-1] ** -0.5)
    torch.save(state, path)
    return path


def write_pickscore_folder(folder: Path, generator: torch.Generator) -> Path:
    """A tiny transformers CLIPModel saved with save_pretrained (config.json + model.safetensors)."""
    from transformers import CLIPConfig, CLIPModel
    config = CLIPConfig(
        text_config={"vocab_size": 49408, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "eos_token_id": 49407,
                     "bos_token_id": 49406, "pad_token_id": 0},
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 16, "hidden_act": "gelu"},
        projection_dim=32,
    )
    model = CLIPModel(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(str(folder))
    return folder
