"""Where the search view lives (web/search_dock.js): a sidebar tab on the modern frontend (app.extensionManager's
sidebar tab API), the floating panel with its bottom button on the 2024 UI; and the modern frontend's Vue-node mode
(Comfy.VueNodes.Enabled): nodes drawn, "Show search view" in the node's menu, tuning written to the node's widgets.
Fixtures: tests/web_view_support.py."""
from __future__ import annotations

import pytest

from web_view_support import (PAGE_TIMEOUT, RUN_TIMEOUT, TINY, VIEW, add_graph_node, bfs_trace, host_kind, inject,
                              open_view, search_prompt, set_control, skip_unless_modern_ui, widget_value)

ROOT = "document.getElementById('diffusion-search-view')"
V = "window.diffusionSearchView"
TAB = "diffusion-search"
ACTIVE = "return app.extensionManager.sidebarTab.activeSidebarTabId"
CLOSE_SIDEBAR = ("const s = app.extensionManager.sidebarTab; window.diffusionSearchView.panel.userHidden = false;"
                 "if (s.activeSidebarTabId) s.toggleSidebarTab(s.activeSidebarTabId);")
TAB_BUTTON = "button.side-bar-button[aria-label='Diffusion search view']"


def test_host_fits_the_frontend_and_its_choices(server, browser):
    """The sidebar tab where the frontend offers the API (every modern frontend tested has it), else the floating
    panel and its toggle button; search_dock.js's pure choices with stand-ins for `app`."""
    from comfy_harness import comfyui_root, is_modern

    has_api = browser.js("const m = app.extensionManager; return !!(m && ((m.sidebarTab && "
                         "typeof m.sidebarTab.registerSidebarTab === 'function') || typeof m.registerSidebarTab === 'function'))")
    assert has_api == is_modern(comfyui_root())
    toggle = browser.js("return !!document.getElementById('diffusion-search-toggle')")
    position = browser.js(f"return getComputedStyle({ROOT}).position")
    if has_api:
        assert host_kind(browser) == "sidebar" and not toggle and position == "relative"
    else:
        assert host_kind(browser) == "floating" and toggle and position == "fixed"
        browser.js(f"{ROOT}.hidden = true; document.getElementById('diffusion-search-toggle').click()")
        assert browser.js(f"{VIEW}.isOpen()")
        browser.js("document.getElementById('diffusion-search-toggle').click()")
        assert browser.js(f"return {ROOT}.hidden && window.diffusionSearchView.panel.userHidden")
        open_view(browser)

    script = """
const done = arguments[arguments.length - 1];
import(arguments[0] + '/extensions/comfyui_diffusion_search/search_dock.js').then((d) => {
  const calls = [];
  const store = {activeSidebarTabId: null, registerSidebarTab: (t) => calls.push('store:' + t.id),
                 toggleSidebarTab: (id) => { store.activeSidebarTabId = store.activeSidebarTabId === id ? null : id; },
                 $subscribe: () => calls.push('subscribed')};
  const modern = d.sidebarTabApi({extensionManager: {sidebarTab: store}});
  modern.register({id: 'x'}); modern.toggle('x'); const active = modern.activeId(); modern.subscribe(() => 0);
  const old = d.sidebarTabApi({extensionManager: {registerSidebarTab: (t) => calls.push('manager:' + t.id),
                                                  command: {execute: (c) => calls.push(c)}}});
  old.register({id: 'y'}); old.toggle('y');
  done({calls, active, oldActive: old.activeId() === undefined, oldSubscribes: old.subscribe(() => 0),
        none: [d.sidebarTabApi({}), d.sidebarTabApi(null), d.sidebarTabApi({extensionManager: {}}),
               d.sidebarTabApi({extensionManager: {sidebarTab: store,
                                                   setting: {get: (k) => k === 'Comfy.UseNewMenu' ? 'Disabled' : null}}})],
        starts: [d.opensOnStart(false, undefined), d.opensOnStart(false, null), d.opensOnStart(false, d.TAB_ID),
                 d.opensOnStart(false, 'node-library'), d.opensOnStart(true, null), d.opensOnStart(true, undefined)]});
}, (e) => done(String(e)));
"""
    result = browser.driver.execute_async_script(script, server.url)
    assert result["calls"] == ["store:x", "subscribed", "manager:y", "Workspace.ToggleSidebarTab.y"]
    assert result["active"] == "x" and result["oldActive"] and result["oldSubscribes"] is False
    assert result["none"] == [None, None, None, None]
    assert result["starts"] == [True, True, True, False, False, False]


def graph_node_menu(browser, node_id):
    """Runs the "Show search view" entry of a node's context menu, as the canvas builds that menu."""
    found = browser.js("const node = app.graph.getNodeById(arguments[0]);"
                       "const item = app.canvas.getNodeMenuOptions(node).find(o => o && o.content === 'Show search view');"
                       "if (item) item.callback(); return !!item;", node_id)
    assert found, "the node's menu has no Show search view"


def test_the_view_lives_in_its_sidebar_tab(server, browser):
    """Modern frontend: the view is a custom sidebar tab (icon, title); a run's start opens it (not after the user
    closed it, and not over another tab in use); the node menu opens it; closing and reopening keeps the same panel
    and its runs; the charts take the tab's width."""
    from selenium.webdriver.common.by import By

    skip_unless_modern_ui("the sidebar tab")
    tab = browser.js("const t = app.extensionManager.sidebarTab.sidebarTabs.find(t => t.id === arguments[0]);"
                     "return t && {type: t.type, icon: t.icon, title: t.title, render: typeof t.render, destroy: typeof t.destroy}", TAB)
    assert tab == {"type": "custom", "icon": "pi pi-chart-line", "title": "Search view", "render": "function",
                   "destroy": "function"}
    browser.js(f"{ROOT}.dataset.mark = 'same-panel'")
    # Closed by the user: a new run does not open it.
    open_view(browser)
    browser.driver.find_element(By.CSS_SELECTOR, TAB_BUTTON).click()
    browser.wait_for(f"return !{V}.isOpen()", 5, "the tab closed from its sidebar button")
    assert browser.js(f"{ACTIVE}") is None and browser.js(f"{VIEW}.panel.userHidden")
    assert browser.js(f"return {ROOT}.parentElement.id") == "diffusion-search-parking"
    inject(browser, bfs_trace("hosts-a", "p-hosts-a", n_items=1, n=3, steps=4))
    assert not browser.js(f"{VIEW}.isOpen()") and browser.js(f"{ACTIVE}") is None
    runs = browser.js(f"{VIEW}.store.runs.size")

    # The node's menu opens it, with that node's run; the panel is the same element with the same runs.
    node = add_graph_node(browser, "DiffusionSearchKSampler")
    inject(browser, bfs_trace(str(node), "p-hosts-b", n_items=1, n=4, steps=6, node_type="DiffusionSearchKSampler"))
    inject(browser, bfs_trace("hosts-c", "p-hosts-c", n_items=1, n=2, steps=3))
    assert not browser.js(f"{VIEW}.isOpen()")
    graph_node_menu(browser, node)
    browser.wait_for(f"{VIEW}.isOpen()", 5, "the tab opened from the node's menu")
    assert browser.js(f"{ACTIVE}") == TAB and not browser.js(f"{VIEW}.panel.userHidden")
    assert browser.js(f"return {ROOT}.dataset.mark") == "same-panel"
    assert browser.js(f"{VIEW}.store.runs.size") == runs + 2
    browser.js(f"{VIEW}.panel.draw()")
    assert browser.js(f"return {ROOT}.dataset.run") == f"p-hosts-b/{node}"
    assert browser.js(f"return {ROOT}.closest('.sidebar-content-container') !== null")

    # Docked: the tab's full width (beside its scroll bar), no drag, the charts at that width.
    widths = browser.js(f"const r = {ROOT}; const c = r.closest('.sidebar-content-container');"
                        "const svg = r.querySelector('svg[data-chart=bfs-scores]');"
                        "return [r.getBoundingClientRect().width, c.clientWidth, r.clientWidth,"
                        " Number(svg.getAttribute('width')), getComputedStyle(r.querySelector('.dsv-header')).cursor]")
    assert abs(widths[0] - widths[1]) <= 1 and widths[3] == max(180, int(widths[2] - 16)) and widths[4] != "move"

    # Another tab in use: a run's start does not take it away; the view's state waits in the parking element.
    browser.js("app.extensionManager.sidebarTab.toggleSidebarTab('node-library')")
    browser.wait_for(f"return !{V}.isOpen()", 5, "the node library in the sidebar")
    assert not browser.js(f"{VIEW}.panel.userHidden")
    inject(browser, bfs_trace("hosts-d", "p-hosts-d", n_items=1, n=2, steps=3))
    assert browser.js(f"{ACTIVE}") == "node-library"
    # Closing the sidebar (no tab in use), a run's start opens the view again, with every run.
    browser.js("app.extensionManager.sidebarTab.toggleSidebarTab('node-library')")
    browser.wait_for(f"{ACTIVE} === null", 5, "the sidebar closed")
    inject(browser, bfs_trace("hosts-e", "p-hosts-e", n_items=1, n=2, steps=3))
    browser.wait_for(f"{VIEW}.isOpen()", 5, "the tab opened by a run's start")
    assert browser.js(f"{VIEW}.store.runs.size") == runs + 4
    assert browser.js(f"return {ROOT}.dataset.mark") == "same-panel"
    assert len(browser.js(f"return [...{ROOT}.querySelector('.dsv-runs').options].map(o => o.value)")) >= runs + 4
    # The panel's × closes the tab (as Escape does).
    browser.js(f"[...{ROOT}.querySelectorAll('.dsv-header button')].find(b => b.textContent === '×').click()")
    browser.wait_for(f"return !{V}.isOpen()", 5, "the tab closed from the panel's ×")
    assert browser.js(f"{ACTIVE}") is None and browser.js(f"{VIEW}.panel.userHidden")
    open_view(browser)


def set_setting(server, browser, name, value):
    """Writes a frontend setting the way the settings dialog stores it, then reloads the page."""
    server.post_json("/settings", {name: value})
    browser.driver.refresh()
    browser.wait_for("return !!(window.diffusionSearchView && window.app && window.app.graph)", PAGE_TIMEOUT,
                     "the page again")
    assert browser.js("return app.extensionManager.setting.get(arguments[0])", name) == value


def test_vue_node_mode(server, browser):
    """Comfy.VueNodes.Enabled: the pack's node is drawn as a Vue node with its widgets; a real run opens the view;
    the selection toolbox's button and the node's own context menu (the Vue one) open it; a tuning write reaches
    the node's widget and the Vue node shows it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    skip_unless_modern_ui("the Vue-node mode")
    if browser.js("return !app.extensionManager.setting.settings['Comfy.VueNodes.Enabled']"):
        pytest.fail("this frontend has no Comfy.VueNodes.Enabled setting (1.49.6 and 1.58.1 have it)")
    set_setting(server, browser, "Comfy.VueNodes.Enabled", True)
    try:
        browser.js("app.graph.clear()")
        node = browser.js("const n = LiteGraph.createNode('DiffusionSearchKSampler'); n.pos = [300, 150];"
                          "app.graph.add(n); app.canvas.setDirty(true, true); return n.id;")
        shown = browser.wait_for("const e = document.querySelector(`[data-node-id=\"${arguments[0]}\"]`);"
                                 "return e && e.textContent.includes('particles') && e.textContent.includes('lam')"
                                 " && e.querySelectorAll('input').length", 10, "the Vue node", node)
        assert shown >= 10
        browser.js(CLOSE_SIDEBAR)
        assert not browser.js(f"{VIEW}.isOpen()")

        # A real run of that node id: its start opens the view; it is drawn bound to the Vue node.
        client_id = browser.js(f"{VIEW}.clientId()")
        prompt_id = server.queue_prompt(search_prompt(TINY, "bfs", 2, 4, search_id=str(node)), client_id=client_id)
        browser.wait_for(f"{VIEW}.isOpen() && {V}.store.runs.has(arguments[0])", 60, "the run's view",
                         f"{prompt_id}/{node}")
        server.wait_history(prompt_id, timeout=RUN_TIMEOUT)
        key = f"{prompt_id}/{node}"
        browser.wait_for("const r = window.diffusionSearchView.store.runs.get(arguments[0]); return !!(r && r.finished)",
                         30, "the run's final event", key)
        browser.js(f"{VIEW}.panel.close()")
        assert not browser.js(f"{VIEW}.isOpen()")

        # The selection toolbox of the selected node (getSelectionToolboxCommands) opens the view on this node's run.
        header = browser.driver.find_element(By.CSS_SELECTOR, f"[data-node-id='{node}'] [data-testid='node-header-{node}']")
        ActionChains(browser.driver).move_to_element(header).click().perform()
        button = browser.wait_for("const i = document.querySelector('.selection-toolbox button .pi-chart-line');"
                                  "return i && i.closest('button')", 5, "the search view button in the selection toolbox")
        button.click()
        browser.wait_for(f"{VIEW}.isOpen()", 5, "the view opened from the selection toolbox")
        browser.js(f"{VIEW}.panel.draw()")
        assert browser.js(f"return {ROOT}.dataset.run") == key and browser.js(f"return {ROOT}.dataset.bound") == "true"
        browser.js(f"{VIEW}.panel.close()")

        # The Vue node's context menu: where the frontend merges extension items into it (it has the node menu
        # extension API, app.collectNodeMenuItems: 1.49.6, 1.58.1), "Show search view" is there and opens the view;
        # 1.27.10's Vue nodes have no such menu (a right click opens none), the toolbox button above is the way in.
        browser.js(f"{V}.store.current = null")
        ActionChains(browser.driver).move_to_element(header).context_click().perform()
        if browser.js("return typeof app.collectNodeMenuItems === 'function'"):
            item = browser.wait_for("return [...document.querySelectorAll('body *')].find(e => !e.children.length &&"
                                    " e.textContent.trim() === 'Show search view')", 5,
                                    "Show search view in the Vue node's menu")
            item.click()
            browser.wait_for(f"{VIEW}.isOpen()", 5, "the view opened from the Vue node's menu")
        else:
            browser.js(f"{V}.store.show(arguments[0])", key)
            open_view(browser)
        browser.js(f"{VIEW}.panel.draw()")
        assert browser.js(f"return {ROOT}.dataset.run") == key and browser.js(f"return {ROOT}.dataset.bound") == "true"

        # Tuning writes through to the widget, and the Vue node shows the new value.
        set_control(browser, "input[data-widget=lam]", "12.5")
        set_control(browser, "input[data-widget=particles]", "6")
        assert widget_value(browser, node, "lam") == pytest.approx(12.5)
        assert widget_value(browser, node, "particles") == 6
        # The field beside the widget's label (the first ancestor of the label that holds an input).
        row = ("const el = document.querySelector(`[data-node-id=\"${arguments[0]}\"]`);"
               "let row = [...el.querySelectorAll('*')].find(e => !e.children.length && e.textContent.trim() === arguments[1]);"
               "while (row && row !== el && !row.querySelector('input')) row = row.parentElement;"
               "const input = row && row !== el ? row.querySelector('input') : null; return input ? input.value : null")
        assert browser.js(row, node, "lam") is not None, "no λ field on the Vue node"
        if browser.js("return typeof app.collectNodeMenuItems === 'function'"):
            # Later frontends show the new value at once. 1.27.10's Vue node keeps showing the old one in its field
            # (the widget, and so the queued prompt, has the new value): a limit of that early Vue-node mode.
            browser.wait_for(f"{row.replace('return input ? input.value : null', 'return input && Number(input.value) === 12.5')}",
                             5, "λ 12.5 on the Vue node", node, "lam")
            assert float(browser.js(row, node, "particles")) == 6
    finally:
        set_setting(server, browser, "Comfy.VueNodes.Enabled", False)
