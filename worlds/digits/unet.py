"""The smallest UNet that ComfyUI detects as SD1.5, as a trainable torch module with ComfyUI's key names.

SD1.5 detection fixes model_channels=320, context_dim=768, a conv proj_in and no label_emb; levels, blocks and depths
are read from the keys. One level (ResBlock + SpatialTransformer in, two ResBlocks out, no middle block) is the
smallest layout both ComfyUI versions accept (13.6 M parameters). The math follows ldm's openaimodel, which ComfyUI
runs: `tests/test_digits_build.py` checks that ComfyUI's UNETLoader gives the same output as this module.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = 320          # SD15 detection requires it
CONTEXT = 768           # SD15 detection requires it (read from attn2.to_k)
HEADS = 8               # SD15's num_heads: head size 40
LATENT_CHANNELS = 4


def timestep_embedding(t: torch.Tensor, dim: int = CHANNELS, max_period: float = 10000.0) -> torch.Tensor:
    """ldm's sinusoidal embedding: cos first, then sin."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(4 * c_out, c_out))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, c_out), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip_connection = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, emb):
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Attention(nn.Module):
    def __init__(self, dim: int, context_dim: int):
        super().__init__()
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x, context):
        b = x.shape[0]
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (t.reshape(b, -1, HEADS, t.shape[-1] // HEADS).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, -1, q.shape[1] * q.shape[-1]))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, x):
        return self.net(x)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.attn1 = Attention(dim, dim)
        self.attn2 = Attention(dim, CONTEXT)
        self.ff = FeedForward(dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context):
        n = self.norm1(x)
        x = x + self.attn1(n, n)
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.proj_in = nn.Conv2d(c, c, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(c)])
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        for block in self.transformer_blocks:
            y = block(y, context)
        return x + self.proj_out(y.transpose(1, 2).reshape(b, c, h, w))


class _InputLevel(nn.Module):
    """input_blocks.1: ResBlock then SpatialTransformer (indices 0 and 1, as ComfyUI's TimestepEmbedSequential)."""

    def __init__(self, c: int):
        super().__init__()
        self.add_module("0", ResBlock(c, c))
        self.add_module("1", SpatialTransformer(c))

    def forward(self, x, emb, context):
        return getattr(self, "1")(getattr(self, "0")(x, emb), context)


class _ResOnly(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.add_module("0", ResBlock(c_in, c_out))

    def forward(self, x, emb):
        return getattr(self, "0")(x, emb)


class DigitsUNet(nn.Module):
    """eps(x_t, t, context) with the state-dict keys of ComfyUI's SD1.5 UNet (bare, as UNETLoader reads them).

    `channels` other than 320 only serve the quick training test: ComfyUI detects SD1.5 at 320 alone.
    """

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        c = self.channels = channels
        self.time_embed = nn.Sequential(nn.Linear(c, 4 * c), nn.SiLU(), nn.Linear(4 * c, 4 * c))
        self.input_blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(LATENT_CHANNELS, c, 3, padding=1)),
                                           _InputLevel(c)])
        self.output_blocks = nn.ModuleList([_ResOnly(2 * c, c), _ResOnly(2 * c, c)])
        self.out = nn.Sequential(nn.GroupNorm(32, c), nn.SiLU(), nn.Conv2d(c, LATENT_CHANNELS, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)      # start as eps = 0: a common, stable diffusion init
        nn.init.zeros_(self.out[2].bias)

    def forward(self, x, t, context):
        emb = self.time_embed(timestep_embedding(t, self.channels).to(x.dtype))
        h0 = self.input_blocks[0](x)
        h1 = self.input_blocks[1](h0, emb, context)
        # no middle block: the first output block joins the last input block's output with itself (its skip)
        h = self.output_blocks[0](torch.cat([h1, h1], dim=1), emb)
        h = self.output_blocks[1](torch.cat([h, h0], dim=1), emb)
        return self.out(h)
