"""The numbers world's third classifier, the selector of dual verifiers: another architecture than the guide and the
judge (timm `test_efficientnet`), trained on the guide's half of the training split, never on the judge's, so the
judge stays independent of both verifiers a search uses.

    python -m worlds.numbers.selector [--out worlds/numbers/weights] [--threads 2]

Writes numbers_select_test_efficientnet.safetensors (float16) and its entry in the world's manifest (world.json).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from worlds.digits.classifiers import ClassifierConfig, accuracy, images_of, normalisation, train_classifier
from worlds.digits.data import load_digits_split

SELECT_ARCH = "test_efficientnet"
SELECT_FILE = f"numbers_select_{SELECT_ARCH}.safetensors"
log = logging.getLogger("numbers.selector")


def main(argv=None) -> int:
    from safetensors.torch import save_file

    from worlds.numbers.world import WEIGHTS_DIR
    parser = argparse.ArgumentParser(prog="python -m worlds.numbers.selector", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    split = load_digits_split(args.seed)
    cfg = ClassifierConfig(seed=args.seed + 2)
    started = time.time()
    idx = split.train_halves[0]                    # the guide's half: the judge's half stays unseen
    model = train_classifier(SELECT_ARCH, split.grey[idx], split.labels[idx], cfg)
    mean, std = normalisation(SELECT_ARCH)
    acc = accuracy(model, images_of(split.grey[split.held_out]), split.labels[split.held_out], mean, std)
    sd = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(args.out / SELECT_FILE), metadata={"arch": SELECT_ARCH, "num_classes": "10"})
    manifest_path = args.out / "world.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("classifiers", {})["select"] = {
        "file": SELECT_FILE, "arch": SELECT_ARCH, "dtype": "float16", "labels": "digits_labels.txt",
        "parameters": sum(p.numel() for p in model.parameters()), "input_size": [3, 64, 64], "mean": mean,
        "std": std, "trained_on": f"training split, half A ({len(idx)} digits; the guide's half, not the judge's)",
        "held_out_accuracy": round(acc, 4), "n_held_out": int(len(split.held_out)),
        "training": {"epochs": cfg.epochs, "batch": cfg.batch, "lr": cfg.lr, "seed": cfg.seed,
                     "seconds": round(time.time() - started, 1)}}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("selector %s: held-out accuracy %.4f (%.0f s)", SELECT_ARCH, acc, time.time() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
