"""The paper's class-conditional experiment on the digits world, through the real nodes in an in-process ComfyUI.

    python -m worlds.digits run [--quick] [--json PATH] [--plot PATH] [--cfg 1.0 3.0] [--particles 2 4 8]
                                    [--seeds 20] [--steps 8] [--methods ...] [--threads 2] [--precision auto]

Every class (prompt "a handwritten <digit>") x `--seeds` latents (one latent batch per node run, one noise seed per
class, the same for every method) x N x method x CFG runs as SamplerCustom + a search SAMPLER node (or ComfyUI's
euler_ancestral for plain sampling), VAEDecode, and a capture of the images. The guide classifier searches; the dual
verifiers select with a third verifier; the held-out judge only scores the captured images here, in Python, and never
enters a graph. Printed and written: the judge's accuracy on the requested digit and its mean log-probability, the
guide's reward (its log-probability), diversity within a class (mean pairwise RMS distance of the images), NFE and
verifier-gradient evaluations per latent, seconds per latent; a reward-vs-NFE plot (PNG) and `--json PATH`.

Precision: on a CPU with bf16 matrix units (AMX / AVX512-BF16) every graph runs under torch.autocast(bfloat16), as a
GPU runs ComfyUI in half precision; ComfyUI itself never picks bf16 on a CPU. The judge always scores in float32.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from worlds.digits.graphs import SELECT_SIZE, WEIGHTS_DIR, World, read_world, register_folders, tiny_world
from worlds.digits.methods import METHODS, Method, Settings, search_graph

EVENT = "diffusion_search.event"
QUICK = dict(seeds=4, particles=[4], cfg=[1.0], methods=["plain", "best_of_n", "bfs", "dfs", "local", "dual"])
# local_dual (guidance only, dual verifiers) is left out of the default grid to keep it within 45 minutes on two CPU
# cores; `dual` answers the dual-verifier question (run it with --methods local_dual)
# the table's other baselines and seed pruning (issue 19) run with --methods; the measured full grid predates them
BASELINES = ("sop", "dsearch", "dsearch_r", "seed_pruning")
FULL = dict(seeds=20, particles=[2, 4, 8], cfg=[1.0, 2.0],
            methods=[m for m in METHODS if m != "local_dual" and m not in BASELINES])
log = logging.getLogger("digits.experiment")


def boot(world: World, base: Path):
    """The in-process ComfyUI with the world's model folders."""
    from devtools.comfy_runtime import ComfyRuntime
    return register_folders(ComfyRuntime.boot(base, extra_model_folders=world.model_folders()), world)


def _final_event(runtime) -> dict:
    finals = [d for name, d in runtime.events if name == EVENT and d.get("type") == "final"]
    return finals[-1] if finals else {}


def resolve_precision(precision: str) -> str:
    """'bf16' or 'fp32': 'auto' is bf16 on a CPU whose oneDNN has bf16 kernels (else fp32; a GPU is left to ComfyUI,
    which runs it in half precision)."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "fp32"
    return "bf16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


def precision_context(precision: str):
    if precision == "bf16" and not torch.cuda.is_available():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def run_one(runtime, world: World, method: Method, n: int, settings: Settings, label: str, seeds: int, cfg: float,
            seed: int, precision: str = "fp32") -> dict:
    """One node run: `seeds` latents of class `label`; returns the images, NFE and seconds."""
    key = f"{method.name}-{n}-{label}-{cfg}"
    graph = search_graph(world, method, n, settings, label, seeds, cfg, seed, key)
    assert world.judge.weights not in json.dumps(graph), "the judge must never enter a search graph"
    runtime.events.clear()
    started = time.perf_counter()
    with precision_context(precision):
        runtime.run(graph)
    seconds = time.perf_counter() - started
    final = _final_event(runtime)
    images = runtime.captured.pop(key)
    per_item = final.get("nfe_per_item") or [settings.steps] * seeds
    return {"images": images.float().cpu(), "seconds": seconds, "nfe": per_item,
            "grad_evals": (final.get("grad_evals") or 0) / seeds}


def pairwise_rms(images: torch.Tensor) -> float:
    """Mean pairwise RMS pixel distance between the images of one class (0 = all the same)."""
    flat = images.reshape(images.shape[0], -1).double()
    if flat.shape[0] < 2:
        return 0.0
    return float(torch.pdist(flat).mean() / flat.shape[1] ** 0.5)


def score_class(images: torch.Tensor, index: int, guide, judge) -> dict:
    judge_lp = judge.predict(images)
    guide_lp = guide.predict(images)
    return {"judge_acc": float((judge_lp.argmax(1) == index).float().mean()),
            "judge_logp": float(judge_lp[:, index].mean()),
            "guide_acc": float((guide_lp.argmax(1) == index).float().mean()),
            "guide_reward": float(guide_lp[:, index].mean()),
            "diversity": pairwise_rms(images)}


def grid_order(cfgs: list[float], particles: list[int]) -> list[tuple[float, int]]:
    """(CFG, N) in the order that answers the main questions first: the first CFG at the middle N, then the rest."""
    middle = sorted(particles)[len(particles) // 2]
    ordered = [middle] + [n for n in particles if n != middle]
    return [(cfg, n) for cfg in cfgs for n in ordered]


def run_grid(world: World, runtime, settings: Settings, methods: list[str], particles: list[int], cfgs: list[float],
             seeds: int, base_seed: int = 0, done: list[dict] | None = None, on_row=None,
             precision: str = "fp32") -> list[dict]:
    """Every (CFG, N, method) over every class; one row of figures each. Rows in `done` are kept, not rerun;
    `on_row(rows)` is called after each new row (the caller saves partial results)."""
    folder = world.folder_for("classifiers")
    guide, judge = world.guide.load(folder), world.judge.load(folder)
    rows = list(done or [])
    finished = {(r["cfg"], r["n"], r["method"]) for r in rows}
    started = time.perf_counter()
    for cfg, n in grid_order(cfgs, particles):
        for name in methods:
            method = METHODS[name]
            key_n = 1 if method.kind == "plain" else n
            if (cfg, key_n, name) in finished:
                continue   # plain sampling does not depend on N: once per CFG; resumed rows are kept
            same = method.same_as(n, settings)
            twin = next((r for r in rows if (r["cfg"], r["n"], r["method"]) == (cfg, key_n, same)), None)
            if twin is not None:   # the same computation: its figures, not a second run
                rows.append({**twin, "method": name, "label": method.label, "same_as": same})
                finished.add((cfg, key_n, name))
                log.info("cfg %g N %d %-15s = %s (one particle per latent)", cfg, key_n, name, same)
                continue
            per_class, seconds, nfe, grads = [], 0.0, [], 0.0
            for index, label in enumerate(world.labels):
                out = run_one(runtime, world, method, n, settings, label, seeds, cfg, base_seed + index, precision)
                figures = (world.scorer(out["images"], label, guide, judge) if world.scorer
                           else score_class(out["images"], index, guide, judge))
                figures.update(label=label, nfe=sum(out["nfe"]) / seeds)
                per_class.append(figures)
                seconds += out["seconds"]
                nfe += out["nfe"]
                grads += out["grad_evals"]
            row = {"cfg": cfg, "n": key_n, "method": name, "label": method.label,
                   "particles": method.particles(n, settings), "budget": method.budget(n, settings),
                   "nfe": sum(nfe) / len(nfe), "grad_evals": grads / len(world.labels),
                   "seconds_per_latent": seconds / (seeds * len(world.labels)),
                   **{k: sum(c[k] for c in per_class) / len(per_class)
                      for k in ("judge_acc", "judge_logp", "guide_acc", "guide_reward", "diversity")},
                   "per_class": per_class}
            rows.append(row)
            finished.add((cfg, key_n, name))
            log.info("[%.0f s] cfg %g N %d %-15s judge acc %.3f  judge logp %.3f  guide %.3f  NFE %.1f  %.2f s/latent",
                     time.perf_counter() - started, cfg, key_n, name, row["judge_acc"], row["judge_logp"],
                     row["guide_reward"], row["nfe"], row["seconds_per_latent"])
            if on_row is not None:
                on_row(rows)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of the rows (one line per CFG, N, method)."""
    head = ("| CFG | N | method | judge acc | judge log p | guide log p | guide acc | diversity | NFE | grad evals "
            "| s / latent |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        label = r["label"] + (f" (= {r['same_as']}: one particle)" if r.get("same_as") else "")
        lines.append(f"| {r['cfg']:g} | {r['n']} | {label} | {r['judge_acc']:.3f} | {r['judge_logp']:.3f} | "
                     f"{r['guide_reward']:.3f} | {r['guide_acc']:.3f} | {r['diversity']:.4f} | {r['nfe']:.1f} | "
                     f"{r['grad_evals']:.1f} | {r['seconds_per_latent']:.2f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Guide reward, judge log-probability and judge accuracy against NFE per latent, one line per method (its own
    colour and marker), one row of panels per CFG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfgs = sorted({r["cfg"] for r in rows})
    names = list(dict.fromkeys(r["method"] for r in rows))
    colours, markers = plt.get_cmap("tab20").colors, "osD^v<>phP*X"
    panels = (("guide_reward", "guide reward: mean log p_guide(digit)"),
              ("judge_logp", "held-out judge: mean log p_judge(digit)"),
              ("judge_acc", "held-out judge: accuracy on the digit"))
    fig, axes = plt.subplots(len(cfgs), len(panels), figsize=(16, 4.4 * len(cfgs)), squeeze=False)
    for row_axes, cfg in zip(axes, cfgs):
        for index, name in enumerate(names):
            points = sorted(((r["nfe"], r["label"], r) for r in rows if r["cfg"] == cfg and r["method"] == name
                             and not r.get("same_as")), key=lambda p: p[0])
            if not points:
                continue
            style = dict(marker=markers[index % len(markers)], color=colours[(2 * index) % 20 + (index >= 10)],
                         label=points[0][1], linestyle="-" if len(points) > 1 else "none", markersize=5)
            for ax, (key, _) in zip(row_axes, panels):
                ax.plot([p[0] for p in points], [p[2][key] for p in points], **style)
        for ax, (_, what) in zip(row_axes, panels):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("NFE per latent")
            ax.set_title(f"{what}, CFG {cfg:g}", fontsize=10)
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None, make_world=None, prog: str = "python -m worlds.digits run", description: str = "",
         quick: dict | None = None, full: dict | None = None) -> int:
    """The experiment's command line; ``make_world(select_size)`` gives another world (the numbers world), ``quick`` /
    ``full`` its grids (default: this world's QUICK / FULL)."""
    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 4, CFG 1, four latents per digit, six methods "
                                                             "(about a minute here)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--plot", type=Path, default=None, help="reward-vs-NFE PNG (default: beside --json, or "
                                                                 "digits_scaling.png in the working folder)")
    parser.add_argument("--seeds", type=int, default=None, help="latents per class (default 20; quick 4)")
    parser.add_argument("--particles", type=int, nargs="+", default=None, help="N values (default 2 4 8)")
    parser.add_argument("--cfg", type=float, nargs="+", default=None, help="CFG scales (default 1.0 2.0)")
    parser.add_argument("--methods", nargs="+", default=None, choices=list(METHODS), help="default: all")
    parser.add_argument("--steps", type=int, default=Settings.steps)
    parser.add_argument("--lam", type=float, default=Settings.lam)
    parser.add_argument("--delta", type=float, default=Settings.delta)
    parser.add_argument("--mu", type=float, default=Settings.mu)
    parser.add_argument("--world", type=Path, default=WEIGHTS_DIR, help="folder with world.json (default: shipped)")
    parser.add_argument("--tiny", action="store_true", help="a random tiny stand-in world (tests; images are noise)")
    parser.add_argument("--classes", type=int, default=None, help="only the first K classes (tests)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, every core; use 1 "
                        "when other jobs share the cores, or the threads wait on each other)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="auto: bf16 autocast on a CPU with bf16 kernels (4x faster here, same picks), else fp32")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in --json (same settings)")
    parser.add_argument("--select-size", type=int, default=SELECT_SIZE,
                        help="input size of the guide when it selects in dual verifiers (no third classifier)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.setLevel(logging.INFO)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    precision = resolve_precision(args.precision)
    grid = dict((quick or QUICK) if args.quick else (full or FULL))
    for key in ("seeds", "particles", "cfg", "methods"):
        if getattr(args, key) is not None:
            grid[key] = getattr(args, key)
    settings = Settings(steps=args.steps, lam=args.lam, delta=args.delta, mu=args.mu)

    base = Path(tempfile.mkdtemp(prefix="digits_experiment_"))
    if args.tiny:
        world = tiny_world(base / "world")
    elif make_world is not None:
        world = make_world(args.select_size)
    else:
        world = read_world(args.world, args.select_size)
    if args.classes:
        world.labels = world.labels[:args.classes]
    runtime = boot(world, base / "comfyui")
    command = prog + " " + " ".join(argv if argv is not None else sys.argv[1:])
    device = (torch.cuda.get_device_name() if torch.cuda.is_available()
              else f"cpu ({torch.get_num_threads()} threads, {precision})")
    done = []
    if args.resume and args.json and args.json.is_file():
        previous = json.loads(args.json.read_text())
        if (previous.get("settings") == settings.to_dict() and previous.get("grid", {}).get("seeds") == grid["seeds"]
                and previous.get("precision", "fp32") == precision):
            done = previous["rows"]
            log.info("resuming: %d rows from %s", len(done), args.json)

    def document(rows, seconds):
        return {"command": command, "world": world.name, "comfyui": "modern" if runtime.modern else "2024",
                "device": device, "precision": precision, "seconds": round(seconds, 1), "grid": grid, "classes": world.labels,
                "settings": settings.to_dict(), "judge": world.judge.weights, "guide": world.guide.weights,
                "select": f"{world.select.weights} at {world.select.input_size} px" if world.select else None,
                "rows": rows}

    def save(rows, seconds=None):
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.json.with_suffix(".tmp")
            tmp.write_text(json.dumps(document(rows, seconds or time.perf_counter() - started), indent=1))
            tmp.replace(args.json)

    started = time.perf_counter()
    rows = run_grid(world, runtime, settings, grid["methods"], grid["particles"], grid["cfg"], grid["seeds"],
                    done=done, on_row=save, precision=precision)
    seconds = time.perf_counter() - started
    print(f"\n{world.name} world, ComfyUI {'modern' if runtime.modern else '2024'}, {device}: "
          f"{len(world.labels)} classes x {grid['seeds']} latents, T = {settings.steps} steps, {seconds:.0f} s")
    print(table(rows))
    plot_path = args.plot or (args.json.with_suffix(".png") if args.json else Path("digits_scaling.png"))
    plot(rows, plot_path)
    print(f"plot: {plot_path}")
    if args.json:
        save(rows, seconds)
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
