"""Bad input to the nodes gets a clear error before anything runs silently wrong: rewards Rank Images cannot use,
Cancel while ranking, non-finite numbers in float widgets."""
import json
import math
import time

import pytest
import torch

from comfy_harness import ComfyExecutionError, ComfyInterrupted, add_search_sampling

SIZE = 32


class PlainVerifier:
    """A verifier that is a plain object with .score (the socket accepts any); its rewards are what the test says."""

    def __init__(self, rewards_for, chunk_size=8, on_call=None):
        self.rewards_for, self.chunk_size, self.on_call, self.calls = rewards_for, chunk_size, on_call, 0
        self.name = "plain"

    def score(self, images, prompts=None):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        return self.rewards_for(images)


def _rank(comfy, verifier, count=3):
    images = torch.rand(count, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    node = comfy.node_classes["DiffusionSearchRankImages"]()
    with torch.inference_mode():
        return node.rank(images, verifier, "a red apple", 1)


def test_rank_refuses_fewer_rewards_than_images(comfy):
    with pytest.raises(ValueError, match="returned 1 rewards for 3 images"):
        _rank(comfy, PlainVerifier(lambda images: torch.tensor([0.5])))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rank_refuses_non_finite_rewards_naming_the_image(comfy, bad):
    rewards = PlainVerifier(lambda images: torch.tensor([0.1, bad, 0.3]))
    with pytest.raises(ValueError, match=r"NaN/inf rewards for images \[1\]"):
        _rank(comfy, rewards)


def test_rank_emits_standard_json(comfy):
    _, scores_json, _, best = _rank(comfy, PlainVerifier(lambda images: images.mean(dim=(1, 2, 3)) * 1e30))
    document = json.loads(scores_json, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
    assert document["scores"][0] == pytest.approx(best) and len(document["order"]) == 3


def test_cancel_stops_ranking_between_chunks(comfy):
    interrupted = comfy.model_management.InterruptProcessingException

    def cancel_during_first_chunk(call):
        if call == 1:
            comfy.interrupt()  # what Cancel does while the first chunk is being scored

    verifier = PlainVerifier(lambda images: images.mean(dim=(1, 2, 3)), chunk_size=2,
                             on_call=cancel_during_first_chunk)
    try:
        with pytest.raises(interrupted):
            _rank(comfy, verifier, count=8)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert verifier.calls == 1


def _search_graph(tiny_graph, node):
    graph = tiny_graph(batch=1, size=SIZE)
    graph["ver"] = {"class_type": "DiffusionSearchVerifierPromptColour",
                    "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 16}}
    return add_search_sampling(graph, node, steps=2)


SCORING = {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "red", "score_size": 0, "chunk_size": 16}
NODES = {
    "DiffusionSearchBFSSampler": dict(SCORING, preset="bfs", particles=2, lam=10.0, resampling_steps=1,
                                      ess_threshold=0.0, temperature="constant", scoring="max", resampling="ssp"),
    "DiffusionSearchDFSSampler": dict(SCORING, delta=0.0, delta_schedule="constant", backtrack_steps=1, nfe_budget=0,
                                      max_backtracks=-1, check_from=1),
    "DiffusionSearchLocalSearchSettings": dict(gradient_mode="x0", langevin_steps=1, recur_steps=1, mu=0.4, rho=0.2,
                                               start_step=0, grad_clip=0.0),
    "DiffusionSearchKSampler": dict(SCORING, model=["unet", 0], seed=0, steps=2, cfg=3.0, scheduler="normal",
                                    positive=["pos", 0], negative=["neg", 0], latent_image=["latent", 0], denoise=1.0,
                                    search="bfs", particles=2, lam=10.0, resampling_steps=1, delta=0.0,
                                    backtrack_steps=1, nfe_budget=0),
}
FLOAT_INPUTS = [(node, name) for node, inputs in NODES.items() for name in inputs
                if name in ("lam", "ess_threshold", "delta", "mu", "rho", "grad_clip", "cfg", "denoise")]


def _graph_with(tiny_graph, node, inputs):
    if node == "DiffusionSearchKSampler":
        graph = tiny_graph(batch=1, size=SIZE)
        graph["ver"] = _search_graph(tiny_graph, {})["ver"]
        graph["ks"] = {"class_type": node, "inputs": inputs}
        graph["cap"] = {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["ks", 0], "key": "out"}}
        return graph
    if node == "DiffusionSearchLocalSearchSettings":
        graph = _search_graph(tiny_graph, {"class_type": "DiffusionSearchLocalSampler", "inputs": dict(
            SCORING, local_search=["settings", 0], particles=1)})
        graph["settings"] = {"class_type": node, "inputs": inputs}
        return graph
    return _search_graph(tiny_graph, {"class_type": node, "inputs": inputs})


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("node, name", FLOAT_INPUTS)
def test_non_finite_float_inputs_are_refused_naming_the_input_and_its_range(comfy, tiny_graph, node, name, value):
    """/prompt accepts the JSON literal NaN and ComfyUI's min/max check lets it through; the nodes must not."""
    graph = _graph_with(tiny_graph, node, dict(NODES[node], **{name: value}))
    with pytest.raises(ComfyExecutionError, match=rf"{name} is (nan|inf).*finite number in \[") as info:
        comfy.run(graph)
    assert "Custom validation failed" in str(info.value) or "validation" in str(info.value)


def test_combine_verifiers_refuses_a_nan_weight(comfy):
    graph = {"a": {"class_type": "DiffusionSearchVerifierColourfulness",
                   "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 2}},
             "mix": {"class_type": "DiffusionSearchCombineVerifiers",
                     "inputs": {"verifier_1": ["a", 0], "weight_1": 1.0, "normalise": "raw", "verifier_2": ["a", 0],
                                "weight_2": math.nan}},
             "cap": {"class_type": "DiffusionSearchTestCapture", "inputs": {"value": ["mix", 0], "key": "mix"}}}
    with pytest.raises(ComfyExecutionError, match=r"weight_2 is nan"):
        comfy.run(graph)


@pytest.mark.parametrize("node, name", FLOAT_INPUTS)
def test_linked_non_finite_floats_are_refused_when_the_node_runs(comfy, node, name):
    """A FLOAT that arrives through a link is not seen by validation: the node checks it itself."""
    cls = comfy.node_classes[node]
    inputs = {k: v for k, v in NODES[node].items() if not isinstance(v, list)}
    inputs.update({k: None for k, v in NODES[node].items() if isinstance(v, list)}, **{name: math.nan})
    function = getattr(cls(), cls.FUNCTION)
    with pytest.raises(ValueError, match=rf"{name} is nan"):
        function(**inputs)


def test_dfs_tooltips_say_what_the_budget_and_check_from_do(comfy):
    import importlib
    from search_core import DFSConfig
    widgets = importlib.import_module(f"{comfy.pack.__name__}.nodes.widgets")
    inputs = widgets.dfs_inputs()
    budget, check_from = inputs["nfe_budget"][1]["tooltip"], inputs["check_from"][1]["tooltip"]
    assert "A dive always completes" not in budget and "least one full dive (less is an error)" in budget
    with pytest.raises(ValueError, match="raise it to at least 6"):
        DFSConfig(nfe_budget=5).validate(n_steps=6)
    assert "last step" in check_from and "always checked" in check_from


def test_every_float_widget_of_the_pack_refuses_nan_and_inf_at_validation(comfy):
    """Each node of the pack with a FLOAT input validates it (VALIDATE_INPUTS), so a new node cannot forget it."""
    checked = 0
    for node_id, cls in comfy.node_classes.items():
        if not cls.__module__.startswith(comfy.pack.__name__):
            continue
        types = cls.INPUT_TYPES()
        floats = [name for group in ("required", "optional") for name, spec in types.get(group, {}).items()
                  if spec[0] == "FLOAT"]
        for name in floats:
            assert hasattr(cls, "VALIDATE_INPUTS"), f"{node_id} does not validate its FLOAT input {name}"
            for bad in (math.nan, math.inf, -math.inf):
                verdict = cls.VALIDATE_INPUTS(**{name: bad})
                assert isinstance(verdict, str) and name in verdict and "finite" in verdict, (node_id, name, verdict)
            checked += 1
    assert checked >= 12


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("node", ["DiffusionSearchBFSSampler", "DiffusionSearchKSampler"])
def test_a_non_finite_input_latent_is_blamed_on_latent_image(comfy, tiny_graph, node, bad):
    """A NaN/inf latent (a broken VAE Encode, a latent math node) is named as such, not blamed on the decoder."""
    latent = torch.zeros(1, 4, SIZE // 8, SIZE // 8)
    latent[0, 1, 2, 3] = bad
    comfy.test_nodes.LATENTS["non_finite"] = latent
    graph = _graph_with(tiny_graph, node, NODES[node])
    graph["latent"] = {"class_type": "DiffusionSearchTestLatent", "inputs": {"key": "non_finite"}}
    with pytest.raises(ComfyExecutionError, match=r"'latent_image' holds NaN/inf values \(1 of 64\).*Make the "
                                                   r"latent again") as info:
        comfy.run(graph)
    assert "decoder" not in str(info.value)


def test_cancel_during_scoring_stops_between_verifier_chunks(comfy, tiny_graph):
    """Eight particles decoded in one chunk, scored by a slow verifier one image per call: Cancel pressed during the
    second call stops the search before the third, not after all eight (issue 23: 16 s after Cancel)."""
    key, seconds, pressed = "slow_cancel", 0.4, []

    def cancel_during_second_call(call):
        if call == 2:
            pressed.append(time.perf_counter())
            comfy.interrupt()

    graph = _search_graph(tiny_graph, {"class_type": "DiffusionSearchBFSSampler", "inputs": dict(
        NODES["DiffusionSearchBFSSampler"], preset="best_of_n", particles=8, chunk_size=8, verifier=["slow", 0])})
    graph["slow"] = {"class_type": "DiffusionSearchTestSlowVerifier",
                     "inputs": {"seconds": seconds, "chunk_size": 1, "key": key}}
    comfy.captured.pop(key, None)
    comfy.test_nodes.VERIFIER_HOOKS[key] = cancel_during_second_call
    try:
        with pytest.raises(ComfyInterrupted):
            comfy.run(graph)
        stopped = time.perf_counter()
    finally:
        comfy.test_nodes.VERIFIER_HOOKS.pop(key, None)
        comfy.model_management.interrupt_current_processing(False)
    calls = comfy.captured[key]
    assert [size for _, size in calls] == [1, 1]   # the call under way finishes; no verifier call after Cancel
    # a search that checked only per decode chunk would score the 6 others first: 2.4 s more
    assert stopped - pressed[0] < seconds + 1.0
