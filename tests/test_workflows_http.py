"""Every example workflow, queued over HTTP to a real ComfyUI server as a user's browser would, runs to the end; and
on modern ComfyUI the workflows are served as templates, each with its thumbnail, and listed in the template browser."""
import json
import urllib.request
from pathlib import Path

import pytest

from devtools.workflow_swaps import provide_input_images, swap_in_tiny_model
from devtools.tiny_video_models import swap_in_tiny_wan, write_tiny_wan_models
from comfy_harness import PACK_NAME, skip_unless_modern, ui_to_api
from test_workflows import SEARCH_NODES, VIDEO_WORKFLOWS, WORKFLOWS
from web_view_support import PAGE_TIMEOUT, TINY


def _prompt_for_server(path: Path, comfy, server) -> dict:
    """The workflow in API format on the server's tiny models, with its input pictures in the server's input folder."""
    prompt = ui_to_api(json.loads(path.read_text()), comfy.node_classes)
    if path.stem in VIDEO_WORKFLOWS:
        names = write_tiny_wan_models(server.models_dir)
        prompt = swap_in_tiny_wan(prompt, names, size=32, frames=5, steps=3)
    else:
        prompt = swap_in_tiny_model(prompt, TINY, size=32, steps=4)
    provide_input_images(prompt, server.base / "input", size=32)
    return prompt


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_example_workflow_runs_over_http(path, comfy, server):
    if path.stem in VIDEO_WORKFLOWS:
        skip_unless_modern(comfy, "a Wan video workflow: the 2024 ComfyUI snapshot has no Wan models")
    prompt = _prompt_for_server(path, comfy, server)
    entry = server.wait_history(server.queue_prompt(prompt), timeout=300)
    status = entry.get("status", {})
    assert status.get("completed", True) and status.get("status_str", "success") == "success", (
        f"{path.name} failed on the server: {json.dumps(status)[-1500:]}\n{server.log_tail()}")
    saved = [image for output in entry["outputs"].values() for image in output.get("images", [])]
    assert saved, f"{path.name} saved no image"
    for image in saved:   # what the browser shows is really there
        assert (server.base / image.get("type", "output") / image.get("subfolder", "") / image["filename"]).is_file()
    searches = {node_id for node_id, node in prompt.items() if node["class_type"] in SEARCH_NODES}
    assert searches <= set(entry["outputs"]) | _upstream_of_outputs(prompt, entry["outputs"])


def _upstream_of_outputs(prompt: dict, outputs: dict) -> set:
    """Every node an output node depends on (a search node itself has no UI output unless it shows images)."""
    seen, todo = set(), list(outputs)
    while todo:
        node_id = str(todo.pop())
        if node_id in seen or node_id not in prompt:
            continue
        seen.add(node_id)
        todo += [value[0] for value in prompt[node_id]["inputs"].values() if isinstance(value, list) and value]
    return seen


def _get(server, path: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(server.url + path, timeout=10) as response:
        return response.read(), response.headers.get("Content-Type", "")


def test_workflows_are_templates_with_thumbnails(comfy, server):
    skip_unless_modern(comfy, "the template browser (custom-node templates under /api/workflow_templates)")
    listed = server.get_json("/api/workflow_templates")
    assert sorted(listed.get(PACK_NAME, [])) == sorted(p.stem for p in WORKFLOWS), listed
    for path in WORKFLOWS:
        body, _ = _get(server, f"/api/workflow_templates/{PACK_NAME}/{path.name}")
        assert json.loads(body) == json.loads(path.read_text())
        thumbnail, kind = _get(server, f"/api/workflow_templates/{PACK_NAME}/{path.stem}.jpg")
        assert kind.startswith("image/jpeg") and thumbnail[:3] == b"\xff\xd8\xff"


def test_template_browser_lists_the_pack(comfy, server, browser):
    """The frontend's template dialog (Browse Templates) lists the pack under its folder name; choosing it shows each
    workflow with its thumbnail (the frontend fetches them as blobs: matched by their sizes)."""
    skip_unless_modern(comfy, "the modern frontend's template browser")
    from PIL import Image

    sizes = sorted(list(Image.open(path.with_suffix(".jpg")).size) for path in WORKFLOWS)
    browser.js("return app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    dialog_has = "return [...document.querySelectorAll('[role=dialog]')].some((d) => d.innerText.includes(arguments[0]))"
    try:
        browser.wait_for(dialog_has, PAGE_TIMEOUT, "the template dialog listing the pack", PACK_NAME)
        browser.js("[...document.querySelectorAll('[role=dialog] *')].find((e) => e.children.length === 0 "
                   "&& e.textContent.trim() === arguments[0]).click();", PACK_NAME)
        for path in WORKFLOWS:
            browser.wait_for(dialog_has, PAGE_TIMEOUT, f"the template {path.stem}", path.stem)
        # Frontends since 1.49 show the whole grid at once; 1.27 (ComfyUI 0.3.x) loads thumbnails as they scroll
        # into view, so there every one it loaded must be one of ours and none may fail.
        whole = browser.js(dialog_has, f"of {len(WORKFLOWS)} templates")
        shown = browser.wait_for(
            "const imgs = [...document.querySelectorAll('[role=dialog] img')];"
            "if (imgs.length !== arguments[0] || imgs.some((i) => i.src && i.complete && !i.naturalWidth)) return false;"
            "const loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0);"
            "return (arguments[1] ? loaded.length === imgs.length : loaded.length > 0)"
            " && loaded.map((i) => [i.naturalWidth, i.naturalHeight]);",
            PAGE_TIMEOUT, "the templates' thumbnails loaded", len(WORKFLOWS), whole)
        remaining = list(sizes)
        for size in shown:
            assert size in remaining, f"a thumbnail of {size} px is none of the pack's ({sizes})"
            remaining.remove(size)
        assert not whole or not remaining
    finally:
        browser.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));")
