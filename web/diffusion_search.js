// Entry point of the pack's web extension: listens for `diffusion_search.event` websocket messages
// (docs/design.md, "Trace events"), keeps them in a store (and in browser storage across reloads) and shows them
// in the search view panel: a sidebar tab where the frontend has one for extensions, else a floating panel
// (search_dock.js). Else uses only what both the 2024 UI and the modern frontend offer: registerExtension, api
// events, before/afterConfigureGraph, beforeRegisterNodeDef/getExtraMenuOptions (also consulted by the Vue-node
// mode's menu) and plain DOM.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { createHost, opensOnStart } from "./search_dock.js";
import { clearSavedRuns, loadRuns, saveRuns } from "./search_history.js";
import { SearchPanel } from "./search_panel.js";
import { EventStore } from "./search_store.js";
import { findGraphNode } from "./search_tuning.js";

const EVENT_NAME = "diffusion_search.event";
const NODE_PREFIX = "DiffusionSearch";

const store = new EventStore();
let panel = null;
let saveTimer = null;

function imageUrl(image) {
  const params = new URLSearchParams({ filename: image.filename ?? "", subfolder: image.subfolder ?? "", type: image.type ?? "output" });
  return api.apiURL(`/view?${params.toString()}`);
}

function ensurePanel() {
  if (!panel) {
    panel = new SearchPanel({ store, app, imageUrl, onClearRuns: () => clearSavedRuns() });
    panel.host = createHost(panel, app);
  }
  return panel;
}

/** Shows the view wherever it lives, as the user asked for it (menu item, console, tests): new runs open it again. */
function openView() {
  const p = ensurePanel();
  p.userHidden = false;
  p.show();
  return p;
}

/**
 * Names a loaded workflow: its id where the frontend gives workflows one, else a fingerprint of its nodes (id and
 * type), so that loading the same file again names the same workflow and another file another one.
 */
export function workflowName(graphData) {
  if (graphData && typeof graphData.id === "string" && graphData.id) return `id:${graphData.id}`;
  const nodes = graphData && Array.isArray(graphData.nodes) ? graphData.nodes : [];
  const text = nodes.map((n) => `${n.id}:${n.type}`).sort().join(",");
  let hash = 0x811c9dc5;   // FNV-1a
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `nodes:${hash.toString(16)}:${nodes.length}`;
}

function currentWorkflow() {
  if (store.workflow === null && app.graph) {
    const nodes = (app.graph._nodes || app.graph.nodes || []).map((n) => ({ id: n.id, type: n.type }));
    store.workflow = workflowName({ id: app.graph.id, nodes });
  }
  return store.workflow;
}

/** Keeps finished runs in browser storage, at most once a second. */
function scheduleSave() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => saveRuns(store), 1000);
}

/** "Show search view" for one graph node: the view opens on that node's newest run of the open workflow. */
function showRunsOf(node) {
  const here = currentWorkflow();
  const runs = [...store.runs.values()].filter((r) => String(r.node).split(":").pop() === String(node.id)
    && r.workflow === here && (!r.nodeType || r.nodeType === node.type));
  if (runs.length) store.show(runs[runs.length - 1].key);
  openView();
}

const isSearchNode = (item) => !!item && typeof item.type === "string" && item.type.startsWith(NODE_PREFIX);
const SHOW_COMMAND = "DiffusionSearch.ShowSearchView";

function onSearchEvent(e) {
  const event = e.detail;
  if (event && event.type === "start") currentWorkflow();
  const run = store.add(event);
  const p = ensurePanel();
  if (run && event.type === "start" && opensOnStart(p.userHidden, p.host.activeTab())) p.show();
}

function onExecuted(e) {
  const detail = e.detail || {};
  const images = detail.output && Array.isArray(detail.output.images) ? detail.output.images : [];
  if (images.length && detail.prompt_id) {
    store.addImages(detail.prompt_id, detail.node, images);
    linkImages(detail.prompt_id);
  }
}

const linked = new Set();

/**
 * Once the prompt is in ComfyUI's history (it ran to the end), reads its graph and keeps for each search run only
 * the images of output nodes downstream of it, so several search nodes in one prompt each show their own.
 */
async function linkImages(promptId) {
  if (linked.has(promptId)) return;
  linked.add(promptId);
  for (let attempt = 0; attempt < 30; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, attempt ? 1000 : 200));
    try {
      const response = await api.fetchApi(`/history/${encodeURIComponent(promptId)}`);
      const entry = response.ok ? (await response.json())[promptId] : null;
      if (entry && Array.isArray(entry.prompt) && entry.prompt[2]) {
        store.linkOutputs(promptId, entry.prompt[2]);
        return;
      }
    } catch (err) {
      console.debug("[diffusion_search] history not ready", err);
    }
  }
}

function onPreview(e) {
  const run = store.current;
  if (panel && run && run.source === "live" && !run.finished && e.detail instanceof Blob) panel.setPreview(e.detail);
}

app.registerExtension({
  name: "comfyui_diffusion_search.SearchView",
  // Modern frontend: a button in the selection toolbox of a selected search node (the Vue-node mode of frontends
  // before its node menu took extension items, e.g. 1.27.10, has no other way in). The 2024 UI ignores both.
  commands: [{ id: SHOW_COMMAND, label: "Show search view", icon: "pi pi-chart-line",
    function: () => { const node = [...(app.canvas?.selectedItems ?? [])].find(isSearchNode); if (node) showRunsOf(node); else openView(); } }],
  getSelectionToolboxCommands(item) { return isSearchNode(item) ? [SHOW_COMMAND] : []; },
  async setup() {
    ensurePanel();
    store.nodeTypeOf = (id) => findGraphNode(app, id)?.type ?? null;
    store.addEventListener("change", (ev) => { if (["final", "images", "clear"].includes(ev.detail)) scheduleSave(); });
    const kept = loadRuns();
    if (kept.length) store.restore(kept);
    api.addEventListener(EVENT_NAME, onSearchEvent);
    api.addEventListener("executed", onExecuted);
    api.addEventListener("b_preview", onPreview);
  },
  async beforeConfigureGraph(graphData) {
    store.workflow = workflowName(graphData);
  },
  async afterConfigureGraph() {
    // Another workflow is open: runs are bound (or not) to its nodes anew.
    if (panel) panel.scheduleDraw();
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData || typeof nodeData.name !== "string" || !nodeData.name.startsWith(NODE_PREFIX)) return;
    const previous = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const result = previous ? previous.apply(this, arguments) : undefined;
      options.push({
        content: "Show search view",
        callback: () => showRunsOf(this),
      });
      return result;
    };
  },
});

// A small handle for people debugging in the console and for the browser test.
window.diffusionSearchView = {
  store,
  get panel() { return panel; },
  /** Where the view lives: "sidebar" (a tab of the modern frontend) or "floating" (the 2024 UI's panel). */
  get host() { return panel && panel.host ? panel.host.kind : null; },
  /** Opens the view as the node menu's "Show search view" does. */
  open() { openView(); },
  /** Whether the view is on screen (in its sidebar tab, or the floating panel shown). */
  isOpen() { const root = panel && panel.root; return !!(root && root.isConnected && !root.hidden && root.getClientRects().length); },
  /** This page's websocket client id: events of prompts queued with it come to this page. */
  clientId() { return api.clientId ?? api.initialClientId ?? null; },
  /** Feeds one event as if it came over the websocket (same path as live events). */
  inject(event) { api.dispatchEvent(new CustomEvent(EVENT_NAME, { detail: event })); },
  /** Writes the kept runs to browser storage now (normally a second after a run ends). */
  saveNow() { clearTimeout(saveTimer); return saveRuns(store); },
  counts() {
    const root = panel && panel.root;
    return {
      events: store.eventCount,
      runs: store.runs.size,
      algorithm: root ? root.dataset.algorithm || "" : "",
      particles: root ? Number(root.dataset.particles || 0) : 0,
      steps: root ? Number(root.dataset.steps || 0) : 0,
      finished: root ? root.dataset.finished === "true" : false,
      draws: panel ? panel.drawCount : 0,
    };
  },
};
