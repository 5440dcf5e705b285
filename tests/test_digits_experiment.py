"""The digits experiment's machinery on a tiny random stand-in world: equal NFE, the judge outside the graphs, the
figures and the files. (Its results on the real world are in docs/digits.md; nothing here checks them.)"""
from __future__ import annotations

import json

import pytest
import torch

from worlds.digits import experiment
from worlds.digits.methods import METHODS, Settings

pytest.importorskip("timm")


def test_pairwise_rms_is_the_mean_rms_distance():
    images = torch.rand(4, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    flat = images.reshape(4, -1).double()
    pairs = [((flat[i] - flat[j]) ** 2).mean().sqrt() for i in range(4) for j in range(i + 1, 4)]
    assert experiment.pairwise_rms(images) == pytest.approx(float(sum(pairs) / len(pairs)))
    assert experiment.pairwise_rms(images[:1]) == 0.0


@pytest.mark.parametrize("name, n, particles, budget", [
    ("bfs", 4, 4, 40), ("local", 4, 2, 40), ("local_guidance", 4, 4, 40), ("bfs_local", 8, 4, 80),
    ("dfs", 8, 1, 80), ("plain", 8, 1, 10), ("local", 2, 1, 20)])
def test_methods_spend_equal_nfe(name, n, particles, budget):
    method, settings = METHODS[name], Settings(steps=10, recur_steps=1)
    assert method.particles(n, settings) == particles and method.budget(n, settings) == budget


def test_experiment_runs_through_the_real_nodes(comfy, tmp_path):
    out = tmp_path / "digits.json"
    code = experiment.main(["--tiny", "--classes", "2", "--seeds", "2", "--particles", "2", "--cfg", "2.0",
                            "--steps", "3", "--methods", "plain", "bfs", "dfs", "local", "dual", "--threads", "1",
                            "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["judge"] != doc["guide"] and not doc["select"].startswith(doc["judge"])
    rows = {(r["cfg"], r["method"]): r for r in doc["rows"]}
    assert len(rows) == 5
    for (cfg, name), row in rows.items():
        assert len(row["per_class"]) == 2 and 0 <= row["judge_acc"] <= 1 and row["judge_logp"] <= 0
        assert row["guide_reward"] <= 0 and row["diversity"] > 0 and row["seconds_per_latent"] > 0
        if name == "dfs":
            assert 3 <= row["nfe"] <= row["budget"]
        else:
            assert row["nfe"] == pytest.approx(row["budget"]), (cfg, name)
    assert rows[(2.0, "local")]["grad_evals"] > 0 and rows[(2.0, "bfs")]["grad_evals"] == 0
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_speed_benchmark_times_the_shipped_decoder_in_every_precision_and_layout(comfy):
    from worlds.digits import speed
    from worlds.digits.graphs import read_world

    table = speed.decoder_table(read_world(), rows=2, repeat=1).splitlines()
    cells = [line.strip("|").split("|") for line in table[2:]]
    assert [(c[0].strip(), c[1].strip()) for c in cells] == [("fp32", "NCHW"), ("fp32", "NHWC"), ("bf16", "NCHW"),
                                                             ("bf16", "NHWC")]
    assert all(float(c[2]) > 0 and float(c[3]) > 0 for c in cells)


def test_one_particle_local_variants_are_one_computation_run_once(comfy, tmp_path):
    """At N = 2 with one recurrence, local search has one particle per latent: BFS + local and dual verifiers then
    have nothing to resample or select, so the grid runs local search once and reuses its row; check both claims."""
    from worlds.digits.graphs import tiny_world

    world = tiny_world(tmp_path / "world")
    runtime = experiment.boot(world, tmp_path / "comfyui")
    settings = Settings(steps=3)
    assert [METHODS[m].same_as(2, settings) for m in ("local", "bfs_local", "dual", "local_guidance")] == \
        [None, "local", "local", None]
    assert METHODS["bfs_local"].same_as(4, settings) is None
    images = [experiment.run_one(runtime, world, METHODS[m], 2, settings, "3", 2, 1.0, 7)["images"]
              for m in ("local", "bfs_local", "dual")]
    assert torch.equal(images[0], images[1]) and torch.equal(images[0], images[2])
    world.labels = world.labels[:1]
    rows = experiment.run_grid(world, runtime, settings, ["local", "bfs_local", "local_guidance"], [2], [1.0], 2)
    by_name = {r["method"]: r for r in rows}
    assert by_name["bfs_local"]["same_as"] == "local" and "same_as" not in by_name["local_guidance"]
    assert by_name["bfs_local"]["judge_logp"] == by_name["local"]["judge_logp"]
