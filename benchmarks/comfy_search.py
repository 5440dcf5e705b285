"""Search cost inside ComfyUI, time and peak memory: the BFS node vs plain sampling, batched vs one after another.

    python -m benchmarks.comfy_search [--comfyui PATH] [--device cpu|cuda] [--size tiny|sd15-full]
                                      [--particles 4 8 16] [--steps 10] [--repeats 2] [--pixels P]

Every run goes through ComfyUI's own SamplerCustom with the same UNet, conditioning and schedule. For each N it prints
time and peak memory (GPU: torch.cuda.max_memory_allocated above the start; CPU: the process's peak resident memory
above the start, sampled every millisecond) of:
- plain sampling of one image (euler_ancestral, batch 1), and of a batch of N;
- the BFS node (the paper's preset, resampling at 4 steps, TAESD + a weight-free verifier) on 1 latent x N particles,
  with its decode + scoring time and the search's own overhead against the plain batch of N (target < 10%);
- the same BFS search with ComfyUI reporting only the free memory one particle row needs (a card where only plain
  sampling of one image fits): the memory policy then runs the particles one after another, same result;
- Best-of-N both ways, side by side: the N particles in one batch (the BFS node's best_of_n preset) and the same N
  run one after another (N plain one-image runs, each decoded and scored: what a search that samples candidates one
  by one costs).
`--size sd15-full` builds random full-size SD1.5 UNet weights (no download) and samples 512 px.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_UNET_FILE = "random_sd15_unet.safetensors"
SIZES = {"tiny": 64, "sd15-full": 512}
log = logging.getLogger("comfy_search")


def full_sd15_unet_state_dict(seed: int = 0, dtype=torch.float16) -> dict:
    """Random weights in the SD1.5 UNet layout (860 M parameters, bare ldm keys), built without any download."""
    from devtools.tiny_models import CHANNELS, LATENT_CHANNELS, TIME_EMBED, _res_block, _StateDict, _transformer

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
    from devtools.tiny_models import write_tiny_models
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


def sequential_graph(names, pixels, steps, seed, device) -> dict:
    """One candidate of a one-by-one Best-of-N: plain sampling of one image, decoded and scored."""
    graph = plain_graph(names, pixels, 1, steps, seed)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierColourfulness",
                    "inputs": {"device": "auto" if device != "cpu" else "cpu", "dtype": "float32", "chunk_size": 64}}
    graph["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["sc", 0], "vae": ["vae", 0]}}
    graph["rank"] = {"class_type": "DiffusionSearchRankImages", "inputs": {
        "images": ["decode", 0], "verifier": ["ver", 0], "prompt": "a red apple", "top_k": 1}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["rank", 3], "key": "bench"}}
    return graph


class PeakMemory:
    """Peak memory of a block above its start: CUDA allocator peak, or the process's resident set sampled each ms."""

    def __init__(self, device: str):
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self):
        while not self._stop.is_set():
            self._max = max(self._max, self._rss())
            time.sleep(0.001)

    def __enter__(self):
        gc.collect()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            _trim_heap()   # hand freed memory back to the OS, so the start is not an earlier run's leftovers
            self._start = self._max = self._rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._start
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._max, self._rss()) - self._start
        return False


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


ONE_ROW = "BFS node, one particle row per call"


@contextlib.contextmanager
def free_memory_for_one_row(runtime, pixels: int):
    """ComfyUI reports just the free memory one particle row needs (by the pack's own policy), as on a card where
    only plain sampling of one image fits: the search then runs its particles one after another."""
    mm = sys.modules["comfy.model_management"]
    memory = sys.modules[f"{runtime.pack.__name__}.bridge.memory"]
    model = next(e.model.model for e in mm.current_loaded_models
                 if e.model is not None and hasattr(e.model.model, "memory_required"))
    fixed, per_row = memory._linear_estimate(model, (4, pixels // 8, pixels // 8))
    budget = fixed + per_row * 2 * 1.5
    free = budget / memory.CPU_SHARE if mm.get_torch_device().type == "cpu" else budget * memory.GPU_MARGIN
    original = mm.get_free_memory
    mm.get_free_memory = lambda dev=None, torch_free_too=False: (free, free) if torch_free_too else free
    try:
        yield
    finally:
        mm.get_free_memory = original


def _timed_run(runtime, graphs, device, one_row=0) -> tuple[float, int, dict]:
    """Run the graphs one after another: (seconds, peak bytes above the start, last final search event)."""
    runtime.events.clear()
    squeeze = free_memory_for_one_row(runtime, one_row) if one_row else contextlib.nullcontext()
    with squeeze, PeakMemory(device) as memory:
        started = time.perf_counter()
        for graph in graphs:
            runtime.run(graph)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    finals = [d for e, d in runtime.events if e == "diffusion_search.event" and d.get("type") == "final"]
    return seconds, memory.peak, (finals[-1] if finals else {})


def boot(comfyui: str | None, device: str, base: Path):
    if comfyui:
        os.environ["COMFYUI_PATH"] = comfyui
    sys.path.insert(0, str(REPO_ROOT))
    from devtools.comfy_runtime import ComfyRuntime, comfyui_root

    root = str(comfyui_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    args.cpu = device == "cpu"          # ComfyRuntime keeps cpu=True; on a GPU it picks CUDA otherwise
    return ComfyRuntime.boot(base, base / "models")


def _cases(names, pixels, n, steps, seed, device) -> dict:
    """The runs compared at one N (each a list of graphs run one after another)."""
    best_of_n = search_graph(names, pixels, n, steps, seed, device)
    best_of_n["sampler"]["inputs"]["preset"] = "best_of_n"
    return {
        "plain, 1 image": [plain_graph(names, pixels, 1, steps, seed)],
        "plain, batch of N": [plain_graph(names, pixels, n, steps, seed)],
        "BFS node, N particles in one batch": [search_graph(names, pixels, n, steps, seed, device)],
        ONE_ROW: [search_graph(names, pixels, n, steps, seed, device)],
        "Best-of-N, N in one batch": [best_of_n],
        "Best-of-N, N one after another": [sequential_graph(names, pixels, steps, seed * 1000 + k, device)
                                           for k in range(n)],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                        help="ComfyUI checkout (default: COMFYUI_PATH, else the 2024 snapshot in the venv)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--particles", type=int, nargs="+", default=[4, 8, 16], help="the Ns compared")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 30 on cuda, 10 on cpu)")
    parser.add_argument("--pixels", type=int, default=None,
                        help="image side in pixels (default: 64 tiny, 512 sd15-full; small values = smoke test)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (2 shared cores here)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    log.setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no GPU; use --device cpu")
    steps = args.steps or (30 if args.device == "cuda" else 10)
    pixels = args.pixels or SIZES[args.size]

    base = Path(tempfile.mkdtemp(prefix="comfy_search_bench_"))
    names = write_models(base / "models", args.size)
    runtime = boot(args.comfyui, args.device, base)
    # warm-up: model loading and first-call costs stay out of the figures
    for name, graphs in _cases(names, pixels, 2, steps, 10_000, args.device).items():
        _timed_run(runtime, graphs, args.device, one_row=pixels if name == ONE_ROW else 0)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"ComfyUI: {runtime.root} ({'modern' if runtime.modern else '2024 snapshot'}); device: {device_name}")
    print(f"model: {args.size} ({pixels}px), {steps} steps, CFG 7, median of {args.repeats}; peak memory = "
          f"{'torch.cuda.max_memory_allocated' if args.device == 'cuda' else 'peak resident memory'} above the start")
    med = statistics.median
    for n in args.particles:
        seconds, peaks, scoring = {}, {}, []
        for repeat in range(args.repeats):   # new seed each time (ComfyUI caches unchanged nodes)
            for name, graphs in _cases(names, pixels, n, steps, repeat + 1, args.device).items():
                if name == ONE_ROW:   # same graph as the batched one: a changed input makes ComfyUI run it again
                    graphs[0]["sampler"]["inputs"]["chunk_size"] = 63
                one_row = pixels if name == ONE_ROW else 0
                took, peak, final = _timed_run(runtime, graphs, args.device, one_row)
                seconds.setdefault(name, []).append(took)
                peaks.setdefault(name, []).append(peak)
                if name.startswith("BFS"):
                    scoring.append(final.get("scoring_seconds", 0.0))
        print(f"\nN = {n}")
        print(f"{'':<40}{'time':>12}{'peak memory':>16}")
        for name in seconds:
            print(f"{name:<40}{med(seconds[name]) * 1000:10.1f} ms{max(peaks[name]) / 2 ** 20:13.1f} MB")
        t, m = ({k: med(v) for k, v in seconds.items()}), ({k: max(v) for k, v in peaks.items()})
        one, batch_n, bfs = "plain, 1 image", "plain, batch of N", "BFS node, N particles in one batch"
        together, apart = "Best-of-N, N in one batch", "Best-of-N, N one after another"
        print(f"  BFS / plain 1 image: time {t[bfs] / t[one]:.2f}x, memory {m[bfs] / max(m[one], 1):.2f}x")
        print(f"  BFS decode + scoring {med(scoring) * 1000:.1f} ms; search overhead beyond decoding and scoring vs "
              f"plain batch of N: {((t[bfs] - med(scoring)) / t[batch_n] - 1) * 100:+.1f}% (target < 10%)")
        print(f"  Best-of-N one batch / one after another: time {t[together] / t[apart]:.2f}x, "
              f"memory {m[together] / max(m[apart], 1):.2f}x")
        print(f"  BFS one batch / one particle row per call: time {t[bfs] / t[ONE_ROW]:.2f}x, "
              f"memory {m[bfs] / max(m[ONE_ROW], 1):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
