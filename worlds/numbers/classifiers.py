"""The numbers world's own classifiers, trained on what this world's learned decoder draws (smooth strokes, where the
digits world's guide, trained on blocky exact decodes, reads only 69 % of held-out digits):

- the guide (timm `test_resnet`, the digits guide's architecture), which search maximises;
- the selector of dual verifiers (timm `test_efficientnet`, a third architecture).

Both learn from the guide's half of the training split, never the judge's: the judge (the digits world's ConvNeXt,
half B) stays independent of every verifier a search uses.

    python -m worlds.numbers.classifiers [--out worlds/numbers/weights] [--threads 2]

Writes numbers_guide_test_resnet.safetensors and numbers_select_test_efficientnet.safetensors (float8 e4m3: the
weights budget; held-out accuracy is the same within one digit of 359 as float16) and their entries in the world's
manifest (world.json), with held-out accuracy of the stored weights through both decoders.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from worlds.digits import vae
from worlds.digits.classifiers import ClassifierConfig, accuracy, images_of, normalisation, train_classifier
from worlds.digits.data import load_digits_split

GUIDE_ARCH = "test_resnet"
SELECT_ARCH = "test_efficientnet"
GUIDE_FILE = f"numbers_guide_{GUIDE_ARCH}.safetensors"
SELECT_FILE = f"numbers_select_{SELECT_ARCH}.safetensors"
log = logging.getLogger("numbers.classifiers")


def learned_render(vae_file: Path):
    """(N, 8, 8) grey -> (N, 3, 64, 64) images as this world's VAE file decodes them."""
    from worlds.numbers.decoder import decode, load_decoder

    decoder = load_decoder(vae_file)

    def render(grey: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return decode(decoder, vae.grey_to_latent(grey))
    return render


def stored(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as committed: floating tensors in float8 e4m3 (the loader upcasts), counters as they are."""
    return {k: (v.to(torch.float8_e4m3fn) if v.is_floating_point() else v).contiguous()
            for k, v in model.state_dict().items()}


def main(argv=None) -> int:
    from safetensors.torch import save_file

    from worlds.numbers.world import VAE_FILE, WEIGHTS_DIR
    parser = argparse.ArgumentParser(prog="python -m worlds.numbers.classifiers", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--roles", nargs="+", choices=("guide", "select"), default=["guide", "select"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    split = load_digits_split(args.seed)
    render = learned_render(args.out / VAE_FILE)
    held_grey, held_labels = split.grey[split.held_out], split.labels[split.held_out]
    held = {"learned decoder": render(held_grey), "exact decoder": images_of(held_grey)}
    idx = split.train_halves[0]                    # the guide's half: the judge's half stays unseen
    manifest_path = args.out / "world.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for role, arch, file, seed in (("guide", GUIDE_ARCH, GUIDE_FILE, 1), ("select", SELECT_ARCH, SELECT_FILE, 2)):
        if role not in args.roles:
            continue
        cfg = ClassifierConfig(seed=args.seed + seed)
        started = time.time()
        model = train_classifier(arch, split.grey[idx], split.labels[idx], cfg, render=render)
        mean, std = normalisation(arch)
        sd = stored(model)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        acc = {name: round(accuracy(model, images, held_labels, mean, std), 4) for name, images in held.items()}
        args.out.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(args.out / file), metadata={"arch": arch, "num_classes": "10"})
        manifest.setdefault("classifiers", {})[role] = {
            "file": file, "arch": arch, "dtype": "float8_e4m3fn", "labels": "digits_labels.txt",
            "parameters": sum(p.numel() for p in model.parameters()), "input_size": [3, 64, 64], "mean": mean,
            "std": std, "rendered_by": VAE_FILE,
            "trained_on": f"training split, half A ({len(idx)} digits; the guide's half, not the judge's)",
            "held_out_accuracy": acc["learned decoder"], "held_out_accuracy_exact_decoder": acc["exact decoder"],
            "n_held_out": int(len(held_labels)),
            "training": {"epochs": cfg.epochs, "batch": cfg.batch, "lr": cfg.lr, "seed": cfg.seed,
                         "seconds": round(time.time() - started, 1)}}
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        log.info("%s %s: held-out accuracy %s (%.0f s)", role, arch, acc, time.time() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
