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

from comfy_harness import write_tiny_models
from comfy_server import Browser, ComfyServer, ensure_chromium

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "images" / "search-view.png"
PAGE_TIMEOUT = 60
RUN_TIMEOUT = 180
TINY = {"unet": "tiny_sd15_unet.safetensors", "vae": "tiny_taesd_vae.safetensors"}


@pytest.fixture(scope="module")
def chromium():
    """(chromium, chromedriver) paths; resolved before the server starts so a skip costs nothing."""
    pytest.importorskip("selenium.webdriver", reason="selenium is a test dependency: ./run setup")
    found = ensure_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory):
    base = tmp_path_factory.mktemp("web_server")
    write_tiny_models(base / "models")
    srv = ComfyServer(base, base / "models")
    with srv:
        yield srv


@pytest.fixture(scope="module")
def browser(server, chromium, tmp_path_factory):
    # Modern frontend: a finished tutorial means no template dialog over the canvas (harmless in the 2024 UI).
    try:
        server.post_json("/settings", {"Comfy.TutorialCompleted": True})
    except OSError:  # a server without the settings route has no tutorial either
        pass
    b = Browser(tmp_path_factory.mktemp("chromium_profile"), *chromium, page_timeout=PAGE_TIMEOUT)
    try:
        b.driver.get(server.url)
        b.wait_for("return !!(window.diffusionSearchView && window.app && window.app.graph)", PAGE_TIMEOUT,
                   "the ComfyUI page and the search view extension")
        yield b
    finally:
        b.quit()


# -- synthetic traces that follow docs/design.md ("Trace events") exactly -----------------------------------------
def bfs_trace(node, prompt_id, n_items=2, n=4, steps=6, resample_at=(1, 3)):
    """A BFS run: scores rise, resampling at `resample_at` copies the best particle into the worst slot."""
    events = [{"type": "start", "algorithm": "bfs", "n_items": n_items, "n_particles": n, "n_steps": steps,
               "sigmas": [round(10 - 10 * s / steps, 3) for s in range(steps + 1)], "noise_form": "eps",
               "config": {"preset": "<b>bfs</b>", "lam": 10.0, "temperature": "increase_exp"}}]
    nfe = 0
    for s in range(steps):
        nfe += n_items * n
        scores = [[round(0.1 * s + 0.05 * p + 0.01 * b, 4) for p in range(n)] for b in range(n_items)]
        resampled = s in resample_at
        ancestors = [[n - 1 if p == 0 else p for p in range(n)] for _ in range(n_items)] if resampled else None
        counts = [[0] + [1] * (n - 2) + [2] for _ in range(n_items)] if resampled else None
        events.append({"type": "step", "algorithm": "bfs", "step": s, "sigma": 10 - 10 * s / steps,
                       "scores": scores, "weights": [[1.0 / n] * n for _ in range(n_items)],
                       "ess": [n - 0.5 * (s % 2)] * n_items, "temperature": 10.0 * s / steps,
                       "resampled": resampled, "ancestors": ancestors, "counts": counts, "nfe": nfe})
    rewards = [[0.5 + 0.05 * p for p in range(n)] for _ in range(n_items)]
    order = [list(range(n - 1, -1, -1)) for _ in range(n_items)]
    events.append({"type": "final", "algorithm": "bfs", "rewards": rewards, "order": order,
                   "selected": [n - 1] * n_items, "nfe": nfe, "nfe_per_item": [nfe // n_items] * n_items,
                   "grad_evals": 0})
    return [dict(e, node=node, prompt_id=prompt_id) for e in events]


def dfs_trace(node, prompt_id, steps=8, delta=0.3):
    """A DFS run on one item: the dive falls below δ at step 4, backtracks to step 1, then completes."""
    events = [{"type": "start", "algorithm": "dfs", "n_items": 1, "n_particles": 1, "n_steps": steps,
               "sigmas": [round(8 - s, 3) for s in range(steps + 1)], "noise_form": "eps",
               "config": {"delta": delta, "delta_schedule": "constant", "backtrack_steps": 3}}]
    nfe = 0
    path = list(range(0, 5)) + list(range(1, steps))
    for k, s in enumerate(path):
        nfe += 1
        score = 0.1 * s if k < 5 else 0.35 + 0.05 * s
        events.append({"type": "step", "algorithm": "dfs", "step": s, "sigma": 8.0 - s, "item": 0, "score": score,
                       "threshold": delta, "nfe": nfe})
        if k == 4:
            events.append({"type": "backtrack", "algorithm": "dfs", "item": 0, "step_from": 4, "step_to": 1,
                           "score": score, "threshold": delta, "nfe": nfe})
    events.append({"type": "final", "algorithm": "dfs", "rewards": [[0.7]], "order": [[0]], "selected": [0],
                   "nfe": nfe, "nfe_per_item": [nfe], "grad_evals": 0})
    return [dict(e, node=node, prompt_id=prompt_id) for e in events]


def search_prompt(tiny_names, search="bfs", particles=3, steps=6, delta=0.0, nfe_budget=0, seed=3, search_id="search",
                  local_from=None):
    """API-format workflow: tiny model -> DiffusionSearchKSampler (id `search_id`) -> decoded ranked candidates ->
    PreviewImage; with `local_from`, Langevin local search (x0 gradients) from that step on."""
    prompt = {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": tiny_names["unet"], "weight_dtype": "default"}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": tiny_names["vae"]}},
        "pos": {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": seed, "text": "a red apple"}},
        "neg": {"class_type": "DiffusionSearchTestConditioning", "inputs": {"seed": seed + 1, "text": ""}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "verifier": {"class_type": "DiffusionSearchVerifierColourfulness",
                     "inputs": {"device": "cpu", "dtype": "float32", "chunk_size": 8}},
        search_id: {"class_type": "DiffusionSearchKSampler", "inputs": {
            "model": ["unet", 0], "seed": seed, "steps": steps, "cfg": 2.0, "scheduler": "normal",
            "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0,
            "vae": ["vae", 0], "verifier": ["verifier", 0], "prompt": "a red apple <img src=x onerror=alert(1)>",
            "search": search, "particles": particles, "lam": 10.0, "resampling_steps": 3, "delta": delta,
            "backtrack_steps": 2, "nfe_budget": nfe_budget, "score_size": 0, "chunk_size": 8}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": [search_id, 1], "vae": ["vae", 0]}},
        "preview": {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]}},
    }
    if local_from is not None:
        prompt["local"] = {"class_type": "DiffusionSearchLocalSearchSettings", "inputs": {
            "gradient_mode": "x0", "langevin_steps": 1, "recur_steps": 1, "mu": 0.05, "rho": 0.2,
            "start_step": local_from, "grad_clip": 0.0}}
        prompt[search_id]["inputs"]["local_search"] = ["local", 0]
    return prompt


VIEW = "return window.diffusionSearchView"


def run_real_search(server, browser, prompt, search_id="search"):
    """Queues `prompt` for this page's client id; waits for the run's final event and its output images."""
    client_id = browser.js(f"{VIEW}.clientId()")
    assert client_id, "the page has no websocket client id yet"
    prompt_id = server.queue_prompt(prompt, client_id=client_id)
    server.wait_history(prompt_id, timeout=RUN_TIMEOUT)
    key = f"{prompt_id}/{search_id}"
    browser.wait_for(f"const r = window.diffusionSearchView.store.runs.get(arguments[0]); "
                     f"return !!(r && r.finished && r.imageSets.size)", 30, "the run's final event and images", key)
    browser.js(f"const v = window.diffusionSearchView; v.store.current = v.store.runs.get(arguments[0]); "
               f"v.panel.show(); v.panel.draw();", key)
    events = browser.js("return window.diffusionSearchView.store.runs.get(arguments[0]).events", key)
    return prompt_id, events


def panel_query(browser, selector):
    return browser.js("return [...document.querySelectorAll('#diffusion-search-view ' + arguments[0])]"
                      ".map(e => Object.fromEntries([...e.attributes].map(a => [a.name, a.value])))", selector)


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
    if os.environ.get("UPDATE_SCREENSHOTS"):  # refresh the README's picture on demand, never as a side effect of CI
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


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


def local_trace(node, prompt_id, n=3, levels=4):
    """Local search alone: each level's Langevin steps raise every particle's reward by 0.1."""
    events = [{"type": "start", "algorithm": "local", "n_items": 1, "n_particles": n, "n_steps": levels,
               "sigmas": [float(levels - s) for s in range(levels + 1)], "noise_form": "eps", "config": {}}]
    for s in range(levels):
        before = [[0.2 * s + 0.01 * p for p in range(n)]]
        events.append({"type": "local", "algorithm": "local", "step": s, "sigma": float(levels - s),
                       "reward_before": before, "reward_after": [[v + 0.1 for v in before[0]]],
                       "langevin_steps": 2, "nfe": (s + 1) * n, "grad_evals": 2 * (s + 1) * n})
    events.append({"type": "final", "algorithm": "local", "rewards": [[0.9, 0.8, 0.7]], "order": [[0, 1, 2]],
                   "selected": [0], "nfe": levels * n, "nfe_per_item": [levels * n], "grad_evals": 2 * levels * n})
    return [dict(e, node=node, prompt_id=prompt_id) for e in events]


def inject(browser, events):
    browser.js("for (const e of arguments[0]) window.diffusionSearchView.inject(e);"
               "window.diffusionSearchView.panel.draw();", events)


def add_graph_node(browser, node_type):
    return browser.js("const n = LiteGraph.createNode(arguments[0]); app.graph.add(n); return n.id;", node_type)


def widget_value(browser, node_id, name):
    return browser.js("const n = app.graph.getNodeById(arguments[0]);"
                      "return n.widgets.find(w => w.name === arguments[1]).value;", node_id, name)


def set_control(browser, selector, value):
    browser.js("const el = document.querySelector('#diffusion-search-view ' + arguments[0]); el.value = arguments[1];"
               "el.dispatchEvent(new Event('change'));", selector, value)
    browser.js("window.diffusionSearchView.panel.draw();")


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
