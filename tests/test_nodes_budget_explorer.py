"""The Search Budget Explorer in the real ComfyUI (tiny model): runs, table, plot, same path as KSampler (Search), Cancel."""
import itertools
import json
import os

import pytest
import torch

from comfy_harness import ComfyExecutionError

SIZE = 32
STEPS = 3


def _graph(tiny_graph, presets="best_of_n, bfs", budgets="1, 2", seeds=2, seed=5):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    graph["explore"] = {"class_type": "DiffusionSearchBudgetExplorer", "inputs": {
        "model": ["unet", 0], "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
        "vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "presets": presets, "budgets": budgets,
        "seed": seed, "seeds": seeds, "steps": STEPS, "cfg": 3.0, "scheduler": "normal", "denoise": 1.0,
        "lam": 10.0, "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2, "score_size": 0, "chunk_size": 16,
        "filename_prefix": "explorer_test",
        # every widget the UI sends, the optional video ones included
        "video_frames": 4, "video_aggregate": "mean", "temporal_weight": 0.0, "video_decoder": "vae"}}
    for slot, key in enumerate(("plot", "table", "runs")):
        graph[f"cap_{key}"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["explore", slot],
                                                                                     "key": key}}
    return graph


def _table_runs(table: str) -> list[tuple]:
    """(preset, budget, seed, nfe) of each row of the runs table (the one whose header starts with '| run |')."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| run |")) + 2
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[start:] if line.startswith("|")]
    return [(row[1], int(row[2]), int(row[3]), float(row[4])) for row in rows]


def test_explorer_runs_every_setting_and_reports_them(comfy, tiny_graph):
    comfy.progress.clear()
    comfy.run(_graph(tiny_graph))
    plot, table, document = comfy.captured["plot"], comfy.captured["table"], json.loads(comfy.captured["runs"])
    runs = document["runs"]
    assert document["planned"] == 8 and not document["cancelled"] and len(runs) == 8
    assert {(r["preset"], r["budget"], r["seed"]) for r in runs} == set(
        itertools.product(("best_of_n", "bfs"), (1, 2), (5, 6)))
    # the table's rows are the runs, in order; NFE per image is budget x steps, so it grows with the budget
    assert _table_runs(table) == [(r["preset"], r["budget"], r["seed"], r["nfe_per_image"]) for r in runs]
    assert all(r["nfe_per_image"] == r["budget"] * STEPS and r["seconds"] > 0 for r in runs)
    assert [r["budget"] for r in runs] == sorted(r["budget"] for r in runs)  # cheapest first
    # the plot is a real picture (axes, lines, text), not an empty canvas
    assert plot.shape[0] == 1 and plot.shape[-1] == 3 and plot.shape[1] > 200 and plot.shape[2] > 400
    assert 0.0 <= float(plot.min()) and float(plot.max()) <= 1.0 and float(plot.std()) > 0.05
    assert comfy.progress and comfy.progress[-1][0] == comfy.progress[-1][1] == 8 * STEPS
    saved = sorted(os.listdir(comfy.folder_paths.get_output_directory()))
    assert any(name.startswith("explorer_test") and name.endswith(".md") for name in saved)


def test_explorer_runs_are_what_ksampler_search_gives(comfy, tiny_graph):
    """A run of the explorer is KSampler (Search) at that setting: same seed, same selected reward and NFE."""
    comfy.run(_graph(tiny_graph, presets="bfs", budgets="3", seeds=1, seed=9))
    run = json.loads(comfy.captured["runs"])["runs"][0]
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = _graph(tiny_graph)["ver"]
    graph["ks"] = {"class_type": "DiffusionSearchKSampler", "inputs": {
        "model": ["unet", 0], "seed": 9, "steps": STEPS, "cfg": 3.0, "scheduler": "normal", "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0, "vae": ["vae", 0],
        "verifier": ["ver", 0], "prompt": "a red apple", "search": "bfs", "particles": 3, "lam": 10.0,
        "resampling_steps": 2, "delta": 0.0, "backtrack_steps": 2, "nfe_budget": 0, "score_size": 0,
        "chunk_size": 16}}
    graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 2], "key": "scores"}}
    comfy.run(graph)
    scores = json.loads(comfy.captured["scores"])
    assert scores["nfe"] == run["nfe_per_image"] == 3 * STEPS
    assert scores["rewards"][0][0] == pytest.approx(run["reward"], abs=1e-6)


def test_explorer_dfs_budget_is_in_multiples_of_the_plain_sampler(comfy, tiny_graph):
    graph = _graph(tiny_graph, presets="dfs", budgets="1, 3", seeds=1)
    graph["explore"]["inputs"]["delta"] = 1e6  # never good enough: DFS spends its whole budget
    comfy.run(graph)
    runs = json.loads(comfy.captured["runs"])["runs"]
    assert runs[0]["nfe_per_image"] == STEPS and STEPS < runs[1]["nfe_per_image"] <= 3 * STEPS


@pytest.mark.parametrize("presets,budgets,message", [("bfs, nonsense", "1", "unknown.*nonsense"),
                                                     ("bfs", "1, two", "whole numbers"), ("bfs", "0", ">= 1"),
                                                     ("", "1", "empty")])
def test_explorer_bad_lists_name_the_fix(comfy, tiny_graph, presets, budgets, message):
    with pytest.raises(ComfyExecutionError, match=message):
        comfy.run(_graph(tiny_graph, presets=presets, budgets=budgets))


def test_cancel_keeps_the_finished_runs(comfy, tiny_graph):
    starts = []

    def cancel_after_two_runs(event, data):  # Cancel pressed as the third run starts
        if event == "diffusion_search.event" and data.get("type") == "start":
            starts.append(data)
            if len(starts) == 3:
                comfy.interrupt()

    comfy.server.listeners.append(cancel_after_two_runs)
    try:
        comfy.run(_graph(tiny_graph, seed=40))
    finally:
        comfy.server.listeners.remove(cancel_after_two_runs)
        comfy.model_management.interrupt_current_processing(False)
    document, table = json.loads(comfy.captured["runs"]), comfy.captured["table"]
    assert document["cancelled"] and document["planned"] == 8
    assert len(document["runs"]) == 2 and len(_table_runs(table)) == 2 and "cancelled" in table
    assert comfy.captured["plot"].shape[-1] == 3 and torch.isfinite(comfy.captured["plot"]).all()


def test_explorer_refuses_a_non_finite_float(comfy, tiny_graph):
    graph = _graph(tiny_graph)
    graph["explore"]["inputs"]["lam"] = float("nan")
    with pytest.raises(ComfyExecutionError, match=r"lam is nan"):
        comfy.run(graph)


@pytest.mark.parametrize("change,message", [
    ({"budgets": "1000000000"}, r"'budgets' has 1000000000.*at most 256 particles"),
    ({"budgets": "257", "presets": "best_of_n, dfs"}, r"at most 256 particles"),
    ({"presets": "dfs", "budgets": "1, 40000"}, r"NFE budget of 40000 x 3 steps = 120000.*up to 33333"),
    ({"seed": 2 ** 64 - 1, "seeds": 2}, r"'seed' 18446744073709551615 with 2 seeds.*at most 18446744073709551614"),
    ({"seeds": 101}, r"seeds = 101 is out of range|bigger than max of 100"),
    ({"filename_prefix": "../../outside"}, r"'filename_prefix' '../../outside' cannot name a file"),
    ({"filename_prefix": "bad\x00name"}, r"'filename_prefix' 'bad\\x00name' cannot name a file"),
])
def test_explorer_checks_every_input_before_the_first_run(comfy, tiny_graph, change, message):
    """What would fail a later run (a budget beyond the particle cap, seed + k past 64 bits, a prefix the table
    cannot be saved under) is refused when the prompt is validated: no run starts, no work is lost (issue 23)."""
    graph = _graph(tiny_graph)
    graph["explore"]["inputs"].update(change)
    with pytest.raises(ComfyExecutionError, match=message):
        comfy.validate({str(k): v for k, v in graph.items()}, "validate-only")
    node = comfy.node_classes["DiffusionSearchBudgetExplorer"]
    inputs = {name: graph["explore"]["inputs"][name] for name in ("presets", "budgets", "steps", "seed", "seeds",
                                                                  "filename_prefix")}
    assert isinstance(node.VALIDATE_INPUTS(**inputs), str)


def test_a_linked_prefix_is_refused_before_any_run(comfy, tiny_graph):
    """A filename_prefix that reaches the node through a link is not seen by validation: explore() refuses it
    before it touches the model (it used to fail after every run had finished, losing them all)."""
    inputs = {k: v for k, v in _graph(tiny_graph)["explore"]["inputs"].items() if not isinstance(v, list)}
    inputs["filename_prefix"] = "../../outside"
    node = comfy.node_classes["DiffusionSearchBudgetExplorer"]()
    with pytest.raises(ValueError, match="'filename_prefix' '../../outside' cannot name a file"):
        node.explore(**inputs, model=None, positive=None, negative=None, latent_image=None, vae=None, verifier=None)


def test_a_failure_mid_way_keeps_and_returns_the_finished_runs(comfy, tiny_graph):
    """A run that fails after others finished (out of memory at a large budget, a verifier fault) ends the
    exploration like Cancel does: the finished runs are returned and saved, the error is named in the table."""
    key, starts, fault = "explorer_fault", [], []

    def fault_from_the_third_run(event, data):
        if event == "diffusion_search.event" and data.get("type") == "start":
            starts.append(data)
            if len(starts) == 3:
                fault.append(True)

    def verifier_call(call):
        if fault:
            raise RuntimeError("verifier crashed (simulated fault)")

    graph = _graph(tiny_graph, seed=60)
    graph["ver"] = {"class_type": "DiffusionSearchTestSlowVerifier", "inputs": {"seconds": 0.0, "chunk_size": 16,
                                                                               "key": key}}
    comfy.test_nodes.VERIFIER_HOOKS[key] = verifier_call
    comfy.server.listeners.append(fault_from_the_third_run)
    try:
        comfy.run(graph)
    finally:
        comfy.server.listeners.remove(fault_from_the_third_run)
        comfy.test_nodes.VERIFIER_HOOKS.pop(key, None)
    document, table = json.loads(comfy.captured["runs"]), comfy.captured["table"]
    assert document["planned"] == 8 and not document["cancelled"] and len(document["runs"]) == 2
    assert "verifier crashed (simulated fault)" in document["error"] and "stopped by an error" in table
    assert len(_table_runs(table)) == 2 and torch.isfinite(comfy.captured["plot"]).all()
    folder = comfy.folder_paths.get_output_directory()
    saved = sorted(name for name in os.listdir(folder) if name.startswith("explorer_test") and name.endswith(".json"))
    with open(os.path.join(folder, saved[-1]), encoding="utf-8") as handle:
        assert json.load(handle)["runs"] == document["runs"]


def test_a_failure_in_the_first_run_is_raised(comfy, tiny_graph):
    """Nothing finished to keep: the error itself reaches the user."""
    graph = _graph(tiny_graph, seed=70)
    graph["ver"] = {"class_type": "DiffusionSearchTestSlowVerifier", "inputs": {"seconds": 0.0, "chunk_size": 16,
                                                                               "key": "explorer_first"}}

    def crash(call):
        raise RuntimeError("verifier crashed at once")

    comfy.test_nodes.VERIFIER_HOOKS["explorer_first"] = crash
    try:
        with pytest.raises(ComfyExecutionError, match="verifier crashed at once"):
            comfy.run(graph)
    finally:
        comfy.test_nodes.VERIFIER_HOOKS.pop("explorer_first", None)
