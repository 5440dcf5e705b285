"""`python -m worlds.digits comfy-check`: the committed world sampled through real ComfyUI nodes, scored by both
classifiers (UNETLoader, Digits Conditioning, KSampler with euler, VAEDecode; in-process ComfyUI, as the tests)."""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import torch

from worlds.digits.build import WEIGHTS_DIR
from worlds.digits.check import load_world, log_probs

log = logging.getLogger("digits.comfy_check")


def digit_prompt(manifest: dict, digit: int, batch: int, seed: int, steps: int, cfg: float) -> dict:
    """API-format graph: 'a handwritten <digit>' -> a batch of decoded 64 x 64 digits, captured for the caller."""
    return {
        "unet": {"class_type": "UNETLoader",
                 "inputs": {"unet_name": manifest["unet"]["file"], "weight_dtype": "default"}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": manifest["vae"]["file"]}},
        "pos": {"class_type": "DiffusionSearchDigitsConditioning", "inputs": {"text": f"a handwritten {digit}"}},
        "neg": {"class_type": "DiffusionSearchDigitsConditioning", "inputs": {"text": ""}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": batch}},
        "sample": {"class_type": "KSampler", "inputs": {
            "model": ["unet", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
            "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["vae", 0]}},
        "capture": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["decode", 0], "key": "digits"}},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worlds.digits comfy-check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--seed", type=int, default=1000, help="class d samples with KSampler seed SEED + d")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from devtools.comfy_runtime import ComfyRuntime

    manifest, _, _, classifiers = load_world(args.weights)
    base = Path(tempfile.mkdtemp(prefix="digits_comfy_check_"))
    for kind in ("unet", "vae"):
        (base / "models" / kind).mkdir(parents=True)
        shutil.copyfile(args.weights / manifest[kind]["file"], base / "models" / kind / manifest[kind]["file"])
    runtime = ComfyRuntime.boot(base, base / "models")
    report = {"comfyui": "modern" if runtime.modern else "2024", "per_class": args.per_class, "steps": args.steps,
              "sampler": "KSampler euler/normal"}
    for cfg in args.cfg:
        correct = {role: [] for role in classifiers}
        for digit in range(10):
            runtime.run(digit_prompt(manifest, digit, args.per_class, args.seed + digit, args.steps, cfg))
            images = runtime.captured["digits"].movedim(-1, 1).float()
            for role, classifier in classifiers.items():
                correct[role].append((log_probs(classifier, images).argmax(1) == digit).float().mean().item())
        report[f"cfg_{cfg:g}"] = {role: {"accuracy": round(sum(v) / 10, 4), "per_class": [round(x, 2) for x in v]}
                                  for role, v in correct.items()}
        log.info("cfg %g: %s", cfg, report[f"cfg_{cfg:g}"])
    print(json.dumps(report))
    return 0
