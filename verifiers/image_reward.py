"""ImageReward verifier (Xu et al. 2023) from the official files, without the `image-reward` package."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from .base import Verifier
from .checkpoints import check_state, load_exact, read_state_dict
from .image_reward_model import ImageRewardNet, TextConfig, VisionConfig
from .preprocess import clip_preprocess
from .registry import resolve_file

logger = logging.getLogger(__name__)

# Standardisation constants of ImageReward v1.0 (reward = (raw - mean) / std).
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
MAX_PROMPT_TOKENS = 35  # the model was trained on prompts padded/truncated to 35 WordPiece tokens
VISION_HEAD_DIM = 64     # BLIP ViTs use 64-wide heads (ViT-L: 16 heads of 64)
IMAGE_REWARD_FIX = "Pick the official ImageReward.pt (THUDM/ImageReward)"


def vision_config_from_state(state: dict[str, torch.Tensor], prefix: str = "blip.visual_encoder.") -> VisionConfig:
    """The ViT shape, read from tensor shapes in the checkpoint."""
    width = state[prefix + "cls_token"].shape[-1]
    patch = state[prefix + "patch_embed.proj.weight"].shape[-1]
    grid = math.isqrt(state[prefix + "pos_embed"].shape[1] - 1)
    depth = len({k.split(".")[3] for k in state if k.startswith(prefix + "blocks.")})
    mlp_hidden = state[prefix + "blocks.0.mlp.fc1.weight"].shape[0]
    return VisionConfig(image_size=grid * patch, patch_size=patch, width=width, depth=depth,
                        heads=max(1, width // VISION_HEAD_DIM), mlp_hidden=mlp_hidden)


def text_config_from_json(path: Path, encoder_width: int) -> TextConfig:
    """BLIP med_config.json -> TextConfig (encoder_width follows the ViT, as in BLIP)."""
    raw = json.loads(Path(path).read_text())
    fields = {k: raw[k] for k in TextConfig.__dataclass_fields__ if k in raw}
    fields["encoder_width"] = encoder_width
    return TextConfig(**fields)


class ImageRewardVerifier(Verifier):
    """Standardised ImageReward: BLIP image tokens, prompt cross-attends, MLP on [CLS]."""

    name = "image_reward"
    differentiable = True
    needs_prompt = True

    def __init__(self, net: ImageRewardNet, tokenizer, *, chunk_size: int = 4, device="cpu", dtype=torch.float32):
        super().__init__(chunk_size=chunk_size, device=device, dtype=dtype)
        self.net = net
        self.tokenizer = tokenizer
        self.image_size = net.blip.visual_encoder.cfg.image_size
        self._warned_truncation = False
        self.finish_init()

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """WordPiece ids and mask, padded/truncated to 35 tokens as ImageReward expects."""
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_PROMPT_TOKENS,
                                return_tensors="pt")
        if not self._warned_truncation:
            lengths = [len(self.tokenizer.tokenize(p)) + 2 for p in prompts]
            if max(lengths) > MAX_PROMPT_TOKENS:
                logger.warning("image_reward: prompt longer than %d tokens is truncated (as the model was trained)",
                               MAX_PROMPT_TOKENS)
                self._warned_truncation = True
        return tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device)

    def raw_score(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Standardised reward for already-preprocessed pixels (the official `score_gard` contract)."""
        return (self.net(pixels, input_ids, attention_mask) - REWARD_MEAN) / REWARD_STD

    def key_fields(self) -> dict:
        """The base fields and the input size."""
        return {**super().key_fields(), "image_size": self.image_size}

    def score_chunk(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        pixels = clip_preprocess(images, self.image_size)
        input_ids, attention_mask = self.tokenize(prompts)
        return self.raw_score(pixels, input_ids, attention_mask)


def find_vocab(folder: Path | None, vocab: str | Path) -> Path:
    """vocab.txt in the folder, or in its bert-base-uncased/ subfolder."""
    if folder is not None and not Path(vocab).is_absolute():
        nested = Path(folder) / "bert-base-uncased" / Path(vocab).name
        if not (Path(folder) / vocab).is_file() and nested.is_file():
            return nested
    return resolve_file(folder, vocab, "image_reward", "vocab.txt")


def load_image_reward(folder: str | Path | None = None, *, checkpoint: str | Path = "ImageReward.pt",
                      med_config: str | Path = "med_config.json", vocab: str | Path = "vocab.txt",
                      device="cpu", dtype=torch.float32, chunk_size: int = 4) -> ImageRewardVerifier:
    """Build ImageReward from the official files in `folder` (or explicit paths); never downloads."""
    checkpoint_path = resolve_file(folder, checkpoint, "image_reward", "ImageReward.pt")
    config_path = resolve_file(folder, med_config, "image_reward", "med_config.json")
    vocab_path = find_vocab(folder, vocab)
    from transformers import BertTokenizer  # lazy: only this verifier needs it
    tokenizer = BertTokenizer(vocab_file=str(vocab_path), do_lower_case=True)

    state = read_state_dict(checkpoint_path)
    prefix = "blip.visual_encoder."
    shape_keys = [prefix + k for k in ("cls_token", "patch_embed.proj.weight", "pos_embed", "blocks.0.mlp.fc1.weight")]
    check_state({k: tuple(state[k].shape) if k in state else () for k in shape_keys}, state, checkpoint_path,
                what="ImageReward (BLIP ViT + BERT)", fix=IMAGE_REWARD_FIX)
    vision = vision_config_from_state(state)
    text = text_config_from_json(config_path, vision.width)
    if len(tokenizer) > text.vocab_size:
        raise ValueError(f"vocabulary {vocab_path} has {len(tokenizer)} tokens but med_config.json says "
                         f"vocab_size={text.vocab_size}: use the bert-base-uncased vocab.txt")
    with torch.device("meta"):  # no random init: every tensor comes from the checkpoint
        net = ImageRewardNet(vision, text)
    load_exact(net, state, checkpoint_path, what=f"ImageReward with {config_path.name} from beside it",
               fix=IMAGE_REWARD_FIX + f" and the med_config.json that came with it")
    return ImageRewardVerifier(net, tokenizer, chunk_size=chunk_size, device=device, dtype=dtype)
