"""Load Verifier: VLM in real ComfyUI: it lists and loads a tiny Qwen2-VL folder from models/vlm/, BFS selects with it,
Local Search refuses it as its guide with the fix, and bad picks are refused."""
import pytest
import torch

from comfy_harness import ComfyExecutionError, add_search_sampling
from devtools.tiny_vlm import write_qwen2_vl_folder

NODE = "DiffusionSearchVerifierVlm"
SIZE = 32


@pytest.fixture(scope="module")
def vlm_models(comfy, tmp_path_factory):
    """models/vlm/ of our own with one tiny Qwen2-VL folder, registered with ComfyUI's folder_paths."""
    root = tmp_path_factory.mktemp("vlm_models")
    write_qwen2_vl_folder(root / "tiny-qwen2-vl", torch.Generator().manual_seed(0))
    comfy.folder_paths.add_model_folder_path("vlm", str(root))
    yield root
    comfy.folder_paths.folder_names_and_paths["vlm"][0].remove(str(root))


def _vlm_node(model="tiny-qwen2-vl", questions="Does this image show {prompt}?\n2 | Is there a red car?"):
    return {"class_type": NODE, "inputs": {"model": model, "questions": questions, "aggregation": "log_prob",
                                           "image_size": 56, "device": "cpu", "dtype": "float32", "chunk_size": 4}}


def _scoring(**extra):
    return {"vae": ["vae", 0], "verifier": ["ver", 0], "prompt": "a red apple", "score_size": 0, "chunk_size": 16,
            **extra}


def test_loader_lists_and_loads_the_folder_with_its_questions(comfy, vlm_models):
    assert comfy.nodes.NODE_DISPLAY_NAME_MAPPINGS[NODE] == "Load Verifier: VLM"
    cls = comfy.node_classes[NODE]
    assert cls.INPUT_TYPES()["required"]["model"][0] == ["tiny-qwen2-vl"]
    with torch.inference_mode():  # as ComfyUI runs nodes
        verifier = cls().load(**_vlm_node()["inputs"])[0]
    assert [q.weight for q in verifier.questions] == [1.0, 2.0] and verifier.needs_prompt
    rewards = verifier.score(torch.rand(2, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1)), "a red apple")
    assert rewards.shape == (2,) and (rewards < 0).all()


def test_bfs_selects_with_the_vlm(comfy, vlm_models, tiny_graph):
    bfs = {"class_type": "DiffusionSearchBFSSampler",
           "inputs": _scoring(preset="bfs", particles=3, lam=10.0, resampling_steps=2, ess_threshold=0.0,
                              temperature="constant", scoring="max", resampling="ssp")}
    graph = add_search_sampling(tiny_graph(batch=1, size=SIZE), bfs, steps=4)
    graph["ver"] = _vlm_node()
    comfy.events.clear()
    comfy.run(graph)
    final = [d for e, d in comfy.events if e == "diffusion_search.event" and d["type"] == "final"][-1]
    rewards, selected = final["rewards"][0], final["selected"][0]
    assert len(rewards) == 3 and all(r < 0 for r in rewards)
    assert rewards[selected] == max(rewards)
    assert comfy.captured["out"]["samples"].shape == (1, 4, SIZE // 8, SIZE // 8)


def test_local_search_refuses_the_vlm_as_guide_and_names_the_fix(comfy, vlm_models, tiny_graph):
    settings = {"class_type": "DiffusionSearchLocalSearchSettings",
                "inputs": {"gradient_mode": "x0", "langevin_steps": 2, "recur_steps": 1, "mu": 0.5, "rho": 0.2,
                           "start_step": 0, "grad_clip": 0.0}}
    local = {"class_type": "DiffusionSearchLocalSampler", "inputs": _scoring(local_search=["settings", 0], particles=1)}
    graph = add_search_sampling(tiny_graph(batch=1, size=SIZE), local, steps=4)
    graph["settings"], graph["ver"] = settings, _vlm_node()
    with pytest.raises(ComfyExecutionError, match="'vlm' is not differentiable.*differentiable guide verifier"):
        comfy.run(graph)


@pytest.mark.parametrize("model, message", [("../tiny-qwen2-vl", "refused"), ("/etc", "refused"),
                                            ("gone", "not in models/vlm/"),
                                            ("(missing: put a VLM folder, e.g. Qwen2-VL-2B-Instruct/, in models/vlm/)",
                                             "never download")])
def test_bad_picks_are_refused(comfy, vlm_models, model, message):
    with pytest.raises(ValueError, match=message):
        comfy.node_classes[NODE]().load(**_vlm_node(model=model)["inputs"])
