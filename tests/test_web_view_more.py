"""'Search more' in the search view, in a real browser against a real server (issue 14): it doubles the budget of
the node that ran the shown search, puts back the run's seed (ComfyUI randomizes it after a queue) and queues the
workflow again; the server extends the finished search instead of redoing it."""
from __future__ import annotations

from web_view_support import TINY, VIEW, open_view, search_prompt, settled

ROOT = "document.getElementById('diffusion-search-view')"


def _numbered(prompt: dict) -> dict:
    """The prompt with numeric node ids, as a workflow loaded in the page has."""
    ids = {old: str(900 + k) for k, old in enumerate(prompt)}
    out = {}
    for old, node in prompt.items():
        inputs = {name: [ids[v[0]], v[1]] if isinstance(v, list) else v for name, v in node["inputs"].items()}
        out[ids[old]] = {"class_type": node["class_type"], "inputs": inputs}
    return out, ids


def _finished_runs(browser, node_id):
    return browser.js(f"return [...{VIEW[7:]}.store.runs.values()].filter(r => String(r.node) === arguments[0] "
                      "&& r.finished).map(r => ({key: r.key, start: r.start, types: r.events.map(e => e.type)}))",
                      node_id)


def test_search_more_doubles_the_budget_keeps_the_seed_and_extends(server, browser):
    from selenium.webdriver.common.by import By

    prompt, ids = _numbered(search_prompt(TINY, "best_of_n", 2, 4, seed=23))
    node = ids["search"]
    loaded = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.resolve(app.loadApiJson(arguments[0], 'search_more.json'))"
        ".then(() => done(true), e => done(String(e)));",
        prompt)
    assert loaded is True, loaded
    # the test conditioning nodes have a seed of their own: keep those (text encoders have none); the search node's
    # seed keeps ComfyUI's default control, randomize after each queue, which Search more must undo
    browser.js("for (const n of app.graph._nodes) if (n.id !== Number(arguments[0])) for (const w of n.widgets || [])"
               " if (w.name === 'control_after_generate') w.value = 'fixed';", node)
    # the first run, queued from the page as the Queue button does (the seed's control then randomizes it)
    browser.js("app.queuePrompt(0, 1)")
    browser.wait_for(f"return [...{VIEW[7:]}.store.runs.values()].some(r => String(r.node) === arguments[0] "
                     "&& r.finished)", 180, "the first run", node)
    (first,) = _finished_runs(browser, node)
    assert first["start"]["n_particles"] == 2 and first["start"]["seed"] == 23
    browser.js(f"const v = {VIEW[7:]}; v.store.show(arguments[0]);", first["key"])
    open_view(browser)
    button = "#diffusion-search-view button[data-action=search-more]"
    assert not browser.js(f"return document.querySelector('{button}').disabled")
    assert "particles 2 → 4" in browser.js(f"return document.querySelector('{button}').title")
    settled(browser, lambda: browser.driver.find_element(By.CSS_SELECTOR, button).click())
    browser.wait_for(f"return [...{VIEW[7:]}.store.runs.values()].filter(r => String(r.node) === arguments[0] "
                     "&& r.finished).length === 2", 180, "the extended run", node)
    second = [r for r in _finished_runs(browser, node) if r["key"] != first["key"]][0]
    assert second["start"]["extends"] == {"from_budget": 2, "budget": 4, "exact": True}
    assert second["start"]["n_particles"] == 2 and second["start"]["seed"] == 23   # only the two new particles ran
    assert second["types"][-1] == "extend"
    # the view shows the extension with every candidate of both runs
    browser.js(f"const v = {VIEW[7:]}; v.store.show(arguments[0]); v.panel.draw();", second["key"])
    assert browser.js(f"return {VIEW[7:]}.store.runs.get(arguments[0]).nCandidates", second["key"]) == 4
    assert "budget 2 → 4 (exact; 4 candidates)" in browser.js(f"return {ROOT}.querySelector('.dsv-status').textContent")
    browser.wait_for("return document.querySelectorAll('#diffusion-search-view .dsv-grid img').length === 4", 30,
                     "the four candidates' images")
    widgets = browser.js("const n = app.graph.getNodeById(Number(arguments[0]));"
                         "return Object.fromEntries(n.widgets.map(w => [w.name, w.value]));", node)
    assert widgets["particles"] == 4 and widgets["seed"] == 23 and widgets["control_after_generate"] == "fixed"
