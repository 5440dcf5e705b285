"""Every example workflow is a valid UI-format ComfyUI workflow with a preview PNG, and runs end to end."""
import json
from pathlib import Path

import numpy
import pytest
import torch
from PIL import Image

from devtools.workflow_swaps import provide_input_images, swap_in_tiny_model
from comfy_harness import skip_unless_modern, ui_to_api

WORKFLOW_DIR = Path(__file__).resolve().parents[1] / "example_workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.json"))
SEARCH_NODES = {"DiffusionSearchBFSSampler", "DiffusionSearchDFSSampler", "DiffusionSearchLocalSampler",
                "DiffusionSearchKSampler"}
EXPLORER = "DiffusionSearchBudgetExplorer"
# Video workflows use modern ComfyUI's Wan nodes and ComfyUI's own Wan template loaders and file names.
VIDEO_WORKFLOWS = {"wan21_t2v_search": {"UNETLoader": "wan2.1_t2v_1.3B_fp16.safetensors",
                                        "CLIPLoader": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                        "VAELoader": "wan_2.1_vae.safetensors"}}


def _skip_video_on_2024(path, comfy):
    if path.stem in VIDEO_WORKFLOWS:
        skip_unless_modern(comfy, "a Wan video workflow: the 2024 ComfyUI snapshot has no Wan models or video "
                                  "latent nodes")


def test_there_is_a_workflow_per_use():
    names = {path.stem for path in WORKFLOWS}
    assert {"bfs_search", "bfs_presets_side_by_side", "dfs_backtracking", "local_search", "dual_verifiers",
            "rank_batch", "wan21_t2v_search", "img2img_search", "budget_explorer"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_is_valid_ui_format_with_preview(path, comfy):
    _skip_video_on_2024(path, comfy)
    workflow = json.loads(path.read_text())
    nodes = {node["id"]: node for node in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]) and workflow["last_node_id"] >= max(nodes)
    links = {link[0]: link for link in workflow["links"]}
    assert workflow["last_link_id"] >= max(links)
    for link_id, source, slot, target, target_slot, kind in workflow["links"]:
        assert link_id in nodes[source]["outputs"][slot]["links"]
        assert nodes[target]["inputs"][target_slot]["link"] == link_id
        assert nodes[source]["outputs"][slot]["type"] == kind
    for node in nodes.values():
        assert node["type"] in comfy.node_classes, node["type"]
        for entry in node["inputs"]:
            assert entry["link"] is None or entry["link"] in links
    # the standard loaders only, so anyone can run it (the demo swaps them for the tiny model)
    types = {node["type"] for node in nodes.values()}
    assert "DiffusionSearchTestConditioning" not in types
    if path.stem in VIDEO_WORKFLOWS:
        files = {node["type"]: node["widgets_values"][0] for node in nodes.values() if node["type"] in
                 VIDEO_WORKFLOWS[path.stem]}
        assert files == VIDEO_WORKFLOWS[path.stem]
        assert path.with_suffix(".jpg").is_file(), "the modern frontend asks for a same-name .jpg thumbnail"
    else:
        assert "CheckpointLoaderSimple" in types and "UNETLoader" not in types
    preview = path.with_suffix(".png")
    assert preview.is_file(), f"{preview.name} is missing: run python -m devtools.make_workflows"
    with Image.open(preview) as image:
        assert json.loads(image.info["workflow"]) == workflow, "the PNG must carry this workflow (drag and drop)"
        picture = image.convert("RGB")
    # modern ComfyUI's template browser shows <name>.jpg: the same picture as the PNG
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file(), f"{thumbnail.name} is missing: run python -m devtools.workflow_previews"
    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and image.size == picture.size
        # 8x8 block means: what JPEG keeps best, even of noise-like previews
        blocks = [torch.from_numpy(numpy.asarray(picture_.reduce(8), dtype=numpy.float32))
                  for picture_ in (image.convert("RGB"), picture)]
    assert (blocks[0] - blocks[1]).abs().mean() < 6, "the thumbnail must show the PNG's picture (regenerate it)"


def test_example_workflows_folder_holds_only_workflows_and_pictures():
    """ComfyUI serves example_workflows/ publicly as templates: no code there."""
    assert {p.suffix for p in WORKFLOW_DIR.iterdir()} <= {".json", ".png", ".jpg"}


TITLE_HEIGHT = 30   # LiteGraph draws a node's title bar above its pos


def node_boxes(workflow):
    """(id, left, top, right, bottom) of every node, title bar included."""
    return [(n["id"], n["pos"][0], n["pos"][1] - TITLE_HEIGHT, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
            for n in workflow["nodes"]]


def overlapping(boxes):
    return [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_no_node_hides_another(path):
    """Saved boxes do not overlap (the browser test checks each box holds what the frontend draws in it)."""
    assert overlapping(node_boxes(json.loads(path.read_text()))) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_runs_end_to_end(path, comfy, tiny_models):
    _skip_video_on_2024(path, comfy)
    prompt = ui_to_api(json.loads(path.read_text()), comfy.node_classes)
    if path.stem in VIDEO_WORKFLOWS:
        from devtools.tiny_video_models import swap_in_tiny_wan, write_tiny_wan_models
        prompt = swap_in_tiny_wan(prompt, write_tiny_wan_models(tiny_models["models_dir"]), size=32, frames=5,
                                  steps=3)
    else:
        prompt = swap_in_tiny_model(prompt, tiny_models, size=32, steps=4)
    provide_input_images(prompt, comfy.folder_paths.get_input_directory(), size=32)
    comfy.events.clear()
    outputs = comfy.run(prompt)
    saved = [image for output in outputs.values() for image in (output or {}).get("images", [])]
    assert saved, "each example saves images"
    finals = [data["node"] for event, data in comfy.events
              if event == "diffusion_search.event" and data["type"] == "final"]
    searches = [node_id for node_id, node in prompt.items() if node["class_type"] in SEARCH_NODES]
    assert sorted(node_id for node_id in finals if node_id in searches) == sorted(searches)  # one search each
    explorers = [node_id for node_id, node in prompt.items() if node["class_type"] == EXPLORER]
    assert all(node_id in finals for node_id in explorers)  # ... and an explorer runs several
