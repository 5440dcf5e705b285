"""`python -m worlds.digits build`: make the digits world's weights from a seed, on CPU.

Stages (all by default): the constructed VAE, the class-conditional denoiser, two timm classifiers on disjoint halves
of the training split. Each writes its files under --out and records itself in the manifest `world.json`.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from worlds.digits import vae
from worlds.digits.data import load_digits_split
from worlds.digits.train_denoiser import NULL_CLASS, TOKENS, DenoiserConfig, train_denoiser

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = "world.json"
UNET_FILE = "digits_unet_sd15.safetensors"
VAE_FILE = "digits_taesd_vae.safetensors"
EMBEDDINGS_FILE = "digits_embeddings.safetensors"
LABELS_FILE = "digits_labels.txt"
LABELS = [str(d) for d in range(10)]
# SD1.5 detection fixes the UNet at 13.6 M parameters (27.3 MB in fp16); storing its largest matrix, the time
# embedding's 1280 x 1280 second layer, in float8 keeps all files under 30 MB. Measured: the judge's accuracy on
# samples is unchanged (check stage, both CFG scales); ComfyUI upcasts it on load like any fp16 weight.
FLOAT8_UNET_KEYS = ("time_embed.2.weight",)

log = logging.getLogger("digits.build")


def read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def write_manifest(out: Path, manifest: dict):
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _save(tensors: dict, path: Path, metadata: dict | None = None):
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)


def build_vae(out: Path) -> dict:
    sd = {k: v.to(torch.float8_e4m3fn) for k, v in vae.taesd_state_dict().items()}
    assert all(torch.equal(v.float(), w) for v, w in zip(sd.values(), vae.taesd_state_dict().values())), \
        "a VAE weight is not exact in float8"
    _save(sd, out / VAE_FILE, {"format": "taesd", "constructed": "true"})
    return {"file": VAE_FILE, "loader": "VAELoader", "format": "TAESD", "dtype": "float8_e4m3fn",
            "made": "constructed (weights written in code, exact; nothing trained)",
            "latent": [vae.LATENT_CHANNELS, 8, 8], "image": [3, 64, 64], "vae_scale": vae.SCALE}


def build_denoiser(out: Path, split, cfg: DenoiserConfig, checkpoint: Path | None = None) -> dict:
    grey, labels = split.grey[split.train], split.labels[split.train]

    def save_checkpoint(step, ema):   # lets a long run be inspected while it trains
        if checkpoint is not None and step % (cfg.log_every * 4) == 0:
            torch.save({"step": step, "model": ema.state_dict()}, checkpoint)

    result = train_denoiser(grey, labels, cfg, progress=save_checkpoint)
    unet_sd = {k: v.detach().to(torch.float8_e4m3fn if k in FLOAT8_UNET_KEYS else torch.float16)
               for k, v in result.unet.state_dict().items()}
    _save(unet_sd, out / UNET_FILE, {"format": "sd15-unet", "trained_on": "sklearn digits, train split"})
    _save({"embeddings": result.embeddings.to(torch.float16)}, out / EMBEDDINGS_FILE,
          {"labels": ",".join(LABELS), "null_index": str(NULL_CLASS)})
    (out / LABELS_FILE).write_text("\n".join(LABELS) + "\n")
    return {
        "unet": {"file": UNET_FILE, "loader": "UNETLoader", "detected_as": "SD15",
                 "dtype": "float16, except %s in float8_e4m3fn" % ", ".join(FLOAT8_UNET_KEYS),
                 "parameters": sum(v.numel() for v in unet_sd.values()), "made": "trained",
                 "prediction": "epsilon", "schedule": "SD1.5 discrete (scaled_linear 0.00085..0.012, 1000 steps)"},
        "embeddings": {"file": EMBEDDINGS_FILE, "shape": list(result.embeddings.shape), "tokens": TOKENS,
                       "rows": LABELS + ["<null>"],
                       "made": "trained with the UNet (condition dropout %.2f)" % cfg.drop},
        "denoiser_training": {"steps": cfg.steps, "batch": cfg.batch, "lr": cfg.lr, "ema": cfg.ema,
                              "bf16_autocast": cfg.bf16, "threads": cfg.threads, "seconds": round(result.seconds, 1),
                              "loss_curve": [[s, round(v, 5)] for s, v in result.losses]},
    }


def _list_files(out: Path, manifest: dict):
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest["files"] = {p.name: p.stat().st_size for p in files}
    manifest["total_bytes"] = sum(manifest["files"].values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worlds.digits build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage", choices=["all", "vae", "denoiser", "classifiers", "check"], default="all")
    parser.add_argument("--denoiser-steps", type=int, default=DenoiserConfig.steps)
    parser.add_argument("--batch", type=int, default=DenoiserConfig.batch)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grid", type=Path, default=Path(__file__).resolve().parent / "samples.png",
                        help="where the check stage writes its sample grids (one per CFG scale)")
    parser.add_argument("--checkpoint", type=Path, help="save the denoiser's EMA weights here while it trains")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    split = load_digits_split(args.seed)
    manifest = read_manifest(args.out)
    import timm

    manifest.update(
        world="sklearn handwritten digits (load_digits): 8x8 digits as 4x8x8 latents, decoded to 64x64 RGB",
        command=f"python -m worlds.digits build --seed {args.seed}", card="worlds/digits/README.md",
        made_with={"torch": torch.__version__.split("+")[0], "timm": timm.__version__},
        seed=args.seed, labels_file=LABELS_FILE,
        labels=("one label per line, the numerals '0'..'9' in class order; a prompt names its digit as a numeral "
                "('a handwritten 7' -> '7'), and Digits Conditioning also accepts the words zero..nine"),
        split={"held_out_fraction": 0.2, "stratified": True, "n_train": len(split.train),
               "n_held_out": len(split.held_out), "train_halves": [len(h) for h in split.train_halves],
               "how": "worlds/digits/data.py load_digits_split(seed)"})
    times = manifest.setdefault("build_seconds", {})
    if args.stage in ("all", "vae"):
        t0 = time.time()
        manifest["vae"] = build_vae(args.out)
        times["vae"] = round(time.time() - t0, 1)
    if args.stage in ("all", "denoiser"):
        t0 = time.time()
        cfg = DenoiserConfig(steps=args.denoiser_steps, batch=args.batch, seed=args.seed, threads=args.threads)
        manifest.update(build_denoiser(args.out, split, cfg, args.checkpoint))
        times["denoiser"] = round(time.time() - t0, 1)
    if args.stage in ("all", "classifiers"):
        from worlds.digits.classifiers import build_classifiers

        t0 = time.time()
        manifest["classifiers"] = build_classifiers(args.out, split, seed=args.seed, threads=args.threads)
        times["classifiers"] = round(time.time() - t0, 1)
    times["total"] = round(sum(v for k, v in times.items() if k not in ("total", "check")), 1)
    _list_files(args.out, manifest)
    write_manifest(args.out, manifest)
    if args.stage in ("all", "check"):   # not part of the build time: it only measures what was built
        from worlds.digits.check import check_samples

        t0 = time.time()
        manifest["generated_check"] = check_samples(args.out, seed=args.seed, grid=args.grid)
        times["check"] = round(time.time() - t0, 1)
    _list_files(args.out, manifest)
    write_manifest(args.out, manifest)
    log.info("wrote %s (build seconds: %s)", args.out / MANIFEST, times)
    return 0
