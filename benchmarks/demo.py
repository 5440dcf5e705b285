"""The main job on an embedded default: run an example workflow of this pack headless through real ComfyUI.

    ./run demo [--world numbers|digits] [--labels 46 780 ...] [--seeds 4] [--steps N] [--cfg X] [--quick]
               [--out demo_output]

The workflow (example_workflows/bfs_search.json) runs in a learned world: by default the numbers world
(worlds/numbers: two- and three-digit numbers, one digit per strip, at CFG 0.75 where plain sampling gets about 60 %
of whole numbers right), or the single-digit world (worlds/digits, --world digits, the workflow's CFG). The digits
UNet (UNETLoader), the Digits Conditioning node and the world's VAE (VAELoader) stand in for SD1.5's checkpoint and
text encoder, and the world's guide classifier for the workflow's verifier; nothing else in the graph changes. Each
label is generated twice at the same seeds, by the workflow as written (BFS) and with its sampler swapped for plain
euler_ancestral. The demo writes a PNG grid of both, search_report.json, and prints the verdict of the world's
held-out judge classifier (which no search ever sees) on every image: a number is right only if every digit is.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from devtools.comfy_runtime import REPO_ROOT, ComfyRuntime
from devtools.ui_workflow import ui_to_api
from devtools.workflow_swaps import swap_in_digits_world

DEFAULT_WORKFLOW = REPO_ROOT / "example_workflows" / "bfs_search.json"
EVENT = "diffusion_search.event"

log = logging.getLogger("demo")


def plain_version(prompt: dict) -> dict:
    """The same graph with every SamplerCustom's sampler swapped for ComfyUI's euler_ancestral (no search)."""
    plain = json.loads(json.dumps(prompt))
    plain["plain_sampler"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}}
    for node in plain.values():
        if node["class_type"] in ("SamplerCustom", "SamplerCustomAdvanced"):
            node["inputs"]["sampler"] = ["plain_sampler", 0]
        if node["class_type"] == "SaveImage":
            node["inputs"]["filename_prefix"] = "search/plain"
    return plain


def summarise(events: list[dict]) -> list[dict]:
    """One line per search run: algorithm, particles, NFE and the rewards it ended with."""
    runs, current = [], {}
    for event in events:
        if event.get("type") == "start":
            current = {"node": event.get("node"), "algorithm": event.get("algorithm"),
                       "n_particles": event.get("n_particles"), "n_steps": event.get("n_steps"),
                       "first_scores": None}
            runs.append(current)
        elif event.get("type") == "step" and current.get("first_scores") is None and event.get("scores"):
            current["first_scores"] = event["scores"]
        elif event.get("type") == "final":
            current.update(final_rewards=event.get("rewards"), selected=event.get("selected"), nfe=event.get("nfe"))
    return runs


def saved_images(runtime, outputs: dict) -> list[Path]:
    folder = Path(runtime.folder_paths.get_output_directory())
    return [folder / image.get("subfolder", "") / image["filename"]
            for output in outputs.values() for image in (output or {}).get("images", [])]


def load_images(paths: list[Path]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0)
                        for p in paths])


# numbers where plain sampling at CFG 0.75 often gets a digit wrong (docs/numbers.md), and one easy one
NUMBERS_DEFAULT = ["46", "780", "159", "84"]
DIGITS_DEFAULT = ["7", "3", "0", "8"]


def judge_verdicts(judge, images: torch.Tensor, label: str, strips: bool) -> list[dict]:
    """The judge's reading of each image: one digit per strip (numbers world) or per image, with its p."""
    from worlds.numbers.world import strips_of

    k = len(label) if strips else 1
    log_p = judge.predict(strips_of(images, k) if strips else images).reshape(images.shape[0], k, -1)
    best, index = log_p.max(-1)
    wanted = torch.tensor([int(c) for c in label]) if label.isdigit() and len(label) == k else None
    verdicts = []
    for i in range(images.shape[0]):
        v = {"judge_says": "".join(str(int(d)) for d in index[i]), "judge_p": float(best[i].sum().exp())}
        if wanted is not None:
            v["judge_p_requested"] = float(log_p[i].gather(1, wanted[:, None]).sum().exp())
        verdicts.append(v)
    return verdicts


def draw_grid(rows: list[dict], path: Path, seeds: int) -> None:
    """Labels x seeds: a wide canvas (numbers) gets plain above BFS, a square one plain left of BFS; each image
    titled with the judge's verdict, red where it is wrong."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    aspect = max(row["plain_images"].shape[2] / row["plain_images"].shape[1] for row in rows)
    stacked = aspect > 1
    n_rows, n_cols = (2 * len(rows), seeds) if stacked else (len(rows), 2 * seeds)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.25 * aspect * n_cols + 0.6, 1.45 * n_rows + 0.5),
                             squeeze=False)
    for r, row in enumerate(rows):
        for k, (kind, images, verdicts) in enumerate(
                [("plain", row["plain_images"], row["plain"]), ("BFS", row["bfs_images"], row["bfs"])]):
            for s in range(seeds):
                ax = axes[2 * r + k][s] if stacked else axes[r][k * seeds + s]
                ax.imshow(images[s].numpy(), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                verdict = verdicts[s]
                ok = verdict["judge_says"] == row["digit"]
                ax.set_title(f"{verdict['judge_says']} ({verdict['judge_p']:.2f})", fontsize=8,
                             color="black" if ok else "red")
                if s == 0:
                    ax.set_ylabel(f"'{row['digit']}' {kind}", fontsize=8)
    where = "each plain row above its BFS row" if stacked else "left: plain euler_ancestral | right: BFS (paper)"
    fig.suptitle(f"{where}, same seeds; title: the held-out judge's reading (p); red: wrong", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "demo_output")
    parser.add_argument("--world", choices=("numbers", "digits"), default="numbers",
                        help="numbers: two- and three-digit numbers (headroom); digits: single digits")
    parser.add_argument("--labels", "--digits", nargs="+", default=None,
                        help=f"numbers or digits to draw (default {' '.join(NUMBERS_DEFAULT)}; digits world "
                             f"{' '.join(DIGITS_DEFAULT)})")
    parser.add_argument("--seeds", type=int, default=4, help="latents per label (one batch, the workflow's seed)")
    parser.add_argument("--steps", type=int, default=None, help="override the workflow's step count")
    parser.add_argument("--cfg", type=float, default=None,
                        help="CFG scale (default: the numbers world's 0.75; the workflow's own in the digits world)")
    parser.add_argument("--quick", action="store_true", help="one label, two latents, 6 steps (tests)")
    parser.add_argument("--world-folder", type=Path, default=None, help="folder with the digits world's world.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (two wait on each other when "
                                                              "the machine is shared)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    from worlds.digits.graphs import WEIGHTS_DIR, read_world, register_folders

    numbers = args.world == "numbers"
    labels = args.labels or (NUMBERS_DEFAULT if numbers else DIGITS_DEFAULT)
    cfg = args.cfg if args.cfg is not None else (0.75 if numbers else None)
    if args.quick:
        labels, args.seeds, args.steps = labels[:1], 2, args.steps or 6
    out = args.out.resolve()
    if numbers:
        from worlds.numbers.world import read_numbers_world
        world = read_numbers_world()
        bad = [label for label in labels if not (label.isdigit() and 1 <= len(label) <= 8)]
    else:
        world = read_world(args.world_folder or WEIGHTS_DIR)
        bad = [label for label in labels if label not in world.labels]
    if bad:
        parser.error(f"--labels {' '.join(bad)}: the {args.world} world draws "
                     + ("numbers of 1 to 8 digits" if numbers else f"one of {', '.join(world.labels)}"))
    runtime = register_folders(ComfyRuntime.boot(out / "comfyui", extra_model_folders=world.model_folders()), world)
    judge = world.judge.load(world.folder_for("classifiers"))
    workflow = ui_to_api(json.loads(args.workflow.read_text()), runtime.node_classes)

    started, rows, runs, events = time.perf_counter(), [], [], []
    for digit in labels:
        text = world.prompt(digit)
        search = swap_in_digits_world(json.loads(json.dumps(workflow)), world, text, args.seeds, args.steps,
                                      width=world.canvas_width(digit), cfg=cfg)
        assert world.judge.weights not in json.dumps(search), "the judge never enters the search"
        row = {"digit": digit, "prompt": text}
        for kind, graph in (("plain", plain_version(search)), ("bfs", search)):
            runtime.events.clear()
            images = load_images(saved_images(runtime, runtime.run(graph))[-args.seeds:])
            row[f"{kind}_images"] = images
            row[kind] = judge_verdicts(judge, images, digit, numbers)
            found = [d for name, d in runtime.events if name == EVENT]
            events += found
            runs += [dict(run, digit=digit) for run in summarise(found)]
        rows.append(row)
    seconds = time.perf_counter() - started

    grid = out / f"{args.world}_grid.png"
    out.mkdir(parents=True, exist_ok=True)
    draw_grid(rows, grid, args.seeds)
    verdicts = [{k: v for k, v in row.items() if not k.endswith("_images")} for row in rows]
    report = {"workflow": str(args.workflow), "world": args.world, "cfg": cfg, "seconds": round(seconds, 2), "grid": str(grid),
              "verdicts": verdicts, "runs": runs, "events": events}
    (out / "search_report.json").write_text(json.dumps(report, indent=1))
    print(f"Ran {args.workflow.name} in the {args.world} world through ComfyUI "
          f"({'modern' if runtime.modern else '2024'}) in {seconds:.1f} s; the judge's verdicts (digit, p):")
    for row in rows:
        for kind in ("plain", "bfs"):
            said = ", ".join(f"{v['judge_says']} ({v['judge_p']:.2f})" for v in row[kind])
            right = sum(v["judge_says"] == row["digit"] for v in row[kind])
            print(f"  '{row['prompt']}' {kind:5s}: {said}   [{right}/{len(row[kind])} judged {row['digit']}]")
    print(f"Grid: {grid}\nSearch report: {out / 'search_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
