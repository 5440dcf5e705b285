"""Extending a finished search through real ComfyUI: raise the budget, re-queue, the kept work is reused (issue 14).

Best-of-N and DFS give exactly what one run of the larger budget gives; BFS is never worse; a changed input never
reuses a kept state; a state saved as safetensors + JSON is reloaded after the memory cache is gone (a restart).
"""
import json
import shutil
import sys
from importlib import import_module
from pathlib import Path

import pytest
import torch

from comfy_harness import add_search_sampling, comfyui_root, is_modern

SIZE, STEPS = 32, 4


def _sampler(kind, **settings):
    inputs = {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "score_size": 0, "chunk_size": 16}
    if kind == "dfs":
        inputs.update(delta=1e6, delta_schedule="constant", backtrack_steps=2, nfe_budget=8, max_backtracks=-1,
                      check_from=1)
        inputs.update(settings)
        return {"class_type": "DiffusionSearchDFSSampler", "inputs": inputs}
    inputs.update(preset=kind, particles=2, lam=10.0, resampling_steps=2, ess_threshold=0.0, temperature="constant",
                  scoring="max", resampling="ssp")
    inputs.update(settings)
    return {"class_type": "DiffusionSearchBFSSampler", "inputs": inputs}


def _graph(tiny_graph, sampler, seed=0, latent=None, cond_seed=0):
    graph = tiny_graph(batch=2, size=SIZE, seed=cond_seed)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    if latent is not None:
        graph["latent"] = {"class_type": "DiffusionSearchTestLatent", "inputs": {"key": latent}}
    return add_search_sampling(graph, sampler, seed=seed, steps=STEPS)


def _run(comfy, graph):
    """(output latent, search events) of one execution."""
    comfy.events.clear()
    comfy.run(graph)
    events = [data for event, data in comfy.events if event == "diffusion_search.event"]
    assert events and events[0]["type"] == "start", "the search node did not run (ComfyUI's cache answered)"
    return comfy.captured["out"]["samples"].clone(), events


def _close(a, b):
    """Equal up to float32 rounding (the tiny random UNet amplifies it to ~1e-5 of the latent's scale)."""
    return torch.allclose(a, b, rtol=0, atol=1e-4 * float(b.abs().max()))


def _chosen(events):
    """Per latent, the reward of the returned sample (the merged pick of an extension)."""
    last = [e for e in events if e["type"] in ("final", "extend")][-1]
    return torch.tensor([rewards[pick] for rewards, pick in zip(last["rewards"], last["selected"])])


@pytest.fixture
def states(comfy, monkeypatch):
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "1")   # the harness turns extension off for the other tests
    module = import_module(f"{comfy.pack.__name__}.bridge.search_state")
    folder = Path(import_module(f"{comfy.pack.__name__}.bridge.compat").state_folder())
    module.CACHE.clear()
    shutil.rmtree(folder, ignore_errors=True)
    yield module, folder
    module.CACHE.clear()


def test_best_of_n_extended_equals_one_larger_run(comfy, tiny_graph, states, monkeypatch):
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "0")
    whole, whole_events = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=5)))
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "1")
    small, small_events = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=2)))
    extended, events = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=5)))
    start = events[0]
    assert start["extends"] == {"from_budget": 2, "budget": 5, "exact": True} and "extends" not in small_events[0]
    assert start["n_particles"] == 3   # only the three new candidates were computed
    final = [e for e in events if e["type"] == "final"][-1]
    assert final["nfe"] == 2 * 3 * STEPS and whole_events[-1]["nfe"] == 2 * 5 * STEPS
    # same picks and image as one run with five particles, up to the rounding of batched model calls of other sizes
    assert _close(extended, whole) and not _close(extended, small)
    merged, one_run = events[-1], whole_events[-1]
    assert merged["type"] == "extend" and merged["selected"] == one_run["selected"]
    assert torch.allclose(torch.tensor(merged["rewards"]), torch.tensor(one_run["rewards"]), atol=1e-6)
    assert (_chosen(events) >= _chosen(small_events)).all()


def test_dfs_extended_equals_one_larger_run_or_keeps_the_better_sample(comfy, tiny_graph, states, monkeypatch):
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "0")
    whole, whole_events = _run(comfy, _graph(tiny_graph, _sampler("dfs", nfe_budget=17), seed=3))
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "1")
    small, small_events = _run(comfy, _graph(tiny_graph, _sampler("dfs", nfe_budget=9), seed=3))
    extended, events = _run(comfy, _graph(tiny_graph, _sampler("dfs", nfe_budget=17), seed=3))
    assert events[0]["extends"] == {"from_budget": 9, "budget": 17, "exact": True}
    assert [e for e in events if e["type"] == "backtrack"], "δ = 1e6: the added budget must be spent backtracking"
    assert events[-1]["nfe_per_item"] == whole_events[-1]["nfe_per_item"]   # the larger run's budget accounting
    assert events[-1]["nfe"] < whole_events[-1]["nfe"]                       # less computed than the whole run
    ours, alone, before = _chosen(events), _chosen(whole_events), _chosen(small_events)
    assert torch.allclose(ours, torch.maximum(alone, before), atol=1e-5) and (ours >= before).all()
    same = alone >= before
    assert _close(extended[same], whole[same])


def test_bfs_further_population_is_never_worse(comfy, tiny_graph, states):
    small, small_events = _run(comfy, _graph(tiny_graph, _sampler("bfs", particles=2), seed=5))
    extended, events = _run(comfy, _graph(tiny_graph, _sampler("bfs", particles=4), seed=5))
    assert events[0]["extends"] == {"from_budget": 2, "budget": 4, "exact": False}
    assert (_chosen(events) >= _chosen(small_events)).all()
    assert len(events[-1]["rewards"][0]) == 4   # both populations' finals are the candidates


def test_a_changed_input_never_reuses_a_kept_state(comfy, tiny_graph, states):
    comfy.test_nodes.LATENTS["extend_a"] = torch.randn(2, 4, SIZE // 8, SIZE // 8,
                                                       generator=torch.Generator().manual_seed(0))
    comfy.test_nodes.LATENTS["extend_b"] = comfy.test_nodes.LATENTS["extend_a"] + 0.5
    _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=2), latent="extend_a"))
    changed = {
        "seed": _graph(tiny_graph, _sampler("best_of_n", particles=3), latent="extend_a", seed=1),
        "prompt": _graph(tiny_graph, _sampler("best_of_n", particles=3, prompt="a green leaf"), latent="extend_a"),
        "setting": _graph(tiny_graph, _sampler("best_of_n", particles=3, score_size=16), latent="extend_a"),
        "latent": _graph(tiny_graph, _sampler("best_of_n", particles=3), latent="extend_b"),
        "conditioning": _graph(tiny_graph, _sampler("best_of_n", particles=3), latent="extend_a", cond_seed=4),
        "preset": _graph(tiny_graph, _sampler("fk", particles=3), latent="extend_a"),
        "verifier": _graph(tiny_graph, _sampler("best_of_n", particles=3), latent="extend_a"),
    }
    changed["verifier"]["ver2"] = dict(changed["verifier"]["ver"], class_type="DiffusionSearchVerifierColourfulness")
    changed["verifier"]["search"]["inputs"]["verifier"] = ["ver2", 0]   # a new node id: 2024 caches by id and inputs
    for what, graph in changed.items():
        _, events = _run(comfy, graph)
        assert "extends" not in events[0], f"a changed {what} reused the kept search"
        assert events[0]["n_particles"] == 3
    _, events = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=3), latent="extend_a"))
    assert events[0]["extends"]["from_budget"] == 2   # unchanged inputs: reused


def test_saved_state_is_reloaded_after_a_restart(comfy, tiny_graph, states):
    module, folder = states
    small, _ = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=2), seed=9))
    files = sorted(p.suffix for p in folder.iterdir())
    assert files == [".json", ".safetensors"]   # tensors as safetensors, the trace as JSON: no pickle
    info = json.loads(next(folder.glob("*.json")).read_text())
    assert info["budget"] == 2 and info["info"]["events"][0]["type"] == "start"
    module.CACHE.clear()   # what a restart loses
    _, events = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=3), seed=9))
    assert events[0]["extends"] == {"from_budget": 2, "budget": 3, "exact": True}
    assert len(module.CACHE.states) == 1 and next(iter(module.CACHE.states.values())).budget == 3


def test_cache_is_bounded_by_bytes(comfy):
    module = import_module(f"{comfy.pack.__name__}.bridge.search_state")
    cache = module.StateCache(max_bytes=3 * 4096)
    for index in range(5):
        cache.put(module.SearchState(f"k{index}", "bfs", 2, {"x": torch.zeros(1024)}, {}))
    assert list(cache.states) == ["k2", "k3", "k4"] and cache.nbytes <= 3 * 4096
    cache.get("k2")
    cache.put(module.SearchState("k5", "bfs", 2, {"x": torch.zeros(1024)}, {}))
    assert list(cache.states) == ["k4", "k2", "k5"]


def test_ksampler_search_extends_too(comfy, tiny_graph, states):
    """The all-in-one node: raising particles on KSampler (Search) extends its kept search as well."""
    def graph(particles):
        g = tiny_graph(batch=1, size=SIZE)
        g["ver"] = {"class_type": "DiffusionSearchVerifierColourfulness",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 8}}
        g["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
            "model": ["unet", 0], "seed": 23, "steps": STEPS, "cfg": 2.0, "scheduler": "normal",
            "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0,
            "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "search": "best_of_n",
            "particles": particles, "lam": 10.0, "resampling_steps": 3, "delta": 0.0, "backtrack_steps": 2,
            "nfe_budget": 0, "score_size": 0, "chunk_size": 8}}
        g["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 1], "key": "out"}}
        return g

    _run(comfy, graph(2))
    candidates, events = _run(comfy, graph(4))
    assert events[0]["extends"] == {"from_budget": 2, "budget": 4, "exact": True}
    assert candidates.shape[0] == 4   # every candidate of both runs, ranked


def test_keys_follow_content_and_an_input_too_deep_is_not_kept(comfy):
    module = import_module(f"{comfy.pack.__name__}.bridge.state_key")
    a = {"cond": [{"c": torch.ones(2, 3)}], "cfg": 3.0}
    same = {"cfg": 3.0, "cond": [{"c": torch.ones(2, 3)}]}          # other objects, same content
    other = {"cond": [{"c": torch.ones(2, 3) * (1 + 1e-6)}], "cfg": 3.0}
    assert module.state_key(x=a) == module.state_key(x=same) != module.state_key(x=other)
    deep = node = {}
    for _ in range(40):
        node["next"] = {}
        node = node["next"]
    with pytest.raises(module.KeyTooComplex):
        module.state_key(x=deep)
    assert module.safe_key(None, None, None, None, None, None, None, 0, "eps") is None   # never fails a search


def test_comfyui_conds_and_patches_are_keyed_by_their_tensors(comfy):
    """ComfyUI's cond wrappers (comfy/conds.py of the running version) by their tensor, a cond's per-run uuid not at
    all, weight patches by their tensors and strengths: the same content gives the same key, a changed one another."""
    import uuid

    conds = import_module("comfy.conds")   # not `import comfy.conds`: `comfy` is the fixture
    module = import_module(f"{comfy.pack.__name__}.bridge.state_key")
    assert module.KEY_VERSION >= 2

    def cond(scale=1.0, strength=1.0):
        return {"conds": {"positive": [{"cross_attn": torch.ones(1, 4, 8), "uuid": uuid.uuid4(), "strength": strength,
                                        "model_conds": {"c_crossattn": conds.CONDCrossAttn(
                                            torch.ones(1, 4, 8) * scale)}}]}}
    base = module.state_key(conditioning=cond())
    assert base == module.state_key(conditioning=cond())   # a fresh uuid, the same cond
    assert module.state_key(conditioning=cond(scale=1 + 1e-6)) != base
    assert module.state_key(conditioning=cond(strength=0.5)) != base

    def lora(strength):
        return {"patches": {"diffusion_model.out.weight": [(strength, ("lora", (torch.ones(4, 2), torch.ones(2, 4),
                                                                                 1.0, None)), 1.0, None, None)]}}
    assert module.state_key(patches=lora(1.0)) == module.state_key(patches=lora(1.0)) != module.state_key(
        patches=lora(0.8))
    try:   # modern ComfyUI: a LoRA patch is a weight adapter object
        LoRAAdapter = import_module("comfy.weight_adapter.lora").LoRAAdapter
    except ImportError:
        assert not is_modern(comfyui_root()), "modern ComfyUI keeps LoRA patches in comfy.weight_adapter"
        return

    def adapter(scale):
        return {"patches": {"k": [(1.0, LoRAAdapter({"k"}, (torch.ones(4, 2) * scale, torch.ones(2, 4), 1.0, None,
                                                          None, None)), 1.0, None, None)]}}
    assert module.state_key(patches=adapter(1.0)) == module.state_key(patches=adapter(1.0)) != module.state_key(
        patches=adapter(2.0))


def _edit_json(field, value):
    def edit(tensors_path, info_path):
        info = json.loads(info_path.read_text())
        info[field] = value
        info_path.write_text(json.dumps(info))
    return edit


def _edit_tensor(name, change):
    def edit(tensors_path, info_path):
        from safetensors.torch import load_file, save_file
        tensors = load_file(str(tensors_path))
        tensors[name] = change(tensors[name]).contiguous()
        save_file(tensors, str(tensors_path))
    return edit


# What a user's disk and hands do to a kept state (issue 23): each must be set aside, never used or fatal.
BROKEN_STATES = {
    "truncated safetensors": lambda t, j: t.write_bytes(t.read_bytes()[: t.stat().st_size // 2]),
    "JSON list": lambda t, j: j.write_text("[]"),
    "JSON cut short": lambda t, j: j.write_text(j.read_text()[:20]),
    "budget null": _edit_json("budget", None),
    "budget lowered to 1": _edit_json("budget", 1),
    "algorithm unknown": _edit_json("algorithm", "beam"),
    "rewards of another shape": _edit_tensor("rewards", lambda r: torch.zeros(r.shape[0], r.shape[1] + 3)),
    "rewards all NaN": _edit_tensor("rewards", lambda r: torch.full_like(r, float("nan"))),
    "particles of another latent size": _edit_tensor("particles", lambda p: p[..., :-1]),
    "selected out of range": _edit_tensor("selected", lambda s: s + 7),
}


def test_a_broken_kept_state_is_set_aside_and_the_search_runs_whole(comfy, tiny_graph, states, monkeypatch, caplog):
    """Truncated, hand-edited or mismatched state files: a warning naming the file, the files renamed *.bad (kept,
    never deleted), the whole search at the new budget, a good state saved in their place (issue 23)."""
    module, folder = states
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "0")
    whole, _ = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=3), seed=13))
    monkeypatch.setenv("DIFFUSION_SEARCH_REUSE", "1")
    _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=2), seed=13))
    tensors_path, info_path = next(folder.glob("*.safetensors")), next(folder.glob("*.json"))
    good = {path: path.read_bytes() for path in (tensors_path, info_path)}
    for index, (what, corrupt) in enumerate(BROKEN_STATES.items()):
        for path in folder.iterdir():
            path.unlink()
        for path, data in good.items():
            path.write_bytes(data)
        corrupt(tensors_path, info_path)
        broken = {path.name: path.read_bytes() for path in (tensors_path, info_path)}
        module.CACHE.clear()   # a restart: only the files are left
        caplog.clear()
        # chunk_size is no part of the key: a new value only makes ComfyUI run the node again
        extended, events = _run(comfy, _graph(tiny_graph, _sampler("best_of_n", particles=3, chunk_size=15 - index),
                                              seed=13))
        assert "extends" not in events[0] and events[0]["n_particles"] == 3, f"{what}: the broken state was used"
        assert len(events[-1]["rewards"][0]) == 3 and _close(extended, whole), what
        assert any(str(tensors_path) in r.getMessage() and r.levelname == "WARNING" for r in caplog.records), what
        kept = {path.name[:-len(".bad")]: path.read_bytes() for path in folder.glob("*.bad")}
        assert kept == broken, f"{what}: the broken files were not kept as *.bad"
        assert json.loads(info_path.read_text())["budget"] == 3, f"{what}: no good state replaced it"


def test_a_bad_cache_size_setting_warns_and_uses_the_default(comfy, monkeypatch, caplog):
    """DIFFUSION_SEARCH_CACHE_MB = abc / empty / nan / inf / -1: a warning and 256 MiB, and the module still imports
    (its cache is made at import: an error there would keep every node of the pack from loading)."""
    import importlib.util
    module = import_module(f"{comfy.pack.__name__}.bridge.search_state")
    for bad in ("abc", "", "nan", "inf", "-1"):
        monkeypatch.setenv("DIFFUSION_SEARCH_CACHE_MB", bad)
        caplog.clear()
        spec = importlib.util.spec_from_file_location("search_state_copy", module.__file__)
        fresh = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, fresh)   # dataclasses look their module up there
        spec.loader.exec_module(fresh)   # what ComfyUI's import of the pack does
        assert fresh.CACHE.max_bytes == 256 * 2 ** 20, bad
        assert any("DIFFUSION_SEARCH_CACHE_MB" in r.getMessage() and r.levelname == "WARNING"
                   for r in caplog.records), bad
    monkeypatch.setenv("DIFFUSION_SEARCH_CACHE_MB", "0.5")
    assert module.StateCache().max_bytes == 2 ** 19
