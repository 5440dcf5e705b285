"""Search samplers inside the real ComfyUI (tiny SD1.5 model): SamplerCustom graphs, events, determinism, errors."""
import json
import math

import pytest
import torch

from comfy_harness import ComfyExecutionError, ComfyInterrupted, add_search_sampling

SIZE = 32  # 4x4 latents: the tiny UNet has no downsampling, so this is the cheapest size that still runs


def _verifier(kind="DiffusionSearchVerifierPromptColour"):
    return {"class_type": kind, "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}


def _scoring(**extra):
    inputs = {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "score_size": 0, "chunk_size": 16}
    inputs.update(extra)
    return inputs


def _bfs(preset="bfs", particles=4, **extra):
    inputs = _scoring(preset=preset, particles=particles, lam=10.0, resampling_steps=3, ess_threshold=0.0,
                      temperature="constant", scoring="max", resampling="ssp")
    inputs.update(extra)
    return {"class_type": "DiffusionSearchBFSSampler", "inputs": inputs}


def _custom_graph(tiny_graph, sampler_node, seed=0, steps=6, batch=2):
    graph = tiny_graph(batch=batch, size=SIZE)
    graph["ver"] = _verifier()
    return add_search_sampling(graph, sampler_node, seed=seed, steps=steps)


def _search_events(comfy):
    return [data for event, data in comfy.events if event == "diffusion_search.event"]


def _run_events(comfy, graph):
    comfy.events.clear()
    comfy.run(graph)
    return _search_events(comfy)


def _selected_rewards(events):
    final = [e for e in events if e["type"] == "final"][-1]
    return [rewards[index] for rewards, index in zip(final["rewards"], final["selected"])], final


def test_bfs_beats_best_of_n_at_equal_compute(comfy, tiny_graph):
    """Paper Table 1 on the tiny model: BFS's selected reward exceeds Best-of-N's at the same seeds and NFE."""
    differences, nfe = [], {}
    for seed in range(4):
        rewards = {}
        for preset in ("best_of_n", "bfs"):
            events = _run_events(comfy, _custom_graph(tiny_graph, _bfs(preset), seed=seed))
            rewards[preset], final = _selected_rewards(events)
            nfe.setdefault(preset, set()).add(final["nfe"])
        differences += [b - a for a, b in zip(rewards["best_of_n"], rewards["bfs"])]
    assert nfe["best_of_n"] == nfe["bfs"]  # same compute
    diffs = torch.tensor(differences)
    t_stat = diffs.mean() / (diffs.std() / math.sqrt(len(diffs)))
    # paired over 8 items (same initial particles): BFS must win on average, clearly beyond the pairing noise
    assert diffs.mean() > 0 and t_stat > 1.5, differences


def test_events_forwarded_with_node_and_prompt_ids(comfy, tiny_graph):
    events = _run_events(comfy, _custom_graph(tiny_graph, _bfs("fk")))
    types = [e["type"] for e in events]
    assert types[0] == "start" and types[-1] == "final" and types.count("step") == 6
    assert all(e["node"] == "search" and e["algorithm"] == "bfs" for e in events)
    assert len({e["prompt_id"] for e in events}) == 1 and events[0]["prompt_id"] is not None
    json.dumps(events)  # the websocket payload must be plain JSON
    start = events[0]
    assert start["n_items"] == 2 and start["n_particles"] == 4 and start["noise_form"] == "eps"
    resampled = [e for e in events if e["type"] == "step" and e["resampled"]]
    assert resampled and all(len(e["ancestors"]) == 2 and len(e["ancestors"][0]) == 4 for e in resampled)
    assert events[-1]["evaluations"] > 0  # verifier evaluations counted alongside the NFE
    # What the web view needs to tell runs apart and to say what the run used (docs/design.md).
    assert {e["node_type"] for e in events} == {"DiffusionSearchBFSSampler"}
    assert start["verifiers"] == {"guide": "prompt_colour", "select": None} and start["seed"] == 0
    assert start["config"]["preset"] == "fk" and "verifiers" not in events[1]


def test_node_shows_steps_and_evaluations_as_progress_text(comfy, tiny_graph):
    """Where ComfyUI has progress text (modern), the node shows step, NFE and images scored; 2024 sends none."""
    comfy.events.clear()
    comfy.run(_custom_graph(tiny_graph, _bfs("bfs"), steps=4))
    texts = [data for event, data in comfy.events if event == "progress_text"]
    if not comfy.modern:
        assert texts == []
        return
    assert [t["node"] for t in texts] == ["search"] * 5  # four steps and the final line
    assert texts[0]["text"].startswith("BFS step 1/4 · NFE 8 · ")
    assert texts[-1]["text"].startswith("BFS done · NFE 32 · ") and texts[-1]["text"].endswith(" scored")


@pytest.mark.parametrize("batch", [1, 2])
def test_inpainting_mask_runs_for_one_latent_and_for_a_batch(comfy, tiny_graph, batch):
    """The mask, input latent and noise follow each particle's item (per-item checks: test_nodes_img2img.py)."""
    graph = _custom_graph(tiny_graph, _bfs("bfs", particles=3), steps=3, batch=batch)
    graph["mask"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SIZE, "height": SIZE}}
    graph["masked"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["latent", 0], "mask": ["mask", 0]}}
    graph["sc"]["inputs"]["latent_image"] = ["masked", 0]
    comfy.run(graph)
    assert tuple(comfy.captured["out"]["samples"].shape) == (batch, 4, SIZE // 8, SIZE // 8)


def test_same_seed_same_image_and_seed_matters(comfy, tiny_graph):
    outputs = []
    for seed in (7, 7, 8):
        comfy.run(_custom_graph(tiny_graph, _bfs("bfs"), seed=seed))
        outputs.append(comfy.captured["out"]["samples"].clone())
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_one_particle_is_the_plain_sampler_and_fresh_particles_differ(comfy, tiny_graph):
    """N = 1 returns a [B, ...] latent like euler_ancestral would, N > 1 explores other noise."""
    comfy.run(_custom_graph(tiny_graph, _bfs("best_of_n", particles=1)))
    single = comfy.captured["out"]["samples"].clone()
    events = _run_events(comfy, _custom_graph(tiny_graph, _bfs("best_of_n", particles=4)))
    final = events[-1]
    assert single.shape == (2, 4, SIZE // 8, SIZE // 8)
    # particle rewards differ: the other particles did not reuse particle 0's (ComfyUI's) noise
    assert all(len(set(round(r, 6) for r in rewards)) == 4 for rewards in final["rewards"])


def test_dfs_sampler_runs_and_backtracks(comfy, tiny_graph):
    dfs = {"class_type": "DiffusionSearchDFSSampler",
           "inputs": _scoring(delta=1e6, delta_schedule="constant", backtrack_steps=2, nfe_budget=12,
                              max_backtracks=-1, check_from=1)}
    events = _run_events(comfy, _custom_graph(tiny_graph, dfs, batch=1))
    backtracks = [e for e in events if e["type"] == "backtrack"]
    assert backtracks, "an unreachable δ must make DFS backtrack until the budget is spent"
    assert events[-1]["type"] == "final" and events[-1]["nfe"] <= 12 + 6
    assert comfy.captured["out"]["samples"].shape == (1, 4, SIZE // 8, SIZE // 8)


def _local_graph(tiny_graph, mu, batch=2, mode="x0"):
    settings = {"class_type": "DiffusionSearchLocalSearchSettings",
                "inputs": {"gradient_mode": mode, "langevin_steps": 2, "recur_steps": 1, "mu": mu, "rho": 0.2,
                           "start_step": 0, "grad_clip": 0.0}}
    local = {"class_type": "DiffusionSearchLocalSampler",
             "inputs": _scoring(local_search=["settings", 0], particles=1)}
    graph = _custom_graph(tiny_graph, local, batch=batch, steps=4)
    graph["settings"] = settings
    return graph


def test_local_search_sampler_raises_guide_reward(comfy, tiny_graph):
    """Langevin steps in x0 space climb the guide verifier through the VAE copy (gradients inside inference mode)."""
    plain, _ = _selected_rewards(_run_events(comfy, _local_graph(tiny_graph, mu=0.0)))
    events = _run_events(comfy, _local_graph(tiny_graph, mu=0.5))
    guided, final = _selected_rewards(events)
    assert [e for e in events if e["type"] == "local"] and final["grad_evals"] > 0
    assert sum(guided) / len(guided) > sum(plain) / len(plain), (plain, guided)


def test_gradient_through_denoiser_in_both_versions(comfy, tiny_graph):
    """d r(D(x)) / d x through the UNet runs in both versions (the 2024 UNet's in-place adds included)."""
    graph = _local_graph(tiny_graph, mu=0.0, batch=1, mode="denoiser")
    events = _run_events(comfy, graph)
    assert events[-1]["type"] == "final" and events[-1]["grad_evals"] > 0
    assert torch.isfinite(comfy.captured["out"]["samples"]).all()


def test_search_needs_a_vae(comfy, tiny_graph):
    graph = _custom_graph(tiny_graph, _bfs())
    del graph["search"]["inputs"]["vae"]
    with pytest.raises(ComfyExecutionError, match="vae"):
        comfy.run(graph)


def test_zero_particles_is_rejected(comfy, tiny_graph):
    with pytest.raises(ComfyExecutionError, match="particles"):
        comfy.run(_custom_graph(tiny_graph, _bfs(particles=0)))


def test_wrong_vae_type_names_the_fix(comfy):
    from importlib import import_module
    plan = import_module(f"{comfy.pack.__name__}.bridge.plan")
    spec = plan.ScoringSpec(vae=torch.zeros(1), guide_verifier=object())
    with pytest.raises(ValueError, match="ComfyUI VAE"):
        spec.validate()


def test_interrupt_stops_the_search_within_a_step(comfy, tiny_graph):
    graph = _custom_graph(tiny_graph, _bfs(), steps=20)
    steps_seen = []

    def cancel_after_two_steps(event, data):
        if event == "diffusion_search.event" and data.get("type") == "step":
            steps_seen.append(data["step"])
            if len(steps_seen) == 2:
                comfy.interrupt()

    comfy.server.listeners.append(cancel_after_two_steps)
    try:
        with pytest.raises(ComfyInterrupted):
            comfy.run(graph)
    finally:
        comfy.server.listeners.remove(cancel_after_two_steps)
        comfy.model_management.interrupt_current_processing(False)
    assert len(steps_seen) <= 3
