"""The search view in a real browser: a real ComfyUI server with this pack, Debian's Chromium headless, real events.

Installs chromium + chromium-driver with apt-get when they are missing (skips, saying why, only when that is
impossible), bounds every wait, and stops every process it started (process groups) even when an assertion fails.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from web_view_support import (REPO, TINY, VIEW, add_graph_node, bfs_trace, dfs_trace, inject, load_workflow, local_trace,
                              panel_query, run_real_search, search_prompt, set_control, widget_value)

SCREENSHOT = REPO / "docs" / "images" / "search-view.png"

def test_live_bfs_search_is_drawn(server, browser, tmp_path):
    """A real BFS search through ComfyUI: every event reaches the view; particles, steps, tree and thumbnails drawn."""
    particles, steps = 4, 8
    # The same node id in the page's graph and in the queued prompt, as when the user presses Queue.
    search_id = str(add_graph_node(browser, "DiffusionSearchKSampler"))
    prompt_id, events = run_real_search(server, browser, search_prompt(
        TINY, "bfs", particles, steps,
        search_id=search_id), search_id)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "final", kinds
    start = events[0]
    assert (start["algorithm"], start["n_particles"], start["n_steps"], start["n_items"]) == ("bfs", particles, steps, 1)
    assert all(e["prompt_id"] == prompt_id and e["node"] == search_id for e in events)
    step_events = [e for e in events if e["type"] == "step"]
    assert len(step_events) == steps
    assert any(e["resampled"] for e in step_events), "resampling_steps=3 should resample at least once"

    counts = browser.js(f"{VIEW}.counts()")
    assert (counts["algorithm"], counts["particles"], counts["steps"], counts["finished"]) == ("bfs", particles, steps, True)
    assert len(panel_query(browser, "path.dsv-particle")) == particles
    tree = panel_query(browser, "svg.dsv-tree")[0]
    assert int(tree["data-nodes"]) == particles * steps
    assert int(tree["data-edges"]) == particles * (steps - 1)
    # The lineage of the selected particle runs through every step.
    assert len(panel_query(browser, "path.dsv-lineage")) == steps - 1
    ranks = panel_query(browser, "li.dsv-rank")
    assert len(ranks) == particles
    final = events[-1]
    assert [int(r["data-particle"]) for r in ranks] == final["order"][0]
    # One candidate thumbnail per particle, served by ComfyUI's /view, and they really load.
    thumbs = browser.wait_for("const t = [...document.querySelectorAll('#diffusion-search-view img.dsv-thumb')];"
                              "return t.length && t.every(i => i.complete && i.naturalWidth > 0) ? t.length : 0",
                              20, "candidate thumbnails")
    assert thumbs == particles
    # Tuning is bound to the node that ran: its widgets, with their current values.
    for name in ("particles", "lam", "resampling_steps"):
        shown = browser.js("return [...document.querySelectorAll('#diffusion-search-view input[data-widget=' +"
                           " arguments[0] + ']')].map(e => e.value)", name)
        assert len(shown) == 1 and float(shown[0]) == pytest.approx(
            float(widget_value(browser, int(search_id), name))), name
    # The prompt text never becomes markup.
    assert browser.js("return document.querySelectorAll('#diffusion-search-view img:not(.dsv-thumb):not(.dsv-pick-img)"
                      ":not(.dsv-hover-img):not(.dsv-lightbox-img)').length") == 0

    png = browser.driver.find_element("id", "diffusion-search-view").screenshot_as_png
    (tmp_path / "search-view-bfs.png").write_bytes(png)
    browser.driver.save_screenshot(str(tmp_path / "page-bfs.png"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


DIGITS = REPO / "worlds" / "digits" / "weights"


@pytest.mark.skipif(not os.environ.get("UPDATE_SCREENSHOTS"),
                    reason="on demand: refreshes docs/images/search-view.png (UPDATE_SCREENSHOTS=1), never in CI")
def test_readme_screenshot_from_the_digits_world(server, browser, tmp_path):
    """The README's picture: a real BFS run of the learned digits world (worlds/digits), guided by its classifier."""
    if not (DIGITS / "digits_unet_sd15.safetensors").is_file():
        pytest.skip("the digits world's weights are not in worlds/digits/weights")
    from worlds.digits.graphs import read_world
    read_world()   # writes the constructed VAE on first read (it is not in git)
    folders = {"unet": ["digits_unet_sd15.safetensors"], "vae": ["digits_taesd_vae.safetensors"],
               "classifiers": ["digits_guide_test_resnet.safetensors", "digits_labels.txt"]}
    for folder, names in folders.items():
        target = (server.models_dir if folder != "classifiers" else server.base / "comfyui_root" / "models") / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (target / name).exists():
                (target / name).symlink_to(DIGITS / name)
    search_id = str(add_graph_node(browser, "DiffusionSearchKSampler"))
    prompt = search_prompt({"unet": "digits_unet_sd15.safetensors", "vae": "digits_taesd_vae.safetensors"}, "bfs", 8,
                           16, seed=5, search_id=search_id)
    prompt["pos"] = {"class_type": "DiffusionSearchDigitsConditioning", "inputs": {"text": "a handwritten 8"}}
    prompt["neg"] = {"class_type": "DiffusionSearchDigitsConditioning", "inputs": {"text": ""}}
    prompt["verifier"] = {"class_type": "DiffusionSearchVerifierClassifier", "inputs": {
        "weights": "digits_guide_test_resnet.safetensors", "labels": "digits_labels.txt", "architecture": "test_resnet",
        "label": "from prompt", "input_size": 64, "normalisation": "inception", "device": "cpu", "dtype": "float32",
        "chunk_size": 32}}
    prompt[search_id]["inputs"].update(prompt="a handwritten 8", cfg=3.0, lam=30.0, resampling_steps=4)
    run_real_search(server, browser, prompt, search_id)
    browser.wait_for("const t = [...document.querySelectorAll('#diffusion-search-view img.dsv-thumb')];"
                     "return t.length === 8 && t.every(i => i.complete && i.naturalWidth > 0)", 20, "the candidates")
    browser.js("const p = document.getElementById('diffusion-search-view'); p.style.width = '600px'; p.scrollTop = 0;"
               "window.diffusionSearchView.panel.draw();")
    time.sleep(0.5)   # the resize observer's redraw at the new width
    png = browser.driver.find_element("id", "diffusion-search-view").screenshot_as_png
    (tmp_path / "search-view-digits.png").write_bytes(png)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(png)


def test_live_local_search_is_drawn(server, browser, tmp_path):
    """BFS with Langevin local search from step 2: each level's rewards before/after the Langevin steps are drawn."""
    particles, steps = 2, 4
    _, events = run_real_search(server, browser, search_prompt(TINY, "bfs", particles, steps, seed=7, local_from=2))
    levels = [e for e in events if e["type"] == "local"]
    assert [e["step"] for e in levels] == [2, 3]
    chart = panel_query(browser, "svg[data-chart=local]")[0]
    assert int(chart["data-levels"]) == len(levels)
    drawn_after = len(panel_query(browser, "circle.dsv-after"))
    assert drawn_after == sum(v is not None for e in levels for v in (e["reward_after"] or [[]])[0]) > 0
    drawn_before = len(panel_query(browser, "circle.dsv-before"))
    assert drawn_before == sum(v is not None for e in levels for v in (e["reward_before"] or [[]])[0]) > 0
    (tmp_path / "search-view-local.png").write_bytes(
        browser.driver.find_element("id", "diffusion-search-view").screenshot_as_png)


def test_live_dfs_search_marks_backtracks(server, browser, tmp_path):
    """A real DFS search with an unreachable δ: the view draws each dive, every backtrack and the NFE spent."""
    steps = 6
    _, events = run_real_search(server, browser, search_prompt(
        TINY, "dfs", 1, steps,
        delta=1e5, nfe_budget=2 * steps, seed=5))
    backtracks = [e for e in events if e["type"] == "backtrack"]
    dives = [e for e in events if e["type"] == "step"]
    assert backtracks, "δ = 1e5 is above any colourfulness score, so the dive must backtrack"
    counts = browser.js(f"{VIEW}.counts()")
    assert counts["algorithm"] == "dfs" and counts["finished"]
    assert counts["steps"] == len({e["step"] for e in dives})
    chart = panel_query(browser, "svg[data-chart=dfs]")[0]
    assert int(chart["data-backtracks"]) == len(backtracks)
    assert len(panel_query(browser, "g.dsv-backtrack")) == len(backtracks)
    assert int(chart["data-attempts"]) == len(panel_query(browser, "path.dsv-dive")) >= 2
    nfe_bar = panel_query(browser, "rect.dsv-nfe")
    assert len(nfe_bar) == 1 and float(nfe_bar[0]["height"]) > 0
    assert events[-1]["nfe"] == sum(events[-1]["nfe_per_item"]) >= steps
    (tmp_path / "search-view-dfs.png").write_bytes(
        browser.driver.find_element("id", "diffusion-search-view").screenshot_as_png)


def test_synthetic_traces_tuning_escaping_and_compare(browser, tmp_path):
    """Events shaped exactly as docs/design.md: multi-item BFS, DFS tuning into real widgets, local search,
    escaped text, save as a download and load back for comparison."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    hostile = '<img src=x onerror="window.__dsvXss=1">'
    bfs = bfs_trace(hostile, "synthetic-bfs", n_items=2, n=4, steps=6)
    inject(browser, bfs)
    counts = browser.js(f"{VIEW}.counts()")
    assert (counts["algorithm"], counts["particles"], counts["steps"]) == ("bfs", 4, 6)
    title = browser.js("return document.querySelector('#diffusion-search-view .dsv-heading').textContent")
    assert hostile in title
    assert browser.js("return window.__dsvXss === undefined && "
                      "!document.querySelector('#diffusion-search-view img[src=x]')")
    # Item 1 of the batch: its own lines and tree (the synthetic scores differ by 0.01 per item).
    set_control(browser, "select.dsv-item", "1")
    assert "item 1" in browser.js("return document.querySelector('#diffusion-search-view svg[data-chart=tree]')"
                                  ".textContent")
    tree = panel_query(browser, "svg.dsv-tree")[0]
    assert (int(tree["data-nodes"]), int(tree["data-edges"])) == (4 * 6, 4 * 5)
    # Resampling at steps 1 and 3 kills particle 0 and branches particle 3: two dead nodes, two branching ones.
    assert len(panel_query(browser, "circle.dsv-died")) == 2
    assert sum(1 for c in panel_query(browser, "circle.dsv-node") if c["data-children"] == "2") == 2
    set_control(browser, "select.dsv-item", "0")

    # DFS into a real DFS sampler node of the graph: sliders, combo and drag write its widgets.
    dfs_node = add_graph_node(browser, "DiffusionSearchDFSSampler")
    inject(browser, dfs_trace(str(dfs_node), "synthetic-dfs", delta=0.3))
    assert browser.js(f"{VIEW}.counts()")["algorithm"] == "dfs"
    assert int(panel_query(browser, "svg[data-chart=dfs]")[0]["data-backtracks"]) == 1
    assert not panel_query(browser, ".dsv-note")
    set_control(browser, "input[data-widget=delta]", "0.42")
    assert widget_value(browser, dfs_node, "delta") == pytest.approx(0.42)
    assert len(panel_query(browser, "path.dsv-threshold-preview")) == 1
    set_control(browser, "select[data-widget=delta_schedule]", "alpha_scaled")
    assert widget_value(browser, dfs_node, "delta_schedule") == "alpha_scaled"
    set_control(browser, "select[data-widget=delta_schedule]", "constant")
    set_control(browser, "input[data-widget=backtrack_steps]", "5")
    assert widget_value(browser, dfs_node, "backtrack_steps") == 5
    browser.wait_for("const p = window.diffusionSearchView.panel; return !p.pending && !p.interacting", 10,
                     "the redraw after the widget edits")
    handle = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view circle[data-handle=delta]")
    ActionChains(browser.driver).click_and_hold(handle).move_by_offset(0, -25).release().perform()
    dragged = widget_value(browser, dfs_node, "delta")
    assert dragged > 0.3 and dragged != pytest.approx(0.42), "dragging δ_t up must raise the node's delta"

    # Dragging a slider: live events meanwhile do not rebuild the panel under the pointer.
    browser.wait_for("const p = window.diffusionSearchView.panel; return !p.pending && !p.interacting", 10,
                     "the redraw after the handle drag")
    slider = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view input[type=range]")
    ActionChains(browser.driver).click_and_hold(slider).move_by_offset(40, 0).perform()
    browser.js("window.diffusionSearchView.inject(arguments[0])",   # no forced draw, unlike inject()
               dict(dfs_trace(str(dfs_node), "synthetic-dfs")[1], step=7))
    time.sleep(0.3)   # several frames: a redraw would have happened by now
    assert browser.js("return arguments[0].isConnected", slider), "a redraw replaced the slider being dragged"
    ActionChains(browser.driver).release().perform()
    assert widget_value(browser, dfs_node, "delta") != pytest.approx(dragged)

    # A node without the DFS widgets: the view lists what is missing instead of failing.
    other = add_graph_node(browser, "DiffusionSearchLocalSampler")
    inject(browser, dfs_trace(str(other), "synthetic-dfs-2", delta=0.3))
    notes = " ".join(n.get("class", "") for n in panel_query(browser, ".dsv-note"))
    assert notes and "delta" in browser.js("return document.querySelector('#diffusion-search-view .dsv-note')"
                                           ".textContent")

    inject(browser, local_trace("local-node", "synthetic-local"))
    local = panel_query(browser, "svg[data-chart=local]")[0]
    assert int(local["data-levels"]) == 4
    assert len(panel_query(browser, "circle.dsv-after")) == 4 * 3

    # Save the BFS run as a download, load it back as the comparison for a second run.
    browser.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.js("const v = window.diffusionSearchView; v.store.current = v.store.runs.get(arguments[0]); v.panel.draw();",
               f"synthetic-bfs/{hostile}")
    browser.driver.find_element(By.XPATH, "//div[@id='diffusion-search-view']//button[text()='Save JSON']").click()
    deadline = time.monotonic() + 20
    saved = []
    while time.monotonic() < deadline and not saved:
        saved = [p for p in tmp_path.glob("diffusion-search-*.json")]
        time.sleep(0.2)
    assert saved, "the Save JSON button produced no download"
    doc = json.loads(saved[0].read_text())
    assert doc["version"] == 1 and doc["events"] == bfs
    file_input = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view input.dsv-file")
    bad = tmp_path / "not-a-trace.json"
    bad.write_text('{"hello": 1}')
    file_input.send_keys(str(bad))
    browser.wait_for("return document.querySelector('#diffusion-search-view .dsv-error').textContent", 10,
                     "the load error")
    assert "events" in browser.js("return document.querySelector('#diffusion-search-view .dsv-error').textContent")
    file_input.send_keys(str(saved[0]))
    browser.wait_for("return document.querySelector('#diffusion-search-view').dataset.comparison", 10,
                     "the loaded comparison run")
    inject(browser, bfs_trace("second-run", "synthetic-bfs-2", n_items=1, n=4, steps=6))
    assert browser.js("return document.querySelector('#diffusion-search-view').dataset.comparison") == saved[0].name
    assert len(panel_query(browser, "svg[data-chart=bfs-scores] path.dsv-compare")) == 1
    status = browser.js("return document.querySelector('#diffusion-search-view .dsv-status').textContent")
    assert "compare" in status and saved[0].name in status


def test_threshold_preview_matches_search_core(server, browser):
    """The δ_t curve the view previews while tuning is the one search_core's DFS will use (both noise forms)."""
    import torch
    from search_core.config import DFSConfig
    from search_core.schedules import dfs_threshold

    url = f"{server.url}/extensions/comfyui_diffusion_search/search_dfs.js"
    script = ("const done = arguments[arguments.length - 1];"
              "import(arguments[0]).then(m => done(m.previewThreshold(arguments[1], arguments[2], arguments[3],"
              " arguments[4]).map(p => p[1])), e => done(String(e)));")
    for form, sigmas in (("eps", [14.6, 5.0, 1.2, 0.3, 0.03]), ("flow", [1.0, 0.75, 0.5, 0.1, 0.01])):
        curve = [[s, None, sigma] for s, sigma in enumerate(sigmas)]
        for schedule in ("constant", "alpha_scaled"):
            expected = dfs_threshold(DFSConfig(delta=-0.7, delta_schedule=schedule), torch.tensor(sigmas), form)
            got = browser.driver.execute_async_script(script, url, curve, schedule, -0.7, form)
            assert got == pytest.approx(expected.tolist(), rel=1e-5), (form, schedule, got)


def test_large_bfs_tree_is_thinned_but_keeps_the_lineage(browser):
    """64 particles × 80 steps: the tree keeps at most 3000 nodes (composing the parents of dropped steps) and the
    selected particle's lineage through the kept steps is exactly the one the ancestors give."""
    import random

    rng = random.Random(0)
    n, steps, resample_at = 64, 80, set(range(2, 80, 3))
    events = [{"type": "start", "algorithm": "bfs", "n_items": 1, "n_particles": n, "n_steps": steps,
               "sigmas": [float(steps - s) for s in range(steps + 1)], "noise_form": "eps", "config": {"lam": 10.0}}]
    parents = []
    for s in range(steps):
        anc = [rng.randrange(n) for _ in range(n)] if s in resample_at else None
        parents.append(anc or list(range(n)))
        events.append({"type": "step", "algorithm": "bfs", "step": s, "sigma": float(steps - s),
                       "scores": [[rng.random() for _ in range(n)]] if anc else [[None] * n],
                       "weights": None, "ess": [float(n)] if anc else None, "temperature": 10.0 if anc else None,
                       "resampled": anc is not None, "ancestors": [anc] if anc else None, "counts": None,
                       "nfe": (s + 1) * n})
    selected = 17
    events.append({"type": "final", "algorithm": "bfs", "rewards": [[0.5] * n], "order": [list(range(n))],
                   "selected": [selected], "nfe": steps * n, "nfe_per_item": [steps * n], "grad_evals": 0})
    inject(browser, [dict(e, node="big", prompt_id="synthetic-big") for e in events])

    tree = panel_query(browser, "svg.dsv-tree")[0]
    columns = int(tree["data-nodes"]) // n
    assert int(tree["data-nodes"]) <= 3000 and 2 <= columns < steps
    on_path = [(int(c["data-step"]), int(c["data-particle"])) for c in panel_query(browser, "circle.dsv-node")
               if c.get("stroke") == "#fd4"]
    assert len(on_path) == columns
    expected, p = {steps - 1: selected}, selected
    for s in range(steps - 1, 0, -1):
        p = parents[s - 1][p]
        expected[s - 1] = p
    assert all(expected[s] == particle for s, particle in on_path), on_path


def test_example_workflows_fit_their_boxes_in_this_frontend(browser):
    """Each example workflow, loaded in the real frontend: every node's box holds what the frontend needs to draw its
    widgets (computeSize), and no box overlaps another, so no node hides another."""
    from test_workflows import node_boxes, overlapping

    for path in sorted((REPO / "example_workflows").glob("*.json")):
        types = sorted({node["type"] for node in json.loads(path.read_text())["nodes"]})
        if not browser.js("return arguments[0].every(t => t in LiteGraph.registered_node_types)", types):
            continue   # a video workflow on the 2024 snapshot, which has no Wan nodes
        load_workflow(browser, path.name)
        nodes = browser.js("return app.graph._nodes.map(n => ({id: n.id, pos: [n.pos[0], n.pos[1]], "
                           "size: [n.size[0], n.size[1]], need: n.computeSize()}))")
        small = [(n["id"], n["size"], n["need"]) for n in nodes
                 if n["need"][0] > n["size"][0] + 1 or n["need"][1] > n["size"][1] + 1]
        assert small == [], f"{path.name}: nodes smaller than their widgets"
        assert overlapping(node_boxes({"nodes": nodes})) == [], path.name
