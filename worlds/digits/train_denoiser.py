"""Train the class-conditional digits denoiser: epsilon prediction on SD1.5's discrete schedule, CFG dropout.

The prompt reaches the UNet as cross-attention context: one learned embedding (TOKENS x 768) per digit and one null
embedding for the unconditional branch, trained jointly with the UNet (the condition is dropped to null with
probability `drop`). ComfyUI's default SD1.5 model sampling (eps, scaled-linear betas 0.00085..0.012, 1000 steps) is
then exactly the training noise process.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from worlds.digits import vae
from worlds.digits.unet import CONTEXT, DigitsUNet

log = logging.getLogger(__name__)

TOKENS = 4                      # context length of one class embedding
NULL_CLASS = 10                 # index of the unconditional (empty prompt) embedding
N_EMBEDDINGS = 11


def sd15_alphas_cumprod(steps: int = 1000) -> torch.Tensor:
    """SD1.5's discrete schedule (ComfyUI's default for SD15: scaled_linear, 0.00085 .. 0.012)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


@dataclass
class DenoiserConfig:
    steps: int = 1500
    batch: int = 64
    lr: float = 3e-4
    warmup: int = 100
    drop: float = 0.1             # condition dropout for classifier-free guidance
    ema: float = 0.998
    seed: int = 0
    threads: int = 2
    log_every: int = 50
    bf16: bool = True             # CPU autocast (fast on AMX cores); the EMA and exported weights stay float32
    channels: int = 320           # 320 is what ComfyUI detects as SD1.5; smaller only for the quick training test


@dataclass
class DenoiserResult:
    unet: DigitsUNet
    embeddings: torch.Tensor       # (11, TOKENS, 768): digits 0..9, then null
    losses: list = field(default_factory=list)     # (step, mean loss over the last log_every steps)
    seconds: float = 0.0


class _Trainable(torch.nn.Module):
    def __init__(self, seed: int, channels: int):
        super().__init__()
        torch.manual_seed(seed)   # torch's default inits draw from the global RNG: seed it once, here only
        self.unet = DigitsUNet(channels)
        for module in self.unet.modules():   # ldm zero-initialises each residual branch's last layer
            for name in ("proj_out",):
                if hasattr(module, name):
                    torch.nn.init.zeros_(getattr(module, name).weight)
                    torch.nn.init.zeros_(getattr(module, name).bias)
            if hasattr(module, "out_layers"):
                torch.nn.init.zeros_(module.out_layers[3].weight)
                torch.nn.init.zeros_(module.out_layers[3].bias)
        g = torch.Generator().manual_seed(seed + 1)
        self.embeddings = torch.nn.Parameter(torch.randn(N_EMBEDDINGS, TOKENS, CONTEXT, generator=g))


def train_denoiser(grey: torch.Tensor, labels: torch.Tensor, cfg: DenoiserConfig, progress=None) -> DenoiserResult:
    """Train on (N, 8, 8) grey digits in [0, 1] with labels 0..9; returns the EMA weights."""
    torch.set_num_threads(cfg.threads)
    model = _Trainable(cfg.seed, cfg.channels)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    x_data = vae.latent_to_model(vae.grey_to_latent(grey))
    abar = sd15_alphas_cumprod()
    g = torch.Generator().manual_seed(cfg.seed + 2)
    losses, window, t0 = [], [], time.time()
    for step in range(1, cfg.steps + 1):
        lr = cfg.lr * min(1.0, step / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in opt.param_groups:
            group["lr"] = max(lr, cfg.lr * 0.02)
        idx = torch.randint(len(x_data), (cfg.batch,), generator=g)
        x0, y = x_data[idx], labels[idx].clone()
        y[torch.rand(cfg.batch, generator=g) < cfg.drop] = NULL_CLASS
        t = torch.randint(len(abar), (cfg.batch,), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[t][:, None, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            pred = model.unet(x_t, t.float(), model.embeddings[y])
        loss = F.mse_loss(pred.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1 - decay)
        window.append(loss.item())
        if step % cfg.log_every == 0 or step == cfg.steps:
            losses.append((step, sum(window) / len(window)))
            window = []
            log.info("denoiser step %d/%d loss %.4f (%.2f s/step)", step, cfg.steps, losses[-1][1],
                     (time.time() - t0) / step)
            if progress is not None:
                progress(step, ema)
    return DenoiserResult(ema.unet, ema.embeddings.detach().clone(), losses, time.time() - t0)


@torch.no_grad()
def sample(unet: DigitsUNet, embeddings: torch.Tensor, labels: torch.Tensor, cfg_scale: float, steps: int,
           generator: torch.Generator) -> torch.Tensor:
    """Deterministic DDIM in the model's space with CFG; returns VAE latents (B, 4, 8, 8). For checks only."""
    abar = sd15_alphas_cumprod()
    ts = torch.linspace(len(abar) - 1, 0, steps).round().long()
    x = torch.randn(len(labels), 4, 8, 8, generator=generator)
    cond, uncond = embeddings[labels], embeddings[NULL_CLASS].expand(len(labels), -1, -1)
    for i, t in enumerate(ts):
        a = abar[t]
        tt = t.float().expand(len(labels))
        e_c = unet(x, tt, cond)
        e = e_c if cfg_scale == 1.0 else unet(x, tt, uncond) + cfg_scale * (e_c - unet(x, tt, uncond))
        x0 = (x - (1 - a).sqrt() * e) / a.sqrt()
        a_next = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * e
    return vae.model_to_latent(x)
