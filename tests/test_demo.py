"""`./run demo` still runs (quick mode): the example workflow in the numbers world (default) and the digits world,
plain vs BFS, judged."""
from __future__ import annotations

import json

import pytest

from benchmarks import demo
from worlds.digits.graphs import MANIFEST, WEIGHTS_DIR

pytestmark = pytest.mark.skipif(not (WEIGHTS_DIR / MANIFEST).is_file(),
                                reason="the digits world's weights are not built (python -m worlds.digits build)")


@pytest.mark.parametrize("world, label, cfg", [("numbers", demo.NUMBERS_DEFAULT[0], 0.75), ("digits", "7", None)])
def test_demo_quick_runs_the_workflow_in_a_learned_world(comfy, tmp_path, capsys, world, label, cfg):
    args = ["--quick", "--out", str(tmp_path)] + ([] if world == "numbers" else ["--world", world])
    assert demo.main(args) == 0
    report = json.loads((tmp_path / "search_report.json").read_text())
    assert (tmp_path / f"{world}_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["world"] == world and report["cfg"] == cfg
    (row,) = report["verdicts"]
    assert row["digit"] == label and row["prompt"] == f"a handwritten {label}"
    for kind in ("plain", "bfs"):
        assert len(row[kind]) == 2
        for v in row[kind]:   # one digit read per strip, p the product of the strips' p
            assert len(v["judge_says"]) == len(label) and v["judge_says"].isdigit()
            assert 0 < v["judge_p_requested"] <= 1 and 0 < v["judge_p"] <= 1
            assert (v["judge_says"] == label) == (v["judge_p_requested"] == v["judge_p"])
    (run,) = report["runs"]   # only the BFS graph searches; the plain one runs euler_ancestral
    assert run["algorithm"] == "bfs" and run["n_particles"] == 4 and len(run["final_rewards"]) == 2
    assert all(r <= 0 for item in run["final_rewards"] for r in item)   # log-probabilities of the guide
    assert f"judged {label}" in capsys.readouterr().out


def test_demo_refuses_a_label_its_world_cannot_draw(comfy, tmp_path):
    with pytest.raises(SystemExit):
        demo.main(["--quick", "--out", str(tmp_path), "--labels", "cat"])
    with pytest.raises(SystemExit):
        demo.main(["--quick", "--out", str(tmp_path), "--world", "digits", "--labels", "37"])


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


def test_the_numbers_world_swap_widens_the_canvas_and_sets_its_cfg(comfy):
    from devtools.ui_workflow import ui_to_api
    from worlds.numbers.world import read_numbers_world

    original = ui_to_api(json.loads(demo.DEFAULT_WORKFLOW.read_text()), comfy.node_classes)
    world = read_numbers_world()
    swapped = demo.swap_in_digits_world(json.loads(json.dumps(original)), world, "a handwritten 509", 3, None,
                                        width=world.canvas_width("509"), cfg=0.75)
    (latent,) = [n for n in swapped.values() if n["class_type"] == "EmptyLatentImage"]
    assert latent["inputs"] == {**latent["inputs"], "width": 192, "height": 64, "batch_size": 3}
    (sampler,) = [n for n in swapped.values() if n["class_type"] == "SamplerCustom"]
    assert sampler["inputs"]["cfg"] == 0.75
    (verifier,) = [n for n in swapped.values() if n["class_type"] == "DiffusionSearchVerifierClassifier"]
    assert verifier["inputs"]["weights"] == world.guide.weights and verifier["inputs"]["layout"] == world.guide.layout
    assert world.judge.weights not in json.dumps(swapped)
