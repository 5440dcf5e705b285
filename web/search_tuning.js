// Tuning from the view: controls bound to the widgets of the node that ran the search (and of its Local Search
// Settings node). Controls are built once per bound node and only refreshed afterwards, never while one has focus
// or is dragged; a value reaches the node only when the edit is committed (Enter, leaving the field, releasing the
// slider). Widgets a preset ignores are marked so, with the reason.

import { htmlEl } from "./search_svg.js";

// Widget names of docs/nodes.md; a name the node lacks is listed, not an error.
export const DFS_WIDGETS = ["delta", "delta_schedule", "backtrack_steps", "nfe_budget", "max_backtracks", "check_from"];
// An inner list names alternatives: the all-in-one KSampler calls its preset menu `search`.
export const BFS_WIDGETS = [["preset", "search"], "particles", "lam", "resampling_steps", "ess_threshold", "temperature", "scoring", "resampling"];
export const LOCAL_WIDGETS = ["gradient_mode", "mu", "rho", "langevin_steps", "recur_steps", "start_step"];
export const LOCAL_SAMPLER_WIDGETS = ["particles"];

const LABELS = { lam: "λ (lam)", delta: "δ (delta)", backtrack_steps: "ΔT (backtrack_steps)", mu: "μ (mu)", rho: "ρ (rho)" };
const DFS_ONLY = new Set(DFS_WIDGETS);
const BFS_ONLY = new Set(["particles", "lam", "resampling_steps", "ess_threshold"]);

/** The graph node with a run's node id, or null (the graph may have changed since). Subgraph ids "3:12" resolve. */
export function findGraphNode(app, nodeId) {
  const graph = app && app.graph;
  if (!graph || nodeId === null || nodeId === undefined) return null;
  const raw = String(nodeId).split(":").pop();
  return graph.getNodeById(Number(raw)) || graph.getNodeById(raw) || null;
}

export function findWidget(node, name) {
  return (node && Array.isArray(node.widgets) && node.widgets.find((w) => w.name === name)) || null;
}

/** The Local Search Settings node wired into `node`'s `local_search` input, or null. */
export function localSettingsNode(app, node) {
  const input = node && Array.isArray(node.inputs) ? node.inputs.find((i) => i.name === "local_search") : null;
  const graph = app && app.graph;
  if (!input || input.link === null || input.link === undefined || !graph) return null;
  const links = graph.links;
  const link = links && (typeof links.get === "function" ? links.get(input.link) : links[input.link]);
  return link ? graph.getNodeById(link.origin_id) || null : null;
}

/** Sets a widget like a user edit would (value, callback, redraw); false when the widget is missing. */
export function setWidgetValue(node, name, value) {
  const w = findWidget(node, name);
  if (!w) return false;
  const opts = w.options || {};
  let v = value;
  if (typeof v === "number") {
    if (Number.isFinite(opts.min)) v = Math.max(opts.min, v);
    if (Number.isFinite(opts.max)) v = Math.min(opts.max, v);
    if (isIntegerWidget(w)) v = Math.round(v);
    else if (w.type === "number" && Number.isFinite(opts.precision)) v = Number(v.toFixed(opts.precision));
  }
  w.value = v;
  if (typeof w.callback === "function") {
    try { w.callback(v, undefined, node); } catch (e) { console.warn("[diffusion_search] widget callback failed", name, e); }
  }
  if (typeof node.setDirtyCanvas === "function") node.setDirtyCanvas(true, true);
  return true;
}

/** Why the node's next run ignores widget `name` (its preset / search / gradient mode), or null. */
export function ignoredReason(node, name) {
  const value = (n) => findWidget(node, n)?.value;
  const mode = value("gradient_mode");
  if (mode === "x0" && name === "rho") return "ρ steps through the denoiser: gradient_mode is x0";
  if (mode === "denoiser" && (name === "mu" || name === "langevin_steps")) return "x0-mode setting: gradient_mode is denoiser";
  const preset = value("preset") ?? value("search");
  if (preset === undefined) return null;
  if (preset === "dfs" && BFS_ONLY.has(name)) return "dfs dives with one particle";
  if (preset !== "dfs" && findWidget(node, "search") && DFS_ONLY.has(name)) return "DFS only: search is a BFS preset";
  if (preset !== "custom" && ["temperature", "scoring", "resampling"].includes(name)) return `fixed by the ${preset} preset (custom sets it)`;
  if (preset === "best_of_n" && ["lam", "resampling_steps", "ess_threshold"].includes(name)) return "Best-of-N never resamples";
  if (preset === "svdd" && name === "resampling_steps") return "SVDD resamples at every step";
  if (preset === "svdd" && name === "lam") return "SVDD is greedy (λ = ∞)";
  return null;
}

/** A combo widget's choices (a list, or a function returning one in some frontends), else null. */
function comboValues(w, node) {
  let values = w.options ? w.options.values : null;
  if (typeof values === "function") {
    try { values = values(w, node); } catch { values = null; }
  }
  return Array.isArray(values) ? values : null;
}

function isIntegerWidget(w) {
  const o = w.options || {};
  return o.precision === 0 || o.round === 1 || (Number.isInteger(o.step) && o.step >= 10 && Number.isInteger(w.value));
}

/** A slider range around the widget's limits (huge limits are clipped around the current value). */
function sliderRange(w) {
  const o = w.options || {};
  const span = Math.max(1, Math.abs(w.value) * 4);
  const min = Number.isFinite(o.min) && o.min > w.value - span * 10 ? o.min : w.value - span;
  const max = Number.isFinite(o.max) && o.max < w.value + span * 10 ? o.max : w.value + span;
  return { min, max };
}

/**
 * The controls of one node: slider + number field for numbers, a menu for combos. `onPreview(name, value)` while
 * a value is being edited (slider moving, digits typed), `onCommit(name, value)` once it is written to the node.
 */
export class ControlsView {
  constructor(node, names, { onPreview = () => {}, onCommit = () => {}, title = "" } = {}) {
    this.node = node;
    this.rows = [];
    this.el = htmlEl("div", "dsv-controls");
    if (title) this.el.appendChild(htmlEl("div", "dsv-controls-title", title));
    const missing = [];
    for (const entry of names) {
      const alternatives = Array.isArray(entry) ? entry : [entry];
      const name = alternatives.find((n) => findWidget(node, n)) || alternatives[0];
      const w = findWidget(node, name);
      if (!w) { missing.push(name); continue; }
      this.rows.push(this.row(name, w, onPreview, onCommit));
    }
    if (missing.length) this.el.appendChild(htmlEl("div", "dsv-note", `Not on this node: ${missing.join(", ")}`));
    this.refresh();
  }

  row(name, w, onPreview, onCommit) {
    const node = this.node;
    const el = htmlEl("label", "dsv-control");
    el.dataset.control = name;
    el.appendChild(htmlEl("span", "dsv-control-name", LABELS[name] || name));
    const row = { name, w, el, inputs: [], active: false, reason: htmlEl("span", "dsv-ignored-reason") };
    const commit = (v) => {
      row.active = row.dragging = false;
      if (typeof w.value === "number" && !Number.isFinite(v)) { this.show(row); return; }
      setWidgetValue(node, name, v);
      this.show(row);
      onCommit(name, w.value);
    };
    const values = comboValues(w, node);
    if (values) {
      const select = htmlEl("select");
      select.dataset.widget = name;
      for (const v of values) {
        const opt = htmlEl("option", "", v);
        opt.value = String(v);
        select.appendChild(opt);
      }
      select.addEventListener("focus", () => { row.active = true; });
      select.addEventListener("blur", () => { row.active = false; });
      select.addEventListener("change", () => commit(select.value));
      row.inputs.push(select);
      row.show = () => { select.value = String(w.value); };
    } else if (typeof w.value === "number") {
      const { min, max } = sliderRange(w);
      const slider = htmlEl("input");
      Object.assign(slider, { type: "range", min, max, step: isIntegerWidget(w) ? 1 : (max - min) / 200 });
      slider.dataset.slider = name;
      const number = htmlEl("input");
      Object.assign(number, { type: "number", step: "any" });
      number.dataset.widget = name;
      slider.addEventListener("pointerdown", () => { row.active = row.dragging = true; });
      slider.addEventListener("input", () => {   // moving: preview only, nothing written yet
        row.active = true;
        number.value = slider.value;
        onPreview(name, Number(slider.value));
      });
      slider.addEventListener("change", () => commit(Number(slider.value)));
      // Released without a change (no `change` event): the row is free again.
      const released = () => { if (row.dragging) { row.dragging = false; row.active = document.activeElement === number; } };
      slider.addEventListener("pointerup", released);
      slider.addEventListener("lostpointercapture", released);
      number.addEventListener("focus", () => { row.active = true; });
      number.addEventListener("blur", () => { row.active = row.dragging; });
      number.addEventListener("input", () => { if (number.value !== "" && Number.isFinite(Number(number.value))) onPreview(name, Number(number.value)); });
      number.addEventListener("change", () => commit(number.value === "" ? NaN : Number(number.value)));
      number.addEventListener("keydown", (ev) => {
        if (ev.key !== "Escape") return;
        ev.stopPropagation();   // Escape undoes the typing here; it does not close the panel
        this.show(row, true);
        number.blur();
        onPreview(name, null);
      });
      row.inputs.push(slider, number);
      row.show = () => { slider.value = String(w.value); number.value = String(w.value); };
    } else {
      const span = htmlEl("span", "dsv-control-value");
      row.show = () => { span.textContent = String(w.value); };
      row.inputs.push(span);
    }
    el.append(...row.inputs, row.reason);
    this.el.appendChild(el);
    return row;
  }

  /** Shows the widget's value in `row` (unless it is being edited, or `force`). */
  show(row, force = false) {
    if (force || !row.active) row.show();
  }

  /** Brings every control not being edited up to date with its widget, and marks the ignored ones. */
  refresh() {
    for (const row of this.rows) {
      this.show(row);
      const reason = ignoredReason(this.node, row.name);
      row.el.classList.toggle("dsv-ignored", !!reason);
      row.el.title = reason ? `Ignored: ${reason}` : "";
      row.reason.textContent = reason ? `ignored: ${reason}` : "";
    }
  }

  /** True while one of its controls has focus or is dragged (the panel then keeps it). */
  get busy() { return this.rows.some((r) => r.active) || this.el.contains(document.activeElement); }
}
