"""The main job on an embedded default: run an example workflow of this pack headless through real ComfyUI.

    ./run demo [--workflow example_workflows/NAME.json] [--out demo_output] [--steps N] [--size 64]

No model can be downloaded here, so the workflow's checkpoint is swapped for a tiny random-weight SD1.5-layout UNet
and TAESD VAE built on the spot, and each CLIPTextEncode for seeded random conditioning (the tiny model has no text
encoder). Everything else (the search nodes, the verifier, SamplerCustom, VAEDecode, SaveImage) runs as written.
The images are noise-like: the model is untrained. The search itself is real: the report shows its rewards rising.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from pathlib import Path

import torch

from benchmarks.comfy_runtime import REPO_ROOT, ComfyRuntime
from benchmarks.tiny_models import write_tiny_models
from benchmarks.ui_workflow import ui_to_api

DEFAULT_WORKFLOW = REPO_ROOT / "example_workflows" / "bfs_search.json"
EVENT = "diffusion_search.event"

log = logging.getLogger("demo")


def swap_in_tiny_model(prompt: dict, names: dict, size: int, steps: int | None) -> dict:
    """Replace checkpoint loading and text encoding with the tiny model and test conditioning, in place."""
    renames = {}
    for node_id, node in list(prompt.items()):
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "CheckpointLoaderSimple":
            vae_id = f"{node_id}_vae"
            prompt[node_id] = {"class_type": "UNETLoader",
                               "inputs": {"unet_name": names["unet"], "weight_dtype": "default"}}
            prompt[vae_id] = {"class_type": "VAELoader", "inputs": {"vae_name": names["vae"]}}
            renames[(node_id, 2)] = [vae_id, 0]
        elif kind == "CLIPTextEncode":
            text = inputs.get("text", "")
            prompt[node_id] = {"class_type": "DiffusionSearchTestConditioning",
                               "inputs": {"seed": zlib.crc32(text.encode()) % 2**31, "text": text}}
        elif kind == "EmptyLatentImage":
            inputs.update(width=size, height=size)
        elif steps is not None and "steps" in inputs and not isinstance(inputs["steps"], list):
            inputs["steps"] = steps
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and (value[0], value[1]) in renames:
                node["inputs"][name] = renames[(value[0], value[1])]
    return prompt


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


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "demo_output")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (the tiny model works at 64)")
    parser.add_argument("--steps", type=int, default=None, help="override the workflow's step count")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(min(2, torch.get_num_threads()))

    out = args.out.resolve()
    names = write_tiny_models(out / "models")
    runtime = ComfyRuntime.boot(out / "comfyui", out / "models")
    workflow = json.loads(args.workflow.read_text())
    prompt = swap_in_tiny_model(ui_to_api(workflow, runtime.node_classes), names, args.size, args.steps)

    started_at, start = time.time(), time.perf_counter()
    runtime.run(prompt)
    seconds = time.perf_counter() - start

    events = [data for name, data in runtime.events if name == EVENT]
    images = sorted(p for p in (out / "comfyui" / "output").rglob("*.png") if p.stat().st_mtime >= started_at - 1)
    report = {"workflow": str(args.workflow), "seconds": round(seconds, 2), "images": [str(p) for p in images],
              "runs": summarise(events), "events": events}
    (out / "search_report.json").write_text(json.dumps(report, indent=1))
    print(f"Ran {args.workflow.name} through ComfyUI ({'modern' if runtime.modern else '2024'}) in {seconds:.1f} s")
    for run in report["runs"]:
        print(f"  node {run['node']}: {run['algorithm']} with {run['n_particles']} particles, {run['n_steps']} steps,"
              f" NFE {run.get('nfe')}")
        final = run.get("final_rewards")
        if final:
            chosen = [item[i] for item, i in zip(final, run.get("selected") or [0] * len(final))]
            mean = [sum(item) / len(item) for item in final]
            print(f"    final rewards per item: selected {_fmt(chosen)}, mean of the final particles {_fmt(mean)}")
    print(f"Images written by this run: {len(images)} in {out / 'comfyui' / 'output'}")
    print(f"Search report: {out / 'search_report.json'}")
    if not images:
        print("No image was written: the workflow has no SaveImage node.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
