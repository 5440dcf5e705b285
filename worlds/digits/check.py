"""Sample-quality check of a built world: class-conditional samples scored by both classifiers, and a PNG grid."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from worlds.digits import vae

log = logging.getLogger(__name__)


def load_world(out: Path):
    """The built UNet, embeddings and classifiers as torch modules (no ComfyUI), from the manifest in `out`."""
    import timm
    from safetensors.torch import load_file

    from worlds.digits.unet import DigitsUNet

    manifest = json.loads((out / "world.json").read_text())
    unet = DigitsUNet()
    unet.load_state_dict({k: v.float() for k, v in load_file(str(out / manifest["unet"]["file"])).items()})
    embeddings = load_file(str(out / manifest["embeddings"]["file"]))["embeddings"].float()
    classifiers = {}
    for role, entry in manifest.get("classifiers", {}).items():
        model = timm.create_model(entry["arch"], num_classes=10, pretrained=False)
        model.load_state_dict(load_file(str(out / entry["file"])))
        classifiers[role] = (model.float().eval(), entry["mean"], entry["std"])
    return manifest, unet.eval(), embeddings, classifiers


def log_probs(classifier, images: torch.Tensor) -> torch.Tensor:
    model, mean, std = classifier
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    with torch.no_grad():
        return torch.log_softmax(model((images - m) / s).float(), dim=1)


def save_grid(images: torch.Tensor, rows: int, path: Path, gap: int = 4):
    """(N, 3, H, W) in [0, 1] -> a PNG with `rows` rows, cells parted by dark grey lines (digits touch their edges)."""
    from PIL import Image

    images = torch.nn.functional.pad(images, (0, gap, 0, gap), value=0.3)
    n, c, h, w = images.shape
    cols = n // rows
    grid = images[: rows * cols].reshape(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    Image.fromarray((grid * 255).round().clamp(0, 255).byte().numpy()).save(path)


def check_samples(out: Path, per_class: int = 10, steps: int = 25, cfgs=(1.0, 3.0), seed: int = 0,
                  grid: Path | None = None) -> dict:
    """Judge/guide accuracy on generated digits, per class, at each CFG scale (DDIM in torch, same weights)."""
    from worlds.digits.train_denoiser import sample

    _, unet, embeddings, classifiers = load_world(out)
    labels = torch.arange(10).repeat_interleave(per_class)
    result = {"per_class": per_class, "steps": steps, "sampler": "DDIM (eta 0)", "seed": seed}
    for cfg in cfgs:
        z = sample(unet, embeddings, labels, cfg, steps, torch.Generator().manual_seed(seed))
        images = vae.decode(z)
        entry = {}
        for role, clf in classifiers.items():
            correct = (log_probs(clf, images).argmax(1) == labels).float()
            entry[role] = {"accuracy": round(correct.mean().item(), 4),
                           "per_class": [round(v, 2) for v in correct.reshape(10, per_class).mean(1).tolist()]}
        result[f"cfg_{cfg:g}"] = entry
        if grid is not None:
            save_grid(images[:, :, ::2, ::2], 10, grid.with_name(f"{grid.stem}_cfg{cfg:g}{grid.suffix}"))
        log.info("cfg %g: %s", cfg, {r: e["accuracy"] for r, e in entry.items()})
    return result
