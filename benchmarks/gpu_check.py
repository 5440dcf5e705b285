"""The pack checked on a device, in ComfyUI in-process: every node path, batching, memory, decoders, the cache key.

    python -m benchmarks.gpu_check [--smoke] [--comfyui PATH] [--out gpu_check.json] [--families sd15 sdxl]

With CUDA (default): SD1.5- and SDXL-size random-weight UNets (full-size configs, built without download), 512 / 1024
px. `--smoke`: the tiny models on the CPU at 32 px (CI runs it). Sections, each a list of checks in the JSON:
- paths: BFS, DFS, local search, KSampler (Search), Rank Images and Search Budget Explorer, with the verifiers on the
  device (colourfulness, prompt_colour in float16 on CUDA, a tiny Qwen2-VL VLM in bfloat16 as select_verifier): every
  run must finish with finite float32 latents and the verifier on ComfyUI's device (a device or dtype mismatch fails);
- verifiers: tiny random ImageReward and PickScore in float16 on CUDA: BFS selects with each, local search climbs
  ImageReward's gradient;
- batching: Best-of-N with N = 8 in one batch vs 8 runs one after another (goal >= 3.5x on a GPU);
- memory: peak memory of BFS vs plain sampling at N = 4 / 8 / 16, and BFS at N = 8 / 16 under an 8 GB and a 12 GB
  cap (torch.cuda.set_per_process_memory_fraction, ComfyUI told the same free memory);
- decoders: BFS scoring time through TAESD vs the full VAE;
- cache key: the extension's state key (a digest of every search input) at SDXL size;
- vlm: the VLM verifier's time and peak memory at Qwen2-VL-2B size (CUDA) or tiny (smoke).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from benchmarks import comfy_search as bench

log = logging.getLogger("gpu_check")
GiB = 2 ** 30
# 10 steps: the ratios (batched / sequential, search / plain, VAE / TAESD) do not depend on the step count, and the
# whole check must fit one 10-minute device command
FULL = {"sd15": {"pixels": 512, "steps": 10}, "sdxl": {"pixels": 1024, "steps": 10}}
SMOKE = {"sd15": {"pixels": 32, "steps": 3}, "sdxl": {"pixels": 32, "steps": 2}}


class Report:
    """Checks and figures, printed as they come and written as JSON."""

    def __init__(self, meta: dict, path: Path):
        self.data = {"meta": meta, "sections": {}}
        self.path = path

    def add(self, section: str, name: str, **fields):
        entry = {"name": name, **fields}
        self.data["sections"].setdefault(section, []).append(entry)
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in fields.items() if k != "traceback")
        print(f"[{section}] {name}: {shown}", flush=True)
        self.path.write_text(json.dumps(self.data, indent=1, default=str))   # a run cut short keeps what it measured
        return entry

    def failures(self) -> list[str]:
        return [f"{s}/{e['name']}" for s, entries in self.data["sections"].items() for e in entries
                if e.get("ok") is False]


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else value


def write_models(models: Path, families, smoke: bool, device: str) -> dict:
    """{family: {"unet", "vae", "full_vae"}} file names under models/ (tiny or full size), and the tiny VLM."""
    from devtools.gpu_models import SD_VAE_FILE, SDXL_FULL_FILE, full_sdxl_unet_state_dict, write_once
    from devtools.tiny_families import write_family_model
    from devtools.tiny_models import write_tiny_models
    names = {}
    tiny = write_tiny_models(models)
    for family in families:
        if smoke:
            names[family] = dict(tiny) if family == "sd15" else write_family_model(models, family)
        elif family == "sd15":
            names[family] = bench.write_models(models, "sd15-full")
        else:
            write_once(str(models / "unet" / SDXL_FULL_FILE), lambda: full_sdxl_unet_state_dict(device=device))
            names[family] = {"unet": SDXL_FULL_FILE, "vae": tiny["vae"]}
        names[family]["full_vae"] = SD_VAE_FILE
    return names


def _conditioning(family: str) -> dict:
    kind = {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": 0, "text": "a red apple",
                                                                        "family": family}}
    return {"pos": kind, "neg": {**kind, "inputs": {**kind["inputs"], "seed": 1, "text": ""}}}


def base_graph(names: dict, family: str, pixels: int, batch: int = 1, vae: str = "vae") -> dict:
    graph = {"unet": {"class_type": "UNETLoader", "inputs": {"unet_name": names["unet"], "weight_dtype": "default"}},
             "vae": {"class_type": "VAELoader", "inputs": {"vae_name": names[vae]}},
             "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": pixels, "height": pixels,
                                                                     "batch_size": batch}},
             **_conditioning(family)}
    return graph


def verifier_node(kind: str, cuda: bool) -> dict:
    dtype = "float16" if cuda and kind == "PromptColour" else "float32"
    return {"class_type": f"DiffusionSearchVerifier{kind}",
            "inputs": {"device": "auto", "dtype": dtype, "chunk_size": 16}}


def vlm_node(cuda: bool) -> dict:
    return {"class_type": "DiffusionSearchVerifierVlm", "inputs": {
        "model": "tiny-qwen2-vl", "questions": "Does this image show {prompt}?\n2 | Is there a red car?",
        "aggregation": "log_prob", "image_size": 56, "device": "auto",
        "dtype": "bfloat16" if cuda else "float32", "chunk_size": 8}}


def _scoring(**extra) -> dict:
    return {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "score_size": 0, "chunk_size": 16,
            **extra}


def _custom(graph: dict, steps: int, seed: int, sampler: str = "search", cfg: float = 5.0) -> dict:
    graph["sched"] = {"class_type": "BasicScheduler", "inputs": {"model": ["unet", 0], "scheduler": "normal",
                                                                 "steps": steps, "denoise": 1.0}}
    graph["sc"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["unet", 0], "add_noise": True, "noise_seed": seed, "cfg": cfg, "positive": ["pos", 0],
        "negative": ["neg", 0], "sampler": [sampler, 0], "sigmas": ["sched", 0], "latent_image": ["latent", 0]}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["sc", 0], "key": "out"}}
    return graph


def bfs_node(particles: int, preset: str = "bfs", **extra) -> dict:
    return {"class_type": "DiffusionSearchBFSSampler", "inputs": _scoring(
        preset=preset, particles=particles, lam=10.0, resampling_steps=2, ess_threshold=0.0,
        temperature="constant", scoring="max", resampling="ssp", **extra)}


def path_graphs(names: dict, family: str, pixels: int, steps: int, cuda: bool) -> dict:
    """{path name: (graph, capture key of its latent or None)} for every node path."""
    def with_ver(graph, kind="Colourfulness"):
        graph["ver"] = verifier_node(kind, cuda)
        graph["cap_ver"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ver", 0],
                                                                                   "key": "verifier"}}
        return graph

    graphs = {}
    g = with_ver(base_graph(names, family, pixels))
    g["search"] = bfs_node(4)
    graphs["BFS (colourfulness)"] = (_custom(g, steps, 1), "out")
    g = with_ver(base_graph(names, family, pixels), "PromptColour")
    g["vlm"] = vlm_node(cuda)
    g["search"] = bfs_node(3, select_verifier=["vlm", 0])
    graphs["BFS (prompt_colour guide, VLM select)"] = (_custom(g, steps, 2), "out")
    g = with_ver(base_graph(names, family, pixels))
    g["search"] = {"class_type": "DiffusionSearchDFSSampler", "inputs": _scoring(
        delta=1e6, delta_schedule="constant", backtrack_steps=1, nfe_budget=2 * steps, max_backtracks=-1,
        check_from=1)}
    graphs["DFS"] = (_custom(g, steps, 3), "out")
    g = with_ver(base_graph(names, family, pixels))
    g["settings"] = {"class_type": "DiffusionSearchLocalSearchSettings", "inputs": {
        "gradient_mode": "x0", "langevin_steps": 1, "recur_steps": 1, "mu": 0.2, "rho": 0.2, "start_step": 0,
        "grad_clip": 0.0}}
    g["search"] = {"class_type": "DiffusionSearchLocalSampler",
                   "inputs": _scoring(local_search=["settings", 0], particles=2)}
    graphs["local search"] = (_custom(g, steps, 4), "out")
    g = with_ver(base_graph(names, family, pixels))
    g["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
        "model": ["unet", 0], "seed": 5, "steps": steps, "cfg": 5.0, "scheduler": "normal", "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0, "vae": ["vae", 0],
        "verifier": ["ver", 0], "prompt": "a red apple", "search": "bfs", "particles": 3, "lam": 10.0,
        "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2, "nfe_budget": 0, "score_size": 0,
        "chunk_size": 16}}
    g["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 0], "key": "out"}}
    graphs["KSampler (Search)"] = (g, "out")
    g = with_ver(base_graph(names, family, pixels, batch=2))
    g["sampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
    _custom(g, steps, 6, sampler="sampler")
    g["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["sc", 0], "vae": ["vae", 0]}}
    g["rank"] = {"class_type": "DiffusionSearchRankImages", "inputs": {
        "images": ["decode", 0], "verifier": ["ver", 0], "prompt": "a red apple", "top_k": 1}}
    g["cap_rank"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["rank", 3], "key": "rank"}}
    graphs["Rank Images"] = (g, "out")
    g = with_ver(base_graph(names, family, pixels))
    g["explore"] = {"class_type": "DiffusionSearchBudgetExplorer", "inputs": {
        "model": ["unet", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "presets": "best_of_n, bfs",
        "budgets": "1, 2", "seed": 7, "seeds": 1, "steps": steps, "cfg": 5.0, "scheduler": "normal",
        "denoise": 1.0, "lam": 10.0, "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2, "score_size": 0,
        "chunk_size": 16, "filename_prefix": "gpu_check", "video_frames": 4, "video_aggregate": "mean",
        "temporal_weight": 0.0, "video_decoder": "vae"}}
    g["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["explore", 2], "key": "runs"}}
    graphs["Budget Explorer"] = (g, None)
    return graphs


def check_paths(runtime, report, names, family, pixels, steps, device):
    expected = runtime.model_management.get_torch_device().type
    for name, (graph, key) in path_graphs(names, family, pixels, steps, device == "cuda").items():
        runtime.test_nodes.CAPTURED.clear()
        started = time.perf_counter()
        try:
            runtime.run(graph)
            problems = []
            if key is not None:
                latent = runtime.captured[key]["samples"]
                if latent.dtype != torch.float32 or not torch.isfinite(latent).all():
                    problems.append(f"latent {latent.dtype}, finite={bool(torch.isfinite(latent).all())}")
            verifier = runtime.captured.get("verifier")
            if verifier is not None and verifier.device.type != expected:
                problems.append(f"verifier on {verifier.device}, ComfyUI's device is {expected}")
            report.add("paths", f"{family}: {name}", ok=not problems, seconds=time.perf_counter() - started,
                       problems=problems)
        except Exception as error:  # a device/dtype mismatch anywhere in the path lands here
            report.add("paths", f"{family}: {name}", ok=False, error=f"{type(error).__name__}: {error}",
                       traceback=traceback.format_exc(limit=4))


def write_verifier_files(runtime, models: Path) -> None:
    """Tiny random ImageReward and PickScore files (the tests' writers) in models/<subfolder>/tiny/, registered."""
    sys.path.insert(0, str(bench.REPO_ROOT / "tests"))   # the tests' writers of real-format files ("tests" may be
    from verifier_fixtures import write_image_reward_files, write_pickscore_folder   # another package's name)
    write_image_reward_files(models / "image_reward" / "tiny", torch.Generator().manual_seed(0))
    write_pickscore_folder(models / "pickscore" / "tiny", torch.Generator().manual_seed(1))
    for sub in ("image_reward", "pickscore"):
        runtime.folder_paths.add_model_folder_path(sub, str(models / sub))


WEIGHTED_VERIFIERS = {"ImageReward": "tiny/ImageReward.pt", "Pickscore": "tiny/model.safetensors"}


def check_verifiers(runtime, report, names, family, pixels, steps, device):
    """Verifiers with weights on the device in float16 (CUDA): BFS selects with each, local search climbs ImageReward's
    gradient through the float16 verifier."""
    expected = runtime.model_management.get_torch_device().type
    dtype = "float16" if device == "cuda" else "float32"
    for kind, weights in WEIGHTED_VERIFIERS.items():
        for algorithm in ("bfs", "local") if kind == "ImageReward" else ("bfs",):
            g = base_graph(names, family, pixels)
            g["ver"] = {"class_type": f"DiffusionSearchVerifier{kind}", "inputs": {
                "weights": weights, "device": "auto", "dtype": dtype, "chunk_size": 8}}
            g["cap_ver"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ver", 0],
                                                                                   "key": "verifier"}}
            if algorithm == "bfs":
                g["search"] = bfs_node(3)
            else:
                g["settings"] = {"class_type": "DiffusionSearchLocalSearchSettings", "inputs": {
                    "gradient_mode": "x0", "langevin_steps": 1, "recur_steps": 1, "mu": 0.2, "rho": 0.2,
                    "start_step": 0, "grad_clip": 0.0}}
                g["search"] = {"class_type": "DiffusionSearchLocalSampler",
                               "inputs": _scoring(local_search=["settings", 0], particles=2)}
            name = f"{family}: {kind} {dtype}, {algorithm}"
            try:
                runtime.run(_custom(g, steps, 600))
                latent, verifier = runtime.captured["out"]["samples"], runtime.captured["verifier"]
                problems = [] if torch.isfinite(latent).all() else ["non-finite latent"]
                if verifier.device.type != expected:
                    problems.append(f"verifier on {verifier.device}, ComfyUI's device is {expected}")
                report.add("verifiers", name, ok=not problems, problems=problems)
            except Exception as error:
                report.add("verifiers", name, ok=False, error=f"{type(error).__name__}: {error}",
                           traceback=traceback.format_exc(limit=4))


def check_batching(runtime, report, names, family, pixels, steps, device, n=8):
    """Best-of-N: N particles in one batch vs N one-image runs (each decoded and scored), same NFE."""
    def one_batch(seed):
        g = base_graph(names, family, pixels)
        g["ver"] = verifier_node("Colourfulness", device == "cuda")
        g["search"] = bfs_node(n, preset="best_of_n")
        return _custom(g, steps, seed)

    def one_image(seed):
        g = base_graph(names, family, pixels)
        g["ver"] = verifier_node("Colourfulness", device == "cuda")
        g["sampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
        _custom(g, steps, seed, sampler="sampler")
        g["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["sc", 0], "vae": ["vae", 0]}}
        g["rank"] = {"class_type": "DiffusionSearchRankImages", "inputs": {
            "images": ["decode", 0], "verifier": ["ver", 0], "prompt": "a red apple", "top_k": 1}}
        return g

    bench._timed_run(runtime, [one_batch(90), one_image(91)], device)   # warm-up
    batched, _, _ = bench._timed_run(runtime, [one_batch(100)], device)
    apart, _, _ = bench._timed_run(runtime, [one_image(200 + k) for k in range(n)], device)
    speedup = apart / batched
    report.add("batching", f"{family}: Best-of-N, N = {n}", batched_s=batched, sequential_s=apart, speedup=speedup,
               goal=3.5, ok=None if device != "cuda" else speedup >= 3.5)


def _search_vs_plain(names, family, pixels, steps, n, seed):
    plain = base_graph(names, family, pixels)
    plain["sampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}
    search = base_graph(names, family, pixels)
    search["ver"] = verifier_node("Colourfulness", True)
    search["search"] = bfs_node(n)
    return _custom(plain, steps, seed, sampler="sampler"), _custom(search, steps, seed + 1)


class MemoryCap:
    """Cap this process's CUDA memory (set_per_process_memory_fraction) and tell ComfyUI the same free memory."""

    def __init__(self, runtime, cap_bytes: int):
        self.mm, self.cap = runtime.model_management, cap_bytes

    def __enter__(self):
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, self.cap / total))
        self.original = self.mm.get_free_memory
        free = lambda: max(0, self.cap - torch.cuda.memory_allocated())  # noqa: E731
        self.mm.get_free_memory = lambda dev=None, torch_free_too=False: (free(), free()) if torch_free_too else free()
        return self

    def __exit__(self, *exc):
        self.mm.get_free_memory = self.original
        torch.cuda.set_per_process_memory_fraction(1.0)
        return False


def check_memory(runtime, report, names, family, pixels, steps, device, particles):
    for n in particles:
        plain, search = _search_vs_plain(names, family, pixels, steps, n, seed=300 + n)
        plain_s, plain_peak, _ = bench._timed_run(runtime, [plain], device)
        search_s, search_peak, final = bench._timed_run(runtime, [search], device)
        report.add("memory", f"{family}: N = {n}", plain_s=plain_s, plain_peak_mb=plain_peak / 2 ** 20,
                   search_s=search_s, search_peak_mb=search_peak / 2 ** 20,
                   peak_ratio=search_peak / max(plain_peak, 1), nfe=final.get("nfe"))
    if device != "cuda":
        report.add("memory", f"{family}: caps", ok=None, skipped="no CUDA: the 8 / 12 GB caps need a GPU")
        return
    for cap_gb in (8, 12):
        for n in (8, 16):
            _, search = _search_vs_plain(names, family, pixels, steps, n, seed=400 + n + cap_gb)
            runtime.model_management.unload_all_models()
            torch.cuda.empty_cache()
            try:
                with MemoryCap(runtime, cap_gb * GiB):
                    seconds, peak, final = bench._timed_run(runtime, [search], device)
                report.add("memory", f"{family}: N = {n} under {cap_gb} GB", ok=True, seconds=seconds,
                           peak_mb=peak / 2 ** 20, nfe=final.get("nfe"))
            except Exception as error:
                report.add("memory", f"{family}: N = {n} under {cap_gb} GB", ok=False,
                           error=f"{type(error).__name__}: {str(error)[:300]}")


def check_decoders(runtime, report, names, family, pixels, steps, device, n=8):
    """The same BFS search scored through TAESD and through the full VAE: decode + scoring seconds."""
    figures = {}
    for vae in ("vae", "full_vae"):
        g = base_graph(names, family, pixels, vae=vae)
        g["ver"] = verifier_node("Colourfulness", device == "cuda")
        g["search"] = bfs_node(n)
        bench._timed_run(runtime, [_custom(g, steps, 500)], device)   # warm-up (loads the VAE)
        seconds, peak, final = bench._timed_run(runtime, [_custom(g, steps, 501)], device)
        figures[vae] = (seconds, final.get("scoring_seconds", float("nan")), peak)
    (t_taesd, s_taesd, p_taesd), (t_vae, s_vae, p_vae) = figures["vae"], figures["full_vae"]
    report.add("decoders", f"{family}: BFS N = {n}", taesd_total_s=t_taesd, taesd_scoring_s=s_taesd,
               vae_total_s=t_vae, vae_scoring_s=s_vae, scoring_ratio=s_vae / max(s_taesd, 1e-9),
               taesd_peak_mb=p_taesd / 2 ** 20, vae_peak_mb=p_vae / 2 ** 20)


def check_cache_key(runtime, report, names, family, pixels, device, repeats=3):
    """The extension's state key over an SDXL-size input set: the UNet's weights, conditioning, latent, sigmas."""
    states = sys.modules[f"{runtime.pack.__name__}.bridge.state_key"]
    mm = runtime.model_management
    patcher = next(e.model for e in mm.current_loaded_models if e.model is not None
                   and hasattr(e.model.model, "diffusion_model"))
    unet = patcher.model.diffusion_model
    dev = mm.get_torch_device()
    context, pooled = {"sd15": (768, None), "sdxl": (2048, 1280)}.get(family, (768, None))
    conds = {"c_crossattn": torch.randn(2, 77, context, device=dev)}
    if pooled:
        conds["y"] = torch.randn(2, 2816, device=dev)
    latent = torch.randn(1, 4, pixels // 8, pixels // 8, device=dev)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        states.state_key(model=states.WeightsOnly(unet), conditioning=conds, x=latent,
                         sigmas=torch.linspace(14.6, 0, 21), seed=0, settings={"algorithm": "bfs"})
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    params = sum(p.numel() for p in unet.parameters())
    report.add("cache_key", f"{family}: state key", seconds=statistics.median(times), unet_params_m=params / 1e6,
               latent=list(latent.shape))


def check_vlm(report, smoke: bool, device: str):
    from devtools.tiny_vlm import build_qwen2_vl
    from verifiers.vlm import VLMVerifier
    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    size = "tiny" if smoke else "full"
    model, processor = build_qwen2_vl(torch.Generator().manual_seed(0), size=size, max_side=448, dtype=dtype,
                                      device=device)
    params = sum(p.numel() for p in model.parameters())
    for chunk in (4, 8):
        verifier = VLMVerifier(model, processor, "Does this image show {prompt}?\nIs there a red car?",
                               image_size=64 if smoke else 448, chunk_size=chunk, device=device, dtype=dtype)
        images = torch.rand(8, 64 if smoke else 512, 64 if smoke else 512, 3,
                            generator=torch.Generator().manual_seed(1))
        verifier.score(images[:2], "a red apple")   # warm-up
        with bench.PeakMemory(device) as memory:
            started = time.perf_counter()
            rewards = verifier.score(images, "a red apple")
            seconds = time.perf_counter() - started
        report.add("vlm", f"Qwen2-VL {'tiny' if smoke else '2B'} {dtype}, 8 images x 2 questions, chunk {chunk}",
                   ok=bool(torch.isfinite(rewards).all()), seconds=seconds, peak_mb=memory.peak / 2 ** 20,
                   params_m=params / 1e6)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU (CI)")
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"))
    parser.add_argument("--out", default="gpu_check.json", help="where the JSON goes")
    parser.add_argument("--families", nargs="+", default=None, help="default: sd15 sdxl (smoke: sd15)")
    parser.add_argument("--particles", type=int, nargs="+", default=None, help="memory Ns (default 4 8 16)")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip: paths verifiers batching memory "
                                                              "decoders cache_key vlm")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --smoke (tiny models on the CPU)")
    families = args.families or (["sd15"] if args.smoke else ["sd15", "sdxl"])
    particles = args.particles or ([2, 4] if args.smoke else [4, 8, 16])
    sizes = SMOKE if args.smoke else FULL
    base = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    names = write_models(base / "models", families, args.smoke, device)
    from devtools.tiny_vlm import write_qwen2_vl_folder
    write_qwen2_vl_folder(base / "models" / "vlm" / "tiny-qwen2-vl", torch.Generator().manual_seed(0))
    runtime = bench.boot(args.comfyui, device, base)
    runtime.folder_paths.add_model_folder_path("vlm", str(base / "models" / "vlm"))
    write_verifier_files(runtime, base / "models")
    from devtools.gpu_models import SD_VAE_FILE, sd_vae_state_dict, write_once
    write_once(str(base / "models" / "vae" / SD_VAE_FILE), sd_vae_state_dict)
    meta = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "smoke": args.smoke,
            "comfyui": str(runtime.root), "modern": runtime.modern, "torch": torch.__version__,
            "families": families, "sizes": {f: sizes[f] for f in families}}
    report = Report(meta, Path(args.out))
    print(f"gpu_check on {meta['device']}, ComfyUI {runtime.root}, families {families}", flush=True)
    for family in families:
        pixels, steps = sizes[family]["pixels"], sizes[family]["steps"]
        sections = {"paths": lambda: check_paths(runtime, report, names[family], family, pixels, steps, device),
                    "verifiers": lambda: check_verifiers(runtime, report, names[family], family, pixels, steps,
                                                         device),
                    "batching": lambda: check_batching(runtime, report, names[family], family, pixels, steps, device),
                    "memory": lambda: check_memory(runtime, report, names[family], family, pixels, steps, device,
                                                   particles),
                    "decoders": lambda: check_decoders(runtime, report, names[family], family, pixels, steps,
                                                       device),
                    "cache_key": lambda: check_cache_key(runtime, report, names[family], family, pixels, device)}
        for section, run in sections.items():
            if section in args.skip:
                continue
            try:
                run()
            except Exception as error:
                report.add(section, f"{family}: section", ok=False, error=f"{type(error).__name__}: {error}",
                           traceback=traceback.format_exc(limit=6))
        runtime.model_management.unload_all_models()
    if "vlm" not in args.skip:
        try:
            check_vlm(report, args.smoke, device)
        except Exception as error:
            report.add("vlm", "section", ok=False, error=f"{type(error).__name__}: {error}",
                       traceback=traceback.format_exc(limit=6))
    report.data["meta"]["finished"] = True
    report.path.write_text(json.dumps(report.data, indent=1, default=str))
    failures = report.failures()
    print(f"wrote {args.out}; {len(failures)} failed: {failures}" if failures else f"wrote {args.out}; all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
