"""The numbers world as experiment pieces: the digits world's UNet and class embeddings, one digit per 64 px strip
(area conditioning, nodes/digits_conditioning.py), this world's learned decoder, and per-position classifiers (the
classifier verifier's "strips, left to right" layout): a number is right only when every digit is."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from worlds.digits.graphs import SELECT_SIZE, WEIGHTS_DIR as DIGITS_WEIGHTS, Classifier, World, read_world
from worlds.digits.experiment import pairwise_rms

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
VAE_FILE = "numbers_taesd_vae.safetensors"
STRIPS = "strips, left to right"
STRIP_WIDTH = 64


def numbers(count: int = 10, seed: int = 20) -> list[str]:
    """`count` distinct two-digit and `count` distinct three-digit numbers (no leading zero), fixed by `seed`."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in (2, 3):
        drawn: list[str] = []
        while len(drawn) < count:
            row = torch.randint(10, (k,), generator=g)
            row[0] = 1 + row[0] % 9
            text = "".join(str(int(d)) for d in row)
            if text not in drawn:
                drawn.append(text)
        out += drawn
    return out


def strips_of(images: torch.Tensor, k: int) -> torch.Tensor:
    """ComfyUI IMAGE (B, H, k * W, 3) -> (B * k, H, W, 3), left to right, image by image."""
    b, h, w, c = images.shape
    return images.reshape(b, h, k, w // k, c).permute(0, 2, 1, 3, 4).reshape(b * k, h, w // k, c)


def score_number(images: torch.Tensor, label: str, guide, judge) -> dict:
    """Whole-number figures of images of one number: the judge's accuracy (every digit right), its summed log p,
    per-position accuracy, the guide's summed log p (what the search maximised), diversity."""
    k = len(label)
    digits = torch.tensor([int(c) for c in label]).repeat(images.shape[0])
    strips = strips_of(images, k)
    figures = {}
    for role, verifier in (("judge", judge), ("guide", guide)):
        lp = verifier.predict(strips)
        right = (lp.argmax(1) == digits).reshape(-1, k)
        figures[f"{role}_acc"] = float(right.all(1).float().mean())
        figures[f"{role}_position_acc"] = float(right.float().mean())
        figures[f"{role}_logp"] = float(lp.gather(1, digits[:, None]).reshape(-1, k).sum(1).mean())
    figures["guide_reward"] = figures.pop("guide_logp")
    figures["diversity"] = pairwise_rms(images)
    return figures


def read_numbers_world(select_size: int = SELECT_SIZE, count: int = 10) -> World:
    """The numbers world: the digits world's UNet, embeddings and judge; this world's VAE, guide and selector (every
classifier in the strips layout)."""
    if not (WEIGHTS_DIR / VAE_FILE).is_file():
        raise FileNotFoundError(f"{WEIGHTS_DIR / VAE_FILE} is missing: train it with "
                                f"`python -m worlds.numbers.decoder {WEIGHTS_DIR / VAE_FILE}` or restore it from git")
    from worlds.numbers.classifiers import GUIDE_ARCH, GUIDE_FILE, SELECT_ARCH, SELECT_FILE

    digits = read_world(DIGITS_WEIGHTS, select_size)
    guide = Classifier(GUIDE_FILE, digits.guide.labels, GUIDE_ARCH, 64, role="guide", layout=STRIPS,
                       home=WEIGHTS_DIR)
    select = Classifier(SELECT_FILE, digits.guide.labels, SELECT_ARCH, 64, role="select", layout=STRIPS,
                        home=WEIGHTS_DIR)
    for classifier in (guide, select):
        if not (WEIGHTS_DIR / classifier.weights).is_file():
            raise FileNotFoundError(f"{WEIGHTS_DIR / classifier.weights} is missing: train it with "
                                    "`python -m worlds.numbers.classifiers` or restore it from git")
    return replace(digits, vae=VAE_FILE, labels=numbers(count), name="numbers", guide=guide,
                   judge=replace(digits.judge, layout=STRIPS), select=select,
                   folders={"unet": DIGITS_WEIGHTS, "vae": WEIGHTS_DIR, "classifiers": DIGITS_WEIGHTS},
                   more_folders={"classifiers": WEIGHTS_DIR}, scorer=score_number, strip_width=STRIP_WIDTH)
