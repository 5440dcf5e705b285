"""Extending a search against one larger run, on the digits world through the real nodes (docs/extend.md).

    python -m benchmarks.extend [--n 4] [--seeds 2] [--methods best_of_n bfs dfs] [--cfg 1.0] [--delta -0.69]
                                [--json PATH]

For every digit class and method: one run at budget 2N (extension off), then a run at N and the same graph at 2N
(extension on: the second reuses the first). Printed per method: the guide's reward (its log-probability of the
requested digit), the held-out judge's log-probability and accuracy of the images each way, seconds per latent of
the whole 2N run and of the extension alone, and the largest difference between the two ways' images (0 where
extension is exact up to float rounding).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from worlds.digits.experiment import boot
from worlds.digits.graphs import WEIGHTS_DIR, read_world
from worlds.digits.methods import METHODS, Settings, search_graph

REUSE = "DIFFUSION_SEARCH_REUSE"
log = logging.getLogger("benchmarks.extend")


def _run(runtime, world, method, n, settings, label, seeds, cfg, seed, reuse: bool):
    os.environ[REUSE] = "1" if reuse else "0"
    key = f"extend-{method.name}-{n}-{label}-{reuse}"
    graph = search_graph(world, method, n, settings, label, seeds, cfg, seed, key)
    runtime.events.clear()
    started = time.perf_counter()
    runtime.run(graph)
    seconds = time.perf_counter() - started
    starts = [d for name, d in runtime.events if name == "diffusion_search.event" and d.get("type") == "start"]
    extended = bool(starts and starts[-1].get("extends"))
    return runtime.captured.pop(key).float().cpu(), seconds, extended


def compare(world, runtime, settings, method_names, n, seeds, cfg):
    folder = world.folder_for("classifiers")
    guide, judge = world.guide.load(folder), world.judge.load(folder)
    rows = []
    for name in method_names:
        method = METHODS[name]
        sums = {k: 0.0 for k in ("whole_guide", "ext_guide", "small_guide", "whole_acc", "ext_acc", "small_acc",
                                 "whole_judge", "ext_judge", "small_judge", "whole_s", "small_s", "ext_s",
                                 "max_diff")}
        extended_runs = 0
        for index, label in enumerate(world.labels):
            whole, whole_s, _ = _run(runtime, world, method, 2 * n, settings, label, seeds, cfg, index, False)
            small, small_s, _ = _run(runtime, world, method, n, settings, label, seeds, cfg, index, True)
            ext, ext_s, extended = _run(runtime, world, method, 2 * n, settings, label, seeds, cfg, index, True)
            extended_runs += int(extended)
            for tag, images in (("whole", whole), ("ext", ext), ("small", small)):
                judged = judge.predict(images)
                sums[f"{tag}_guide"] += float(guide.predict(images)[:, index].mean())
                sums[f"{tag}_acc"] += float((judged.argmax(1) == index).float().mean())
                sums[f"{tag}_judge"] += float(judged[:, index].mean())
            sums["whole_s"] += whole_s
            sums["small_s"] += small_s
            sums["ext_s"] += ext_s
            sums["max_diff"] = max(sums["max_diff"], float((ext - whole).abs().max()))
        classes = len(world.labels)
        row = {"method": name, "n": n, "to": 2 * n, "extended_runs": extended_runs, "classes": classes,
               **{k: (v if k == "max_diff" else v / classes) for k, v in sums.items()}}
        for key in ("whole_s", "small_s", "ext_s"):
            row[key] /= seeds
        rows.append(row)
        log.info("%s: %s", name, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    return rows


def table(rows) -> str:
    lines = ["| method | budget | guide reward: one run / extended (smaller run) | judge log p: one run / extended "
             "(smaller) | judge accuracy: one run / extended (smaller) | s per latent: one run / extension alone "
             "(smaller run) | max image difference |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        unit = "NFE x" if r["method"] == "dfs" else "N"
        lines.append(f"| {r['method']} | {unit} {r['n']} -> {r['to']} | {r['whole_guide']:.3f} / {r['ext_guide']:.3f} "
                     f"({r['small_guide']:.3f}) | {r['whole_judge']:.3f} / {r['ext_judge']:.3f} "
                     f"({r['small_judge']:.3f}) | {r['whole_acc']:.3f} / {r['ext_acc']:.3f} ({r['small_acc']:.3f}) | "
                     f"{r['whole_s']:.2f} / {r['ext_s']:.2f} ({r['small_s']:.2f}) | {r['max_diff']:.2g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.extend", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="the smaller budget: N particles (DFS: N dives of NFE)")
    parser.add_argument("--seeds", type=int, default=2, help="latents per class")
    parser.add_argument("--methods", nargs="+", default=["best_of_n", "bfs", "dfs"],
                        choices=[m for m in METHODS if m != "plain"])
    parser.add_argument("--cfg", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=Settings.steps)
    parser.add_argument("--delta", type=float, default=Settings.delta, help="DFS δ on the guide's log p")
    parser.add_argument("--classes", type=int, default=None, help="only the first K classes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    world = read_world(WEIGHTS_DIR)
    if args.classes:
        world.labels = world.labels[:args.classes]
    runtime = boot(world, Path(tempfile.mkdtemp(prefix="extend_bench_")) / "comfyui")
    started = time.perf_counter()
    settings = Settings(steps=args.steps, delta=args.delta)
    rows = compare(world, runtime, settings, args.methods, args.n, args.seeds, args.cfg)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({args.threads} threads)"
    print(f"\nDigits world, ComfyUI {'modern' if runtime.modern else '2024'}, {device}: {len(world.labels)} classes "
          f"x {args.seeds} latents, T = {args.steps}, CFG {args.cfg}, DFS δ {args.delta:g}, "
          f"{time.perf_counter() - started:.0f} s")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"command": "python -m benchmarks.extend " + " ".join(
            argv if argv is not None else sys.argv[1:]), "device": device, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
