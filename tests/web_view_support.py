"""Shared by the browser tests of the search view: one real ComfyUI server and one headless Chromium per test session
(conftest.py imports the fixtures), traces shaped exactly as docs/design.md ("Trace events"), and page helpers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfy_harness import write_tiny_models
from comfy_server import Browser, ComfyServer, ensure_chromium

REPO = Path(__file__).resolve().parents[1]
PAGE_TIMEOUT = 60
RUN_TIMEOUT = 180
TINY = {"unet": "tiny_sd15_unet.safetensors", "vae": "tiny_taesd_vae.safetensors"}


@pytest.fixture(scope="session")
def chromium():
    """(chromium, chromedriver) paths; resolved before the server starts so a skip costs nothing."""
    pytest.importorskip("selenium.webdriver", reason="selenium is a test dependency: ./run setup")
    found = ensure_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def server(chromium, tmp_path_factory):
    """A real ComfyUI server with this pack, shared by every browser test of the session."""
    base = tmp_path_factory.mktemp("web_server")
    write_tiny_models(base / "models")
    srv = ComfyServer(base, base / "models")
    with srv:
        yield srv


@pytest.fixture(scope="session")
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
def bfs_trace(node, prompt_id, n_items=2, n=4, steps=6, resample_at=(1, 3), lam=10.0, preset="<b>bfs</b>", node_type=None):
    """A BFS run: scores rise, resampling at `resample_at` copies the best particle into the worst slot."""
    events = [{"type": "start", "algorithm": "bfs", "n_items": n_items, "n_particles": n, "n_steps": steps,
               "sigmas": [round(10 - 10 * s / steps, 3) for s in range(steps + 1)], "noise_form": "eps",
               "config": {"preset": preset, "lam": lam, "temperature": "increase_exp"},
               "verifiers": {"guide": "colourfulness", "select": None}, "seed": 3}]
    nfe = 0
    for s in range(steps):
        nfe += n_items * n
        scores = [[round(0.1 * s + 0.05 * p + 0.01 * b, 4) for p in range(n)] for b in range(n_items)]
        resampled = s in resample_at
        ancestors = [[n - 1 if p == 0 else p for p in range(n)] for _ in range(n_items)] if resampled else None
        counts = [[0] + [1] * (n - 2) + [2] for _ in range(n_items)] if resampled else None
        events.append({"type": "step", "algorithm": "bfs", "step": s, "sigma": 10 - 10 * s / steps,
                       "scores": scores, "weights": [[1.0 / n] * n for _ in range(n_items)],
                       "ess": [n - 0.5 * (s % 2)] * n_items, "temperature": lam * s / steps,
                       "resampled": resampled, "ancestors": ancestors, "counts": counts, "nfe": nfe})
    rewards = [[0.5 + 0.05 * p for p in range(n)] for _ in range(n_items)]
    order = [list(range(n - 1, -1, -1)) for _ in range(n_items)]
    events.append({"type": "final", "algorithm": "bfs", "rewards": rewards, "order": order,
                   "selected": [n - 1] * n_items, "nfe": nfe, "nfe_per_item": [nfe // n_items] * n_items,
                   "grad_evals": 0})
    tags = {"node": node, "prompt_id": prompt_id, **({"node_type": node_type} if node_type else {})}
    return [dict(e, **tags) for e in events]


def dfs_trace(node, prompt_id, steps=8, delta=0.3, nfe_budget=None, node_type=None):
    """A DFS run on one item: the dive falls below δ at step 4, backtracks to step 1, then completes."""
    events = [{"type": "start", "algorithm": "dfs", "n_items": 1, "n_particles": 1, "n_steps": steps,
               "sigmas": [round(8 - s, 3) for s in range(steps + 1)], "noise_form": "eps",
               "config": {"delta": delta, "delta_schedule": "constant", "backtrack_steps": 3, "nfe_budget": nfe_budget,
                          "check_from": 1}}]
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
    tags = {"node": node, "prompt_id": prompt_id, **({"node_type": node_type} if node_type else {})}
    return [dict(e, **tags) for e in events]


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
    browser.js("const v = window.diffusionSearchView; v.store.current = v.store.runs.get(arguments[0]);", key)
    open_view(browser)
    events = browser.js("return window.diffusionSearchView.store.runs.get(arguments[0]).events", key)
    return prompt_id, events


def open_view(browser, timeout=10):
    """Opens the search view wherever this frontend hosts it (its sidebar tab, or the floating panel), as the node
    menu's "Show search view" does, and waits until it is on screen and drawn."""
    browser.js(f"{VIEW}.open()")
    browser.wait_for(f"{VIEW}.isOpen()", timeout, f"the search view open in its host ({browser.js(f'{VIEW}.host')})")
    browser.js("window.diffusionSearchView.panel.draw();")


def host_kind(browser):
    """Where this frontend hosts the view: "sidebar" or "floating"."""
    return browser.js(f"{VIEW}.host")


def skip_unless_modern_ui(what):
    """Skip, with the reason CI accepts in its 2024 pass, unless the server runs modern ComfyUI (and its frontend)."""
    from comfy_harness import MODERN_ONLY, comfyui_root, is_modern

    if not is_modern(comfyui_root()):
        pytest.skip(f"{MODERN_ONLY}: {what} is the modern frontend's (CI runs it in its modern pass)")


def panel_query(browser, selector):
    return browser.js("return [...document.querySelectorAll('#diffusion-search-view ' + arguments[0])]"
                      ".map(e => Object.fromEntries([...e.attributes].map(a => [a.name, a.value])))", selector)


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


def load_workflow(browser, name):
    """Loads example_workflows/<name> into the page's graph as the user would (app.loadGraphData)."""
    graph = json.loads((REPO / "example_workflows" / name).read_text())
    browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.resolve(app.loadGraphData(arguments[0])).then(() => done(true), e => done(String(e)));", graph)


def panel_text(browser, selector):
    return browser.js("const e = document.querySelector('#diffusion-search-view ' + arguments[0]);"
                      "return e && !e.closest('[hidden]') ? e.textContent : null", selector)


def path_points(d):
    """The vertices of an SVG path `d` made of M/L commands, as (x, y) floats."""
    import re
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", d)]


def settled(browser, action, tries=5):
    """Runs action() once the panel has no redraw pending; again if a late redraw made its element stale.

    The view redraws asynchronously (live events, images arriving, panel resizes), so an element looked up just
    before a redraw is gone by the time the driver acts on it. action must look its elements up itself."""
    import time

    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(tries):
        browser.wait_for("const p = window.diffusionSearchView.panel; return !p.pending && !p.interacting", 10,
                         "the panel's pending redraw")
        try:
            return action()
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
            time.sleep(0.3)
