"""`./run demo` still runs (quick mode): the example workflow in the digits world, plain vs BFS, judged."""
from __future__ import annotations

import json

import pytest

from benchmarks import demo
from worlds.digits.graphs import MANIFEST, WEIGHTS_DIR

pytestmark = pytest.mark.skipif(not (WEIGHTS_DIR / MANIFEST).is_file(),
                                reason="the digits world's weights are not built (python -m worlds.digits build)")


def test_demo_quick_runs_the_workflow_in_the_digits_world(comfy, tmp_path, capsys):
    assert demo.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "search_report.json").read_text())
    assert (tmp_path / "digits_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (row,) = report["verdicts"]
    assert row["digit"] == "7" and row["prompt"] == "a handwritten 7"
    for kind in ("plain", "bfs"):
        assert len(row[kind]) == 2
        assert all(v["judge_says"] in [str(d) for d in range(10)] and 0 < v["judge_p"] <= 1 for v in row[kind])
    (run,) = report["runs"]   # only the BFS graph searches; the plain one runs euler_ancestral
    assert run["algorithm"] == "bfs" and run["n_particles"] == 4 and len(run["final_rewards"]) == 2
    assert all(r <= 0 for item in run["final_rewards"] for r in item)   # log-probabilities of the guide
    assert "judged 7" in capsys.readouterr().out


def test_demo_swaps_only_model_conditioning_vae_and_verifier(comfy):
    from worlds.digits.graphs import read_world
    from devtools.ui_workflow import ui_to_api

    original = ui_to_api(json.loads(demo.DEFAULT_WORKFLOW.read_text()), comfy.node_classes)
    world = read_world()
    swapped = demo.swap_in_digits_world(json.loads(json.dumps(original)), world, "a handwritten 3", 2, None)
    changed = {k for k in original if original[k]["class_type"] != swapped[k]["class_type"]}
    kinds = {original[k]["class_type"] for k in changed}
    assert kinds == {"CheckpointLoaderSimple", "CLIPTextEncode", "DiffusionSearchVerifierPromptColour"}
    sampler = next(n for n in swapped.values() if n["class_type"] == "DiffusionSearchBFSSampler")
    original_sampler = next(n for n in original.values() if n["class_type"] == "DiffusionSearchBFSSampler")
    assert {k: v for k, v in sampler["inputs"].items() if k not in ("prompt", "vae")} == \
        {k: v for k, v in original_sampler["inputs"].items() if k not in ("prompt", "vae")}
    assert sampler["inputs"]["prompt"] == "a handwritten 3"
    assert swapped[sampler["inputs"]["vae"][0]] == {"class_type": "VAELoader", "inputs": {"vae_name": world.vae}}
    assert world.judge.weights not in json.dumps(swapped)
