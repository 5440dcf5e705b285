"""ImageReward's network (Xu et al. 2023): BLIP ViT + BERT text encoder with cross-attention + MLP head.

Written here (no `image-reward` runtime dependency); parameter names follow the official `ImageReward.pt` keys.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VisionConfig:
    """BLIP ViT shape; read from the checkpoint's tensor shapes (ViT-L/16 at 224 px for ImageReward v1.0)."""

    image_size: int = 224
    patch_size: int = 16
    width: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_hidden: int = 4096


@dataclass
class TextConfig:
    """BLIP "med" BERT shape; read from med_config.json (bert-base with cross-attention to the image)."""

    vocab_size: int = 30524
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    encoder_width: int = 1024
    pad_token_id: int = 0


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B,L,H*D] -> [B,H,L,D]."""
    batch, length, width = x.shape
    return x.view(batch, length, heads, width // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[B,H,L,D] -> [B,L,H*D]."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


class ViTAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (key names `qkv`, `proj`)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query, key, value = self.qkv(x).chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(*(split_heads(t, self.heads) for t in (query, key, value)))
        return self.proj(merge_heads(out))


class ViTMlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class ViTBlock(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6, as BLIP)."""

    def __init__(self, width: int, heads: int, mlp_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = ViTAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = ViTMlp(width, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection (key `patch_embed.proj`)."""

    def __init__(self, patch_size: int, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """BLIP's ViT: [CLS] + patches + learned positions -> blocks -> final LayerNorm; returns all tokens."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.cfg = cfg
        num_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.width))
        self.blocks = nn.ModuleList(ViTBlock(cfg.width, cfg.heads, cfg.mlp_hidden) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class TextEmbeddings(nn.Module):
    """BLIP med embeddings: word + absolute position (no token types), LayerNorm."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions)[None])


class AttentionProjections(nn.Module):
    """query/key/value Linear layers (key width = encoder_width for cross-attention)."""

    def __init__(self, hidden: int, source_width: int):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(source_width, hidden)
        self.value = nn.Linear(source_width, hidden)


class AttentionOutput(nn.Module):
    """dense + residual + LayerNorm (post-norm BERT)."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttentionBlock(nn.Module):
    """Self- or cross-attention with BERT's post-norm output; keys `self.*` and `output.*`."""

    def __init__(self, cfg: TextConfig, source_width: int):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.self = AttentionProjections(cfg.hidden_size, source_width)
        self.output = AttentionOutput(cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        query = split_heads(self.self.query(x), self.heads)
        key = split_heads(self.self.key(source), self.heads)
        value = split_heads(self.self.value(source), self.heads)
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        return self.output(merge_heads(context), x)


class FeedForwardIn(nn.Module):
    """BERT intermediate: dense -> exact GELU."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class FeedForwardOut(nn.Module):
    """BERT output: dense + residual + LayerNorm."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class TextLayer(nn.Module):
    """Self-attention over the prompt, cross-attention to image tokens, feed-forward."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.attention = BertAttentionBlock(cfg, cfg.hidden_size)
        self.crossattention = BertAttentionBlock(cfg, cfg.encoder_width)
        self.intermediate = FeedForwardIn(cfg)
        self.output = FeedForwardOut(cfg)

    def forward(self, x: torch.Tensor, text_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, x, text_mask)
        x = self.crossattention(x, image_tokens, None)  # every image token is valid
        return self.output(self.intermediate(x), x)


class TextLayers(nn.Module):
    """Holds `layer.N` (BERT's encoder naming)."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.layer = nn.ModuleList(TextLayer(cfg) for _ in range(cfg.num_hidden_layers))


class MultimodalTextEncoder(nn.Module):
    """BLIP's text encoder in multimodal mode; returns the [CLS] feature."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.embeddings = TextEmbeddings(cfg)
        self.encoder = TextLayers(cfg)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        # BERT's additive padding mask (-10000 as in BLIP), broadcast over heads and query positions
        text_mask = ((1.0 - attention_mask.to(x.dtype)) * -10000.0)[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, text_mask, image_tokens)
        return x[:, 0]


class RewardHead(nn.Module):
    """ImageReward's MLP 768 -> 1024 -> 128 -> 64 -> 16 -> 1 (no activations, as trained); keys `layers.{0,2,4,6,7}`."""

    def __init__(self, width: int = 768):
        super().__init__()
        sizes = [(width, 1024), (1024, 128), (128, 64), (64, 16), (16, 1)]
        slots = {0: 0, 2: 1, 4: 2, 6: 3, 7: 4}  # dropout layers sat at 1, 3, 5
        layers: list[nn.Module] = [nn.Identity() for _ in range(8)]
        for slot, index in slots.items():
            layers[slot] = nn.Linear(*sizes[index])
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)


class BlipParts(nn.Module):
    """Holds `visual_encoder` and `text_encoder` under the checkpoint's `blip.` prefix."""

    def __init__(self, vision: VisionConfig, text: TextConfig):
        super().__init__()
        self.visual_encoder = VisionTransformer(vision)
        self.text_encoder = MultimodalTextEncoder(text)


class ImageRewardNet(nn.Module):
    """Raw ImageReward score (before standardisation) for preprocessed pixels and tokenised prompts."""

    def __init__(self, vision: VisionConfig, text: TextConfig):
        super().__init__()
        self.blip = BlipParts(vision, text)
        self.mlp = RewardHead(text.hidden_size)

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        image_tokens = self.blip.visual_encoder(pixels)
        feature = self.blip.text_encoder(input_ids, attention_mask, image_tokens)
        return self.mlp(feature)
