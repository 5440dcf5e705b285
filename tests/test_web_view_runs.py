"""Runs in the search view, in a real browser (issue 11): loaded traces are validated (bug 3), the result comes first
(pick, candidates, why, settings, enlarge, hover previews), every run is kept (picker, browser storage across a
reload, clear) and compared (previous run of the node, presets side by side), and Escape closes the panel.
Fixtures: tests/web_view_support.py (one server and one browser per session)."""
from __future__ import annotations

import json
import time

import pytest

from web_view_support import (TINY, VIEW, add_graph_node, bfs_trace, dfs_trace, inject, open_view, panel_query,
                              panel_text, path_points, run_real_search, search_prompt, settled)

ROOT = "document.getElementById('diffusion-search-view')"


@pytest.fixture(autouse=True)
def no_loaded_comparison(browser):
    """Tests of other modules may have loaded a trace to compare with (one browser per session): drop it."""
    browser.js("window.diffusionSearchView.store.clearComparison()")


def load_file(browser, path):
    from selenium.webdriver.common.by import By

    browser.js(f"{ROOT}.querySelector('.dsv-error').textContent = ''")
    browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view input.dsv-file").send_keys(str(path))


def test_malformed_traces_are_refused_with_what_is_wrong(browser, tmp_path):
    """Bug 3: counts that do not fit the events (1e8 particles, 1e7 items, -3 items, lists of the wrong size, parent
    indices out of range) are refused within a second with what is wrong; the tab stays responsive and the next live
    run is drawn as usual."""
    good = bfs_trace("valid", "p-valid", n_items=1, n=4, steps=4)
    start = good[0]

    def doc(events):
        return {"version": 1, "events": events}

    cases = {
        "particles-1e8.json": (doc([dict(start, n_particles=1e8)] + good[1:]), "n_particles"),
        "items-1e7.json": (doc([dict(start, n_items=10_000_000)] + good[1:]), "n_items"),
        "items-negative.json": (doc([dict(start, n_items=-3)] + good[1:]), "n_items"),
        "scores-short.json": (doc(good[:2] + [dict(good[2], scores=[[0.1, 0.2]])] + good[3:]), "scores[0]"),
        "parents-out.json": (doc(good[:2] + [dict(good[2], resampled=True, ancestors=[[0, 1, 9, 3]])] + good[3:]),
                             "ancestors[0][2]"),
        "no-start.json": (doc(good[1:]), '"start"'),
        # -1 marks an empty slot of a pruned beam (docs/design.md); nothing below it is a particle
        "parents-minus2.json": (doc(good[:2] + [dict(good[2], resampled=True, ancestors=[[0, 1, -2, 3]])] + good[3:]),
                                "ancestors[0][2]"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(content))
        began = time.monotonic()
        load_file(browser, path)
        error = browser.wait_for(f"return {ROOT}.querySelector('.dsv-error').textContent", 10, f"the error for {name}")
        assert time.monotonic() - began < 5, name
        assert name in error and expected in error, (name, error)
        assert browser.js(f"return {ROOT}.dataset.comparison") in (None, "", "previous"), "a bad file became the comparison"
    # The tiny 197-byte file of the issue, as it was reported.
    tiny = tmp_path / "tiny.json"
    tiny.write_text('{"version":1,"events":[{"type":"start","algorithm":"bfs","n_items":1,"n_particles":1e8,'
                    '"n_steps":4,"config":{}},{"type":"final","algorithm":"bfs","rewards":[[1]],"order":[[0]],'
                    '"selected":[0],"nfe":4}]}')
    load_file(browser, tiny)
    assert "n_particles" in browser.wait_for(f"return {ROOT}.querySelector('.dsv-error').textContent", 10, "error")
    inject(browser, bfs_trace("after-bad", "p-after-bad", n_items=1, n=4, steps=6))
    counts = browser.js(f"{VIEW}.counts()")
    assert (counts["algorithm"], counts["particles"], counts["steps"]) == ("bfs", 4, 6)
    assert not panel_query(browser, ".dsv-charts .dsv-error")


def test_result_first_with_enlarge_hover_previews_and_escape(server, browser):
    """A real BFS run: the pick and every candidate lead the panel, with why it won and the settings used; clicking
    a candidate enlarges it; hovering a particle's line or a tree node shows that particle's image; Escape closes."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    search_id = str(add_graph_node(browser, "DiffusionSearchKSampler"))
    _, events = run_real_search(server, browser, search_prompt(TINY, "bfs", 4, 6, search_id=search_id), search_id)
    final = events[-1]
    assert browser.js(f"return {ROOT}.querySelector('.dsv-body').firstElementChild.className") == "dsv-result-box"
    assert panel_text(browser, ".dsv-heading").startswith("BFS")
    title = panel_text(browser, ".dsv-pick-title")
    assert f"particle {final['selected'][0]}" in title and "#1 of 4" in title
    why = panel_text(browser, ".dsv-why")
    assert "colourfulness" in why and "rule: best" in why
    settings = {c["data-setting"] for c in panel_query(browser, ".dsv-setting")}
    assert {"search", "particles", "steps", "λ", "resampling", "verifier", "seed"} <= settings
    assert "particles 4" in panel_text(browser, "[data-setting=particles]")
    tiles = browser.wait_for("const t = [...document.querySelectorAll('#diffusion-search-view .dsv-grid img')];"
                             "return t.length && t.every(i => i.complete && i.naturalWidth > 0) ? t.length : 0",
                             20, "candidate images")
    assert tiles == 4
    src = {int(li["data-particle"]): browser.js(
        "return document.querySelector('#diffusion-search-view .dsv-grid li[data-particle=\"' + arguments[0] + '\"] img').src",
        li["data-particle"]) for li in panel_query(browser, ".dsv-grid li")}
    assert browser.js(f"return {ROOT}.querySelector('.dsv-pick-img').src") == src[final["selected"][0]]

    def click_second_tile():
        thumb = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view .dsv-grid li:nth-child(2) img")
        thumb_src = thumb.get_attribute("src")
        thumb.click()
        return thumb_src

    thumb_src = settled(browser, click_second_tile)
    assert browser.js(f"return !{ROOT}.querySelector('.dsv-lightbox').hidden")
    assert browser.js(f"return {ROOT}.querySelector('.dsv-lightbox img').src") == thumb_src
    ActionChains(browser.driver).send_keys(Keys.ESCAPE).perform()
    assert browser.js(f"return {ROOT}.querySelector('.dsv-lightbox').hidden && !{ROOT}.hidden")

    # Hover the end of a particle's line (its final reward): that particle's image.
    particle = final["order"][0][-1]
    def hover_line_end():
        svg = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view svg[data-chart=bfs-scores]")
        browser.js("arguments[0].scrollIntoView({block: 'center'})", svg)
        hit = [h for h in panel_query(browser, "path.dsv-hit") if int(h["data-particle"]) == particle][0]
        x, y = path_points(hit["d"])[-1]
        w, h = float(svg.get_attribute("width")), float(svg.get_attribute("height"))
        ActionChains(browser.driver).move_to_element_with_offset(svg, int(x - w / 2), int(y - h / 2)).perform()

    settled(browser, hover_line_end)
    card = browser.wait_for(f"const c = {ROOT}.querySelector('.dsv-hover'); return !c.hidden && c.dataset.particle", 5,
                            "the hover card")
    assert int(card) == particle
    assert browser.js(f"return {ROOT}.querySelector('.dsv-hover-img').src") == src[particle]
    # Hover a node of the tree's last column: the image of that particle.
    def hover_tree_node():
        node = browser.driver.find_element(
            By.CSS_SELECTOR, f"#diffusion-search-view circle.dsv-node[data-step='5'][data-particle='{particle}']")
        browser.js("arguments[0].scrollIntoView({block: 'center'})", node)
        ActionChains(browser.driver).move_to_element(node).perform()

    settled(browser, hover_tree_node)
    browser.wait_for(f"return {ROOT}.querySelector('.dsv-hover-text').textContent.startsWith('step 5')", 5, "tree hover")
    assert browser.js(f"return {ROOT}.querySelector('.dsv-hover-img').src") == src[particle]

    ActionChains(browser.driver).send_keys(Keys.ESCAPE).perform()
    assert browser.js(f"return {ROOT}.hidden")
    open_view(browser)


def test_two_search_nodes_picker_side_by_side_and_best_of_n_strip(server, browser, tmp_path):
    """One prompt with two search nodes (BFS and Best-of-N): both runs are in the picker, shown side by side; the
    Best-of-N run draws its final-reward strip instead of empty step charts."""
    prompt = search_prompt(TINY, "bfs", 3, 4, search_id="s1", seed=11)
    second = search_prompt(TINY, "best_of_n", 3, 4, search_id="s2", seed=11)
    prompt.update({"s2": second["s2"], "decode2": dict(second["decode"], inputs={"samples": ["s2", 1], "vae": ["vae", 0]}),
                   "preview2": {"class_type": "PreviewImage", "inputs": {"images": ["decode2", 0]}}})
    prompt_id, _ = run_real_search(server, browser, prompt, "s1")
    # Each run keeps only the images downstream of its own node (read from the prompt in ComfyUI's history).
    browser.wait_for(f"const s = window.diffusionSearchView.store.runs; const a = s.get('{prompt_id}/s1'), "
                     f"b = s.get('{prompt_id}/s2'); return a && b && b.finished && a.imageSets.size === 1 && "
                     f"b.imageSets.size === 1 && a.imageSets.has('preview') && b.imageSets.has('preview2')", 30,
                     "each run's own candidate images")
    browser.js(f"window.diffusionSearchView.store.show('{prompt_id}/s1'); window.diffusionSearchView.panel.draw();")
    options = browser.js(f"return [...{ROOT}.querySelectorAll('select.dsv-runs option')].map(o => o.value)")
    assert f"{prompt_id}/s1" in options and f"{prompt_id}/s2" in options
    side = panel_query(browser, ".dsv-side-by-side")[0]
    assert side["data-runs"] == "2"
    names = browser.js(f"return [...{ROOT}.querySelectorAll('.dsv-sbs-name')].map(e => e.textContent)")
    assert any(n.startswith("BFS") for n in names) and any(n.startswith("Best-of-N") for n in names)
    (tmp_path / "side-by-side.png").write_bytes(browser.driver.find_element("id", "diffusion-search-view").screenshot_as_png)
    browser.js(f"const s = {ROOT}.querySelector('select.dsv-runs'); s.value = arguments[0];"
               "s.dispatchEvent(new Event('change')); window.diffusionSearchView.panel.draw();", f"{prompt_id}/s2")
    assert panel_text(browser, ".dsv-heading").startswith("Best-of-N")
    strip = panel_query(browser, "svg[data-chart=reward-strip]")[0]
    assert strip["data-particles"] == "3" and len(panel_query(browser, "circle.dsv-selected-dot")) == 1
    assert not panel_query(browser, "svg[data-chart=bfs-scores]") and not panel_query(browser, "svg.dsv-tree")
    (tmp_path / "best-of-n.png").write_bytes(browser.driver.find_element("id", "diffusion-search-view").screenshot_as_png)


def test_previous_run_is_compared_and_runs_survive_a_reload(browser):
    """Two runs of one node: the second is compared with the first (what changed, reward and NFE differences); the
    runs come back after a page reload (bounded browser storage), and Clear runs forgets them."""
    node = str(add_graph_node(browser, "DiffusionSearchBFSSampler"))
    inject(browser, bfs_trace(node, "p-first", n_items=1, n=4, steps=6, lam=10.0))
    inject(browser, bfs_trace(node, "p-second", n_items=1, n=8, steps=6, lam=11.5))
    line = panel_text(browser, ".dsv-compare-line")
    assert "vs previous run of this node" in line and "particles 4 → 8" in line and "λ 10 → 11.5" in line
    assert "NFE 24 → 48 (+24)" in line and "best reward 0.65 → 0.85 (+0.2)" in line
    assert browser.js(f"return {ROOT}.dataset.comparison") == "previous"
    inject(browser, dfs_trace("elsewhere", "p-dfs", delta=0.7, nfe_budget=12))
    assert "budget spent (12 of 12 NFE): the last dive was kept below δ" in panel_text(browser, ".dsv-budget-note")
    assert len(panel_query(browser, "line.dsv-budget")) == 1
    assert len(panel_query(browser, "path.dsv-first-dive")) == 1 and len(panel_query(browser, "path.dsv-retry")) == 1
    assert "1 backtrack" in browser.js("return document.querySelector('#diffusion-search-view svg[data-chart=dfs] .dsv-title').textContent")

    kept = browser.js(f"{VIEW}.saveNow()")
    stored = browser.js("return localStorage.getItem('diffusion_search.runs.v1')")
    assert kept >= 3 and len(stored) <= 1_500_000
    keys = set(browser.js("return [...window.diffusionSearchView.store.runs.keys()]"))
    browser.driver.refresh()
    browser.wait_for("return !!(window.diffusionSearchView && window.app && window.app.graph)", 60, "the page again")
    restored = set(browser.js("return [...window.diffusionSearchView.store.runs.keys()]"))
    assert {f"p-first/{node}", f"p-second/{node}", "p-dfs/elsewhere"} <= restored <= keys
    browser.js("window.diffusionSearchView.store.show(arguments[0]);", f"p-second/{node}")
    open_view(browser)
    assert "particles 4 → 8" in panel_text(browser, ".dsv-compare-line")
    browser.js(f"{ROOT}.querySelector('[data-action=clear-runs]').click()")
    assert browser.js("return window.diffusionSearchView.store.runs.size") == 0
    assert browser.js("return localStorage.getItem('diffusion_search.runs.v1')") is None


def test_storage_is_bounded_and_charts_follow_the_panel_width(server, browser):
    """Browser storage keeps at most 30 runs and 1.5 MB (a run too large for a third of it is not kept); the charts
    are redrawn at the panel's width when it is resized."""
    script = """
const done = arguments[arguments.length - 1];
const base = arguments[0] + '/extensions/comfyui_diffusion_search/';
Promise.all([import(base + 'search_history.js'), import(base + 'search_store.js')]).then(([h, s]) => {
  const start = {type: 'start', algorithm: 'bfs', n_items: 1, n_particles: 2, n_steps: 1, config: {}};
  const final = {type: 'final', algorithm: 'bfs', rewards: [[0.1, 0.2]], order: [[1, 0]], selected: [1], nfe: 2};
  const runs = new Map();
  for (let k = 0; k < 40; k++) runs.set('small' + k, s.runFromTrace({events: [start, final]}, 'small' + k, 'live'));
  const big = s.runFromTrace({events: [start, {type: 'note', text: 'x'.repeat(600000)}, final]}, 'big', 'live');
  runs.set('big', big);
  const kept = {};
  const storage = {setItem: (k, v) => { kept[k] = v; }, removeItem: (k) => { delete kept[k]; }, getItem: (k) => kept[k] ?? null};
  const n = h.saveRuns({runs}, storage);
  const back = h.loadRuns(storage).map((r) => r.key);
  done({n, size: kept[h.STORAGE_KEY].length, back});
}, (e) => done(String(e)));
"""
    result = browser.driver.execute_async_script(script, server.url)
    assert result["n"] == 30 and len(result["back"]) == 30 and "big" not in result["back"]
    assert result["back"] == [f"small{k}" for k in range(10, 40)] and result["size"] <= 1_500_000

    inject(browser, bfs_trace("wide", "p-wide", n_items=1, n=4, steps=6))
    narrow = float(panel_query(browser, "svg[data-chart=bfs-scores]")[0]["width"])
    browser.js(f"{ROOT}.style.width = '760px'")
    browser.wait_for("return Number(document.querySelector('#diffusion-search-view svg[data-chart=bfs-scores]')"
                     ".getAttribute('width')) > arguments[0] + 150", 5, "the charts at the new width", narrow)
    browser.js(f"{ROOT}.style.width = ''")


def test_pruned_beam_trace_is_drawn_with_empty_slots(browser):
    """Seed pruning (issue 19) from the real sampler: 8 slots pruned to 4 and then 2 (ancestors -1 = empty slot); the
    view draws it, and its tree has an edge only into the occupied slots."""
    import torch

    from search_core import Trace, get_preset, sample_bfs
    from search_core.testbed import LinearReward, standard_mixture

    sigmas = torch.linspace(6.0, 0.0, 9)
    res = Trace()
    sample_bfs(standard_mixture().denoiser("eps"), torch.randn(1, 2, generator=torch.Generator().manual_seed(0)) * 6,
               sigmas, score_fn=LinearReward([0.0, 1.0]), generator=torch.Generator().manual_seed(1), n_particles=4,
               config=get_preset("seed_pruning"), trace=res)
    events = [dict(e, node="pruned", prompt_id="p-pruned") for e in res.events]
    assert any(-1 in e.get("ancestors", [[]])[0] for e in events if e["type"] == "step")
    inject(browser, events)
    counts = browser.js(f"{VIEW}.counts()")
    assert (counts["algorithm"], counts["particles"]) == ("bfs", 8)
    assert not panel_query(browser, ".dsv-charts .dsv-error")
    edges = panel_query(browser, "svg[data-chart=tree] path.dsv-edge")
    assert len(edges) == 4          # one column of edges (between the two prunes): into the 4 survivors only
