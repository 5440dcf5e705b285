"""Search overhead inside ComfyUI: the BFS node vs plain SamplerCustom + euler_ancestral on the same N latents.

    python -m benchmarks.comfy_search [--comfyui PATH] [--device cpu|cuda] [--size tiny|sd15-full]
                                      [--particles 8] [--steps 30] [--repeats 3] [--pixels P]

Both runs go through ComfyUI's own SamplerCustom with the same UNet, conditioning, schedule and batch of N latents:
plain = euler_ancestral on a batch of N; search = the BFS sampler node (the paper's preset, resampling at 4 steps)
on 1 latent x N particles, scoring with TAESD and a weight-free verifier. Printed side by side: wall times, the ratio
search / plain, and the same ratio with the measured decode + scoring time taken out (the search's own overhead;
target < 10%). `--size sd15-full` builds random full-size SD1.5 UNet weights (no download) and samples 512 px.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_UNET_FILE = "random_sd15_unet.safetensors"
SIZES = {"tiny": 64, "sd15-full": 512}
log = logging.getLogger("comfy_search")


def full_sd15_unet_state_dict(seed: int = 0, dtype=torch.float16) -> dict:
    """Random weights in the SD1.5 UNet layout (860 M parameters, bare ldm keys), built without any download."""
    from benchmarks.tiny_models import CHANNELS, LATENT_CHANNELS, TIME_EMBED, _res_block, _StateDict, _transformer

    sd = _StateDict(seed)
    sd.linear("time_embed.0", TIME_EMBED, CHANNELS)
    sd.linear("time_embed.2", TIME_EMBED, TIME_EMBED)
    sd.conv("input_blocks.0.0", CHANNELS, LATENT_CHANNELS, std=0.1)
    mults, attention_levels, ch, skips, index = (1, 2, 4, 4), (0, 1, 2), CHANNELS, [CHANNELS], 1
    for level, mult in enumerate(mults):
        for _ in range(2):
            out = mult * CHANNELS
            _res_block(sd, f"input_blocks.{index}.0.", ch, out)
            ch = out
            if level in attention_levels:
                _transformer(sd, f"input_blocks.{index}.1.", ch)
            skips.append(ch)
            index += 1
        if level != len(mults) - 1:
            sd.conv(f"input_blocks.{index}.0.op", ch, ch)   # strided-conv downsample
            skips.append(ch)
            index += 1
    _res_block(sd, "middle_block.0.", ch, ch)
    _transformer(sd, "middle_block.1.", ch)
    _res_block(sd, "middle_block.2.", ch, ch)
    index = 0
    for level, mult in reversed(list(enumerate(mults))):
        for block in range(3):
            out = mult * CHANNELS
            _res_block(sd, f"output_blocks.{index}.0.", ch + skips.pop(), out)
            ch, sub = out, 1
            if level in attention_levels:
                _transformer(sd, f"output_blocks.{index}.1.", ch)
                sub = 2
            if level and block == 2:
                sd.conv(f"output_blocks.{index}.{sub}.conv", ch, ch)   # upsample conv
            index += 1
    sd.norm("out.0", CHANNELS)
    sd.conv("out.2", LATENT_CHANNELS, CHANNELS, std=0.01)
    return {k: v.to(dtype).contiguous() for k, v in sd.tensors.items()}


def write_models(models_dir: Path, size: str) -> dict:
    from benchmarks.tiny_models import write_tiny_models
    from safetensors.torch import save_file

    names = write_tiny_models(models_dir)     # the TAESD VAE here is full-size TAESD (64 channels)
    if size == "sd15-full":
        path = models_dir / "unet" / FULL_UNET_FILE
        if not path.exists():
            started = time.perf_counter()
            save_file(full_sd15_unet_state_dict(), str(path))
            log.info("built random SD1.5 UNet in %.1f s", time.perf_counter() - started)
        names["unet"] = FULL_UNET_FILE
    return names


def _common(names: dict, pixels: int, batch: int, steps: int) -> dict:
    loader_inputs = {"unet_name": names["unet"]}
    return {
        "unet": {"class_type": "UNETLoader", "inputs": loader_inputs},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": names["vae"]}},
        "pos": {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": 0, "text": "a red apple"}},
        "neg": {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": 1, "text": ""}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": pixels, "height": pixels,
                                                                "batch_size": batch}},
        "sched": {"class_type": "BasicScheduler", "inputs": {"model": ["unet", 0], "scheduler": "normal",
                                                             "steps": steps, "denoise": 1.0}},
        "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["sc", 0], "key": "bench"}},
    }


def _sampler_custom(seed: int) -> dict:
    return {"class_type": "SamplerCustom", "inputs": {
        "model": ["unet", 0], "add_noise": True, "noise_seed": seed, "cfg": 7.0, "positive": ["pos", 0],
        "negative": ["neg", 0], "sampler": ["sampler", 0], "sigmas": ["sched", 0], "latent_image": ["latent", 0]}}


def plain_graph(names, pixels, particles, steps, seed) -> dict:
    graph = _common(names, pixels, particles, steps)
    graph["sampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}}
    graph["sc"] = _sampler_custom(seed)
    return graph


def search_graph(names, pixels, particles, steps, seed, device) -> dict:
    graph = _common(names, pixels, 1, steps)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierColourfulness",
                    "inputs": {"device": "auto" if device != "cpu" else "cpu", "dtype": "float32", "chunk_size": 64}}
    graph["sampler"] = {"class_type": "DiffusionSearchBFSSampler", "inputs": {
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "preset": "bfs",
        "particles": particles, "lam": 10.0, "resampling_steps": 4, "ess_threshold": 0.0,
        "temperature": "increase_exp", "scoring": "max", "resampling": "ssp", "score_size": 0, "chunk_size": 64}}
    graph["sc"] = _sampler_custom(seed)
    return graph


def _timed_run(runtime, graph) -> tuple[float, dict]:
    runtime.events.clear()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    runtime.run(graph)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    finals = [d for e, d in runtime.events if e == "diffusion_search.event" and d.get("type") == "final"]
    return seconds, (finals[-1] if finals else {})


def boot(comfyui: str | None, device: str, base: Path):
    if comfyui:
        os.environ["COMFYUI_PATH"] = comfyui
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.comfy_runtime import ComfyRuntime, comfyui_root

    root = str(comfyui_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    args.cpu = device == "cpu"          # ComfyRuntime keeps cpu=True; on a GPU it picks CUDA otherwise
    return ComfyRuntime.boot(base, base / "models")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                        help="ComfyUI checkout (default: COMFYUI_PATH, else the 2024 snapshot in the venv)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--particles", type=int, default=None, help="N (default 8 on cuda, 4 on cpu)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 30 on cuda, 10 on cpu)")
    parser.add_argument("--pixels", type=int, default=None,
                        help="image side in pixels (default: 64 tiny, 512 sd15-full; small values = smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (2 shared cores here)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    log.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no GPU; use --device cpu")
    particles = args.particles or (8 if args.device == "cuda" else 4)
    steps = args.steps or (30 if args.device == "cuda" else 10)
    pixels = args.pixels or SIZES[args.size]

    base = Path(tempfile.mkdtemp(prefix="comfy_search_bench_"))
    names = write_models(base / "models", args.size)
    runtime = boot(args.comfyui, args.device, base)
    # warm-up: model loading and first-call costs stay out of the figures
    _timed_run(runtime, plain_graph(names, pixels, particles, steps, seed=10_000))
    _timed_run(runtime, search_graph(names, pixels, particles, steps, seed=10_000, device=args.device))
    plain, search, scoring, nfe = [], [], [], None
    for repeat in range(args.repeats):   # interleaved, new seed each time (ComfyUI caches unchanged nodes)
        plain.append(_timed_run(runtime, plain_graph(names, pixels, particles, steps, seed=repeat))[0])
        seconds, final = _timed_run(runtime, search_graph(names, pixels, particles, steps, repeat, args.device))
        search.append(seconds)
        scoring.append(final.get("scoring_seconds", 0.0))
        nfe = final.get("nfe")
    med = statistics.median
    plain_s, search_s, scoring_s = med(plain), med(search), med(scoring)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"ComfyUI: {runtime.root} ({'modern' if runtime.modern else '2024 snapshot'}); device: {device_name}")
    print(f"model: {args.size} ({pixels}px), N={particles} particles, {steps} steps, CFG 7, "
          f"median of {args.repeats}; search NFE={nfe}")
    print(f"{'plain SamplerCustom euler_ancestral (batch N)':<52}{plain_s * 1000:10.1f} ms")
    print(f"{'BFS node (1 latent x N particles), total':<52}{search_s * 1000:10.1f} ms")
    print(f"{'  of which decode + scoring (TAESD + verifier)':<52}{scoring_s * 1000:10.1f} ms")
    print(f"{'ratio search / plain':<52}{search_s / plain_s:10.3f}")
    print(f"{'ratio (search - scoring) / plain':<52}{(search_s - scoring_s) / plain_s:10.3f}")
    overhead = (search_s - scoring_s) / plain_s - 1
    print(f"search overhead beyond decoding and scoring: {overhead * 100:+.1f}% (target < 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
