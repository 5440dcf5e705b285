"""Two timm digit classifiers on disjoint halves of the training split: one guides search, one judges it.

They see exactly what the VAE decodes: 64 x 64 RGB in [0, 1] (nearest-upsampled 8 x 8 grey digits), normalised with
the architecture's timm pretrained_cfg mean/std. Light augmentation (shifts of up to 6 px, grey-level noise) so they
score generated digits, which are never exactly on the data, sensibly.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from worlds.digits import vae

log = logging.getLogger(__name__)

GUIDE_ARCH = "test_resnet"      # a small ResNet (timm's smallest registered resnet config)
JUDGE_ARCH = "test_convnext"    # a small ConvNeXt: another family, so the judge shares no architecture with the guide
INPUT = 64


@dataclass
class ClassifierConfig:
    epochs: int = 30
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    max_shift: int = 6            # pixels of the 64 x 64 image
    grey_noise: float = 0.05
    seed: int = 0


def normalisation(arch: str) -> tuple[list, list]:
    import timm

    cfg = timm.create_model(arch, pretrained=False, num_classes=10).pretrained_cfg
    return list(cfg["mean"]), list(cfg["std"])


def images_of(grey: torch.Tensor) -> torch.Tensor:
    """(N, 8, 8) grey -> (N, 3, 64, 64) images in [0, 1], as the digits VAE decodes them."""
    return vae.decode(vae.grey_to_latent(grey))


def _augment(grey: torch.Tensor, cfg: ClassifierConfig, g: torch.Generator, render=images_of) -> torch.Tensor:
    noisy = (grey + cfg.grey_noise * torch.randn(grey.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        images = render(noisy)
    n, s = len(images), cfg.max_shift
    padded = F.pad(images, (s, s, s, s))
    dx = torch.randint(0, 2 * s + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * s + 1, (n,), generator=g)
    return torch.stack([padded[i, :, dy[i]:dy[i] + INPUT, dx[i]:dx[i] + INPUT] for i in range(n)])


def accuracy(model, images: torch.Tensor, labels: torch.Tensor, mean, std) -> float:
    model.eval()
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    with torch.no_grad():
        pred = torch.cat([model((x - m) / s).argmax(1) for x in images.split(256)])
    return (pred == labels).float().mean().item()


def train_classifier(arch: str, grey: torch.Tensor, labels: torch.Tensor, cfg: ClassifierConfig, render=images_of):
    """A timm `arch` (num_classes=10, random init) trained on (N, 8, 8) grey digits as `render` draws them (default:
    the digits VAE's exact decode); returns the model, in eval mode."""
    import timm

    torch.manual_seed(cfg.seed)      # timm's inits draw from the global RNG: seed it once, here only
    model = timm.create_model(arch, pretrained=False, num_classes=10)
    mean, std = normalisation(arch)
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed + 7)
    steps_per_epoch = math.ceil(len(grey) / cfg.batch)
    total, step = cfg.epochs * steps_per_epoch, 0
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(grey), generator=g)
        for idx in order.split(cfg.batch):
            step += 1
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            x = (_augment(grey[idx], cfg, g, render) - m) / s
            loss = F.cross_entropy(model(x), labels[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if (epoch + 1) % 10 == 0:
            log.info("%s epoch %d/%d loss %.4f", arch, epoch + 1, cfg.epochs, loss.item())
    return model.eval()


def build_classifiers(out: Path, split, seed: int, threads: int = 2, cfg: ClassifierConfig | None = None) -> dict:
    from safetensors.torch import save_file

    torch.set_num_threads(threads)
    cfg = cfg or ClassifierConfig(seed=seed)
    held_images, held_labels = images_of(split.grey[split.held_out]), split.labels[split.held_out]
    entries = {}
    for role, arch, half, name in (("guide", GUIDE_ARCH, 0, "A"), ("judge", JUDGE_ARCH, 1, "B")):
        t0 = time.time()
        idx = split.train_halves[half]
        model = train_classifier(arch, split.grey[idx], split.labels[idx], cfg)
        mean, std = normalisation(arch)
        acc = accuracy(model, held_images, held_labels, mean, std)
        file = f"digits_{role}_{arch}.safetensors"
        sd = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
              for k, v in model.state_dict().items()}
        save_file(sd, str(out / file), metadata={"arch": arch, "num_classes": "10"})
        entries[role] = {
            "file": file, "arch": arch, "timm_create": f"timm.create_model('{arch}', num_classes=10, pretrained=False)",
            "dtype": "float16", "parameters": sum(p.numel() for p in model.parameters()),
            "input_size": [3, INPUT, INPUT], "input_range": "RGB in [0, 1], then (x - mean) / std",
            "mean": mean, "std": std, "trained_on": f"training split, half {name} ({len(idx)} digits)",
            "held_out_accuracy": round(acc, 4), "n_held_out": len(held_labels),
            "training": {"epochs": cfg.epochs, "batch": cfg.batch, "lr": cfg.lr, "max_shift_px": cfg.max_shift,
                         "grey_noise": cfg.grey_noise, "seconds": round(time.time() - t0, 1)},
        }
        log.info("%s %s: held-out accuracy %.4f (%.0f s)", role, arch, acc, time.time() - t0)
    return entries
