"""Tuning from the search view in a real browser (issue 11, bugs 1, 2 and 4): controls survive live events and write
only committed values, runs are bound to their workflow + node id + node type, and the δ / λ handles stay in the
chart, preview live while dragged and stay where they are dropped. Fixtures: tests/web_view_support.py."""
from __future__ import annotations

import time

import pytest

from web_view_support import (VIEW, add_graph_node, bfs_trace, dfs_trace, inject, load_workflow, panel_query,
                              panel_text, path_points, set_control, settled, widget_value)

ROOT = "document.getElementById('diffusion-search-view')"


def feed(browser, events):
    """Sends events the way the websocket does: no forced redraw (the panel redraws on its own next frame)."""
    browser.js("for (const e of arguments[0]) window.diffusionSearchView.inject(e);", events)


def test_typing_and_dragging_survive_live_events_and_write_only_on_commit(browser, release_pointer):
    """Bug 1: typing "35" while events arrive keeps the field (focus, digits) and writes 35 on Enter, never 3;
    a slider writes when released, not while it moves."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    node = add_graph_node(browser, "DiffusionSearchBFSSampler")
    events = bfs_trace(str(node), "tune-live", n_items=1, n=4, steps=6)
    inject(browser, events[:2])   # running: start and one step
    field = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view input[data-widget=lam]")
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("3")
    feed(browser, events[2:5])
    time.sleep(0.3)   # several frames: every pending redraw has happened
    assert browser.js("return arguments[0].isConnected && document.activeElement === arguments[0]", field), \
        "a redraw replaced or blurred the field being typed in"
    assert widget_value(browser, node, "lam") == pytest.approx(10.0), "a partly typed value reached the node"
    field.send_keys("5")
    feed(browser, events[5:6])
    time.sleep(0.2)
    field.send_keys(Keys.ENTER)
    assert widget_value(browser, node, "lam") == pytest.approx(35.0)

    slider = browser.driver.find_element(By.CSS_SELECTOR, "#diffusion-search-view input[data-slider=particles]")
    before = widget_value(browser, node, "particles")
    ActionChains(browser.driver).click_and_hold(slider).move_by_offset(30, 0).perform()
    feed(browser, events[6:])
    time.sleep(0.3)
    assert browser.js("return arguments[0].isConnected", slider), "a redraw replaced the slider being dragged"
    assert widget_value(browser, node, "particles") == before, "the slider wrote while it was still moving"
    ActionChains(browser.driver).release().perform()
    assert widget_value(browser, node, "particles") != before
    assert browser.js(f"return {ROOT}.dataset.finished") == "true"


def test_runs_are_bound_to_workflow_node_and_type(browser):
    """Bug 2: every example workflow numbers its search node 7; a DFS run of one workflow must not tune node 7 of
    another (a Local Search Settings node there), the view says so, and redraws by itself when a graph loads."""
    load_workflow(browser, "dfs_backtracking.json")
    inject(browser, dfs_trace("7", "bound-dfs", delta=0.3, node_type="DiffusionSearchDFSSampler"))
    assert browser.js(f"return {ROOT}.dataset.bound") == "true"
    assert panel_query(browser, "input[data-widget=delta]")
    assert panel_text(browser, ".dsv-warning") is None

    load_workflow(browser, "local_search.json")   # node 7 is now Local Search Settings
    browser.wait_for(f"return {ROOT}.dataset.bound === 'false'", 10, "the redraw after the graph loaded")
    warning = panel_text(browser, ".dsv-warning")
    assert "DiffusionSearchLocalSearchSettings" in warning and "DiffusionSearchDFSSampler" in warning
    assert not panel_query(browser, "input[data-widget]"), "controls must not write into another node"
    assert browser.js(f"return {ROOT}.dataset.algorithm") == "dfs"   # the run is still drawn

    load_workflow(browser, "dfs_backtracking.json")   # the same workflow again: bound again
    browser.wait_for(f"return {ROOT}.dataset.bound === 'true'", 10, "the run bound again to its workflow")

    # Same id and type, another workflow: the BFS node 7 of the presets workflow is not the one that ran.
    load_workflow(browser, "bfs_search.json")
    inject(browser, bfs_trace("7", "bound-bfs", n_items=1, node_type="DiffusionSearchBFSSampler"))
    assert browser.js(f"return {ROOT}.dataset.bound") == "true"
    load_workflow(browser, "bfs_presets_side_by_side.json")
    browser.wait_for(f"return {ROOT}.dataset.bound === 'false'", 10, "the warning for another workflow")
    assert "another workflow" in panel_text(browser, ".dsv-warning")


def set_widget(browser, node_id, name, value):
    browser.js("app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === arguments[1]).value = arguments[2];",
               node_id, name, value)


@pytest.fixture
def release_pointer(browser):
    """Releases the mouse after a test that holds it, so a failed assertion mid-drag does not leak into the next."""
    from selenium.webdriver.common.action_chains import ActionChains

    yield
    try:
        ActionChains(browser.driver).release().perform()
    except Exception:  # nothing was held
        pass


def _drag(browser, selector, dy):
    """Presses on a handle and moves it by dy pixels without releasing; returns the ActionChains to release."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    def press_and_move():
        handle = browser.driver.find_element(By.CSS_SELECTOR, f"#diffusion-search-view {selector}")
        browser.js("arguments[0].scrollIntoView({block: 'center'})", handle)
        ActionChains(browser.driver).click_and_hold(handle).move_by_offset(0, dy // 2).move_by_offset(
            0, dy - dy // 2).perform()

    settled(browser, press_and_move)
    return ActionChains(browser.driver)


def _on_path(browser, handle_selector, path_selector):
    handle = panel_query(browser, handle_selector)[0]
    points = path_points(panel_query(browser, path_selector)[0]["d"])
    cx, cy = float(handle["cx"]), float(handle["cy"])
    return min(abs(x - cx) + abs(y - cy) for x, y in points) < 1.5


def test_threshold_handle_previews_live_and_stays_where_dropped(browser, release_pointer):
    """Bug 4 (δ): while dragged, the new δ_t curve, its value and the steps that would backtrack show; nothing is
    written until release; after the drop the handle sits on the new curve (no snap back)."""
    node = add_graph_node(browser, "DiffusionSearchDFSSampler")
    set_widget(browser, node, "delta", 0.3)   # the node still holds what the run used
    inject(browser, dfs_trace(str(node), "drag-dfs", delta=0.3))
    release = _drag(browser, "circle[data-handle=delta]", -30)
    chart = panel_query(browser, "svg[data-chart=dfs]")[0]
    assert "δ 0.3 →" in browser.js("return document.querySelector('#diffusion-search-view .dsv-drag-readout').textContent")
    assert panel_query(browser, "path.dsv-threshold-preview")[0]["d"], "no live preview curve while dragging"
    assert int(chart["data-would-backtrack"]) >= 1
    assert widget_value(browser, node, "delta") == pytest.approx(0.3), "δ was written before the handle was released"
    release.release().perform()
    dropped = widget_value(browser, node, "delta")
    assert dropped > 0.3
    browser.wait_for("const p = window.diffusionSearchView.panel; return !p.pending", 5, "the redraw after the drop")
    assert _on_path(browser, "circle[data-handle=delta]", "path.dsv-threshold-preview"), "the handle snapped back"
    # Dragging far beyond the chart keeps the handle inside it.
    release = _drag(browser, "circle[data-handle=delta]", 300)
    handle = panel_query(browser, "circle[data-handle=delta]")[0]
    height = float(panel_query(browser, "svg[data-chart=dfs]")[0]["height"])
    assert 0 < float(handle["cy"]) < height
    release.release().perform()


def test_temperature_handle_is_clamped_previews_live_and_stays_where_dropped(browser, release_pointer):
    """Bug 4 (λ): dragged far up, the λ handle stays in the chart; the rescaled λ_t and the new λ show while
    dragging; release writes lam and the handle stays on the new curve."""
    node = add_graph_node(browser, "DiffusionSearchBFSSampler")
    inject(browser, bfs_trace(str(node), "drag-bfs", n_items=1, lam=10.0))
    release = _drag(browser, "circle[data-handle=lam]", -300)
    handle = panel_query(browser, "circle[data-handle=lam]")[0]
    assert float(handle["cy"]) >= 0, "the λ handle left the chart"
    chart = panel_query(browser, "svg[data-chart=temperature]")[0]
    assert float(chart["data-lam-preview"]) > 10.0
    assert panel_query(browser, "path.dsv-temperature-preview")[0]["d"]
    assert widget_value(browser, node, "lam") == pytest.approx(10.0)
    release.release().perform()
    lam = widget_value(browser, node, "lam")
    assert lam > 10.0 and lam == pytest.approx(float(chart["data-lam-preview"]), rel=0.02)
    browser.wait_for("const p = window.diffusionSearchView.panel; return !p.pending", 5, "the redraw after the drop")
    assert _on_path(browser, "circle[data-handle=lam]", "path.dsv-temperature-preview"), "the λ handle snapped back"


def test_ignored_controls_are_marked_and_local_search_is_tunable(browser):
    """Controls a preset ignores say so (and why); μ, ρ and Langevin steps of the attached Local Search Settings
    node are tunable from the view, and local search's chart comes first."""
    node = add_graph_node(browser, "DiffusionSearchBFSSampler")
    local = browser.js("const s = LiteGraph.createNode('DiffusionSearchLocalSearchSettings'); app.graph.add(s);"
                       "const b = app.graph.getNodeById(arguments[0]);"
                       "s.connect(0, b, b.inputs.findIndex(i => i.name === 'local_search')); return s.id;", node)
    events = bfs_trace(str(node), "tune-local", n_items=1)
    events.insert(3, {"type": "local", "algorithm": "bfs", "step": 2, "sigma": 5.0, "reward_before": [[0.1, 0.2, 0.3, 0.4]],
                      "reward_after": [[0.2, 0.3, 0.4, 0.5]], "langevin_steps": 1, "nfe": 8, "grad_evals": 4,
                      "node": str(node), "prompt_id": "tune-local"})
    inject(browser, events)
    assert browser.js("return document.querySelector('#diffusion-search-view .dsv-charts h4').textContent") == "Local search"
    set_control(browser, "select[data-widget=preset]", "best_of_n")
    ignored = {c["data-control"] for c in panel_query(browser, ".dsv-control.dsv-ignored")}
    assert {"lam", "resampling_steps", "temperature", "scoring", "resampling", "rho"} <= ignored
    assert "particles" not in ignored and "mu" not in ignored
    assert "Best-of-N never resamples" in browser.js(
        "return document.querySelector('#diffusion-search-view [data-control=lam]').textContent")
    set_control(browser, "select[data-widget=preset]", "bfs")
    ignored = {c["data-control"] for c in panel_query(browser, ".dsv-control.dsv-ignored")}
    assert "lam" not in ignored and "temperature" in ignored
    for name, value in (("mu", "0.25"), ("langevin_steps", "3")):
        set_control(browser, f"input[data-widget={name}]", value)
        assert widget_value(browser, local, name) == pytest.approx(float(value)), name
    set_control(browser, "select[data-widget=gradient_mode]", "denoiser")
    ignored = {c["data-control"] for c in panel_query(browser, ".dsv-control.dsv-ignored")}
    assert {"mu", "langevin_steps"} <= ignored and "rho" not in ignored
    assert browser.js(f"{VIEW}.counts()")["algorithm"] == "bfs"
