"""`python -m worlds.digits speed`: what makes the digits experiment fast on a CPU, measured side by side.

1. The world's TAESD decoder (loaded by ComfyUI's own VAE class from the shipped file) at 64 px: forward and
   forward + backward (local search's gradient), float32 and bf16 autocast, NCHW and channels-last (NHWC), 32 rows.
2. Best-of-N, FK and local search through the real nodes (one digit, `--latents` latents, N = 8, T = 8) in four
   settings, each adding one change: float32 with 256-row chunks and the Langevin gain reported (how the experiment
   ran before), bf16 autocast, 32-row chunks, no gain report. The samples must not change (checked, printed).
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from worlds.digits.experiment import boot, precision_context
from worlds.digits.graphs import read_world
from worlds.digits.methods import METHODS, Settings, search_graph

log = logging.getLogger("digits.speed")
VARIANTS = (("fp32, 256-row chunks, gain reported", "fp32", Settings(chunk_size=256, report_gain=True)),
            # score_size 64 = the image size: the same scoring, but a new graph, so ComfyUI does not reuse the run
            ("+ bf16 autocast", "bf16", Settings(chunk_size=256, report_gain=True, score_size=64)),
            ("+ 32-row chunks", "bf16", Settings(chunk_size=32, report_gain=True)),
            ("+ no gain report", "bf16", Settings(chunk_size=32, report_gain=False)))


def _seconds(fn, repeat: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def decoder_table(world, rows: int = 32, repeat: int = 3) -> str:
    import comfy.sd
    import comfy.utils

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(world.folder_for("vae") / world.vae)))
    decoder = vae.first_stage_model.float().requires_grad_(False)
    z = torch.randn(rows, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 3
    lines = ["| precision | layout | forward ms / image | forward + backward ms / image |", "|---|---|---|---|"]
    for precision in ("fp32", "bf16"):
        for layout, fmt in (("NCHW", torch.contiguous_format), ("NHWC", torch.channels_last)):
            zl = z.contiguous(memory_format=fmt)

            def forward():
                with torch.no_grad(), precision_context(precision):
                    decoder.decode(zl)

            def backward():
                zg = zl.detach().clone().requires_grad_(True)
                with precision_context(precision):
                    out = decoder.decode(zg).float().square().sum()
                out.backward()
            lines.append(f"| {precision} | {layout} | {_seconds(forward, repeat) / rows * 1e3:.2f} | "
                         f"{_seconds(backward, repeat) / rows * 1e3:.2f} |")
    return "\n".join(lines)


def methods_table(runtime, world, latents: int, label: str = "3") -> str:
    lines = ["| method | " + " | ".join(v[0] for v in VARIANTS) + " | same samples |",
             "|---|" + "---|" * (len(VARIANTS) + 1)]
    for name in ("best_of_n", "fk", "local"):
        times, images = [], []
        for index, (_, precision, settings) in enumerate(VARIANTS):
            if settings.report_gain is False and not METHODS[name].local:
                continue   # the gain report is a local-search setting: the same graph, ComfyUI would reuse it
            key = f"speed-{name}-{index}"
            graph = search_graph(world, METHODS[name], 8, settings, label, latents, 1.0, 3, key)
            started = time.perf_counter()
            with precision_context(precision):
                runtime.run(graph)
            times.append(time.perf_counter() - started)
            images.append(runtime.captured.pop(key).float())
        same = all(torch.equal(images[1], other) for other in images[2:])   # the bf16 runs: bit for bit
        close = float((images[0] - images[1]).abs().amax())                 # fp32 vs bf16: how far apart
        cells = [f"{t:.1f} s" for t in times] + ["-"] * (len(VARIANTS) - len(times))
        lines.append(f"| {name} | " + " | ".join(cells) +
                     f" | bf16 runs {'identical' if same else 'DIFFER'}; fp32 vs bf16 max abs Δ {close:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worlds.digits speed", description=__doc__.splitlines()[0])
    parser.add_argument("--latents", type=int, default=20, help="latents of one digit per node run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    world = read_world()
    runtime = boot(world, Path(tempfile.mkdtemp(prefix="digits_speed_")) / "comfyui")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n\nTAESD decoder, 32 rows at 64 px:")
    print(decoder_table(world))
    print(f"\nOne digit, {args.latents} latents, N = 8, T = 8, seconds per node run:")
    print(methods_table(runtime, world, args.latents))
    return 0
