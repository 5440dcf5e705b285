"""The main job on an embedded default: run an example workflow of this pack headless through real ComfyUI.

    ./run demo [--digits 7 3 0 8] [--seeds 4] [--steps N] [--quick] [--out demo_output]

The workflow (example_workflows/bfs_search.json) runs in the digits world (worlds/digits): the digits UNet
(UNETLoader), its Digits Conditioning node and its VAE (VAELoader) stand in for SD1.5's checkpoint and text encoder,
and the world's guide classifier for the workflow's verifier; nothing else in the graph changes. Each digit is
generated twice at the same seeds, by the workflow as written (BFS) and with its sampler swapped for plain
euler_ancestral. The demo writes a PNG grid of both, search_report.json, and prints the verdict of the world's
held-out judge classifier (which no search ever sees) on every image.
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


def draw_grid(rows: list[dict], path: Path, seeds: int) -> None:
    """Digits (rows) x seeds, plain on the left and BFS on the right, titled with the judge's verdict."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 2 * seeds, figsize=(1.25 * 2 * seeds + 0.4, 1.45 * len(rows) + 0.5),
                             squeeze=False)
    for r, row in enumerate(rows):
        for column, (kind, images, verdicts) in enumerate(
                [("plain", row["plain_images"], row["plain"]), ("BFS", row["bfs_images"], row["bfs"])]):
            for s in range(seeds):
                ax = axes[r][column * seeds + s]
                ax.imshow(images[s].numpy(), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                verdict = verdicts[s]
                ok = verdict["judge_says"] == row["digit"]
                ax.set_title(f"{verdict['judge_says']} ({verdict['judge_p']:.2f})", fontsize=8,
                             color="black" if ok else "red")
                if s == 0:
                    ax.set_ylabel(f"'{row['digit']}' {kind}", fontsize=8)
    fig.suptitle("left: plain euler_ancestral | right: BFS (paper), same seeds; title: the judge's digit (p)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "demo_output")
    parser.add_argument("--digits", nargs="+", default=["7", "3", "0", "8"])
    parser.add_argument("--seeds", type=int, default=4, help="latents per digit (one batch, the workflow's seed)")
    parser.add_argument("--steps", type=int, default=None, help="override the workflow's step count")
    parser.add_argument("--quick", action="store_true", help="one digit, two latents, 6 steps (tests)")
    parser.add_argument("--world", type=Path, default=None, help="folder with the digits world's world.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (two wait on each other when "
                                                              "the machine is shared)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    from worlds.digits.graphs import WEIGHTS_DIR, read_world, register_folders

    if args.quick:
        args.digits, args.seeds, args.steps = args.digits[:1], 2, args.steps or 6
    out = args.out.resolve()
    world = read_world(args.world or WEIGHTS_DIR)
    runtime = register_folders(ComfyRuntime.boot(out / "comfyui", extra_model_folders=world.model_folders()), world)
    judge = world.judge.load(world.folder_for("classifiers"))
    workflow = ui_to_api(json.loads(args.workflow.read_text()), runtime.node_classes)

    started, rows, runs, events = time.perf_counter(), [], [], []
    for digit in args.digits:
        text = world.prompt(digit)
        search = swap_in_digits_world(json.loads(json.dumps(workflow)), world, text, args.seeds, args.steps)
        assert world.judge.weights not in json.dumps(search), "the judge never enters the search"
        row = {"digit": digit, "prompt": text}
        for kind, graph in (("plain", plain_version(search)), ("bfs", search)):
            runtime.events.clear()
            images = load_images(saved_images(runtime, runtime.run(graph))[-args.seeds:])
            log_p = judge.predict(images)
            row[f"{kind}_images"] = images
            row[kind] = [{"judge_says": world.labels[int(lp.argmax())], "judge_p": float(lp.max().exp()),
                          "judge_p_requested": float(lp[world.labels.index(digit)].exp())} for lp in log_p]
            found = [d for name, d in runtime.events if name == EVENT]
            events += found
            runs += [dict(run, digit=digit) for run in summarise(found)]
        rows.append(row)
    seconds = time.perf_counter() - started

    grid = out / "digits_grid.png"
    out.mkdir(parents=True, exist_ok=True)
    draw_grid(rows, grid, args.seeds)
    verdicts = [{k: v for k, v in row.items() if not k.endswith("_images")} for row in rows]
    report = {"workflow": str(args.workflow), "world": "digits", "seconds": round(seconds, 2), "grid": str(grid),
              "verdicts": verdicts, "runs": runs, "events": events}
    (out / "search_report.json").write_text(json.dumps(report, indent=1))
    print(f"Ran {args.workflow.name} in the digits world through ComfyUI "
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
