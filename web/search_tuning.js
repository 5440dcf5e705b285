// Visual tuning: drag the DFS threshold curve δ_t or the BFS temperature curve, or use the sliders
// beside them; the values go into the search node's widgets for the next run. Widgets the node
// does not have are listed as "not on this node" instead of failing (docs/nodes.md names them).

import { chartFrame, emptyNote, extent, formatNumber, htmlEl, seriesDots, seriesPath, svgEl } from "./search_svg.js";

// Widget names of docs/nodes.md; a name the node lacks is listed, not an error.
export const DFS_WIDGETS = ["delta", "delta_schedule", "backtrack_steps", "nfe_budget", "max_backtracks", "check_from"];
// An inner list names alternatives: the all-in-one KSampler calls its preset menu `search`.
export const BFS_WIDGETS = [["preset", "search"], "particles", "lam", "resampling_steps", "ess_threshold", "temperature", "scoring", "resampling"];

/** The graph node that sent a run's events, or null (the graph may have changed since). */
export function findGraphNode(app, nodeId) {
  const graph = app && app.graph;
  if (!graph || nodeId === null || nodeId === undefined) return null;
  const raw = String(nodeId).split(":").pop();   // modern subgraph ids look like "3:12"
  return graph.getNodeById(Number(raw)) || graph.getNodeById(raw) || null;
}

export function findWidget(node, name) {
  return (node && Array.isArray(node.widgets) && node.widgets.find((w) => w.name === name)) || null;
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
    if (w.type === "number" && Number.isFinite(opts.precision)) v = Number(v.toFixed(opts.precision));
  }
  w.value = v;
  if (typeof w.callback === "function") {
    try { w.callback(v, undefined, node); } catch (e) { console.warn("[diffusion_search] widget callback failed", name, e); }
  }
  if (typeof node.setDirtyCanvas === "function") node.setDirtyCanvas(true, true);
  return true;
}

/**
 * δ_t / δ at noise level σ (search_core/schedules.py dfs_threshold): 1 for "constant"; 1/ᾱ_t for "alpha_scaled",
 * with ᾱ = a²/(a² + σ²), a = 1 ("eps") or 1 - σ ("flow"), ᾱ clamped at 1e-6.
 */
export function thresholdShape(schedule, sigma, noiseForm = "eps") {
  if (schedule !== "alpha_scaled" || !Number.isFinite(sigma)) return 1;
  const a = noiseForm === "flow" ? 1 - sigma : 1;
  const alphaBar = (a * a) / (a * a + sigma * sigma);
  return 1 / Math.max(alphaBar, 1e-6);
}

/** The δ_t curve a new δ (and schedule) would give, at the steps and σ of the recorded curve [[step, δ_t, σ]]. */
export function previewThreshold(curve, schedule, delta, noiseForm = "eps") {
  return curve.map(([s, , sigma]) => [s, delta * thresholdShape(schedule, sigma, noiseForm)]);
}

/** One control per named widget that the node has: slider + number for numbers, select for combos. */
export function widgetControls(node, names, onChange) {
  const box = htmlEl("div", "dsv-controls");
  if (!node) {
    box.appendChild(htmlEl("div", "dsv-note", "The node that ran this search is not in the open graph; open its workflow to tune it."));
    return box;
  }
  const missing = [];
  for (const entry of names) {
    const alternatives = Array.isArray(entry) ? entry : [entry];
    const name = alternatives.find((n) => findWidget(node, n)) || alternatives[0];
    const w = findWidget(node, name);
    if (!w) { missing.push(name); continue; }
    const row = htmlEl("label", "dsv-control");
    row.appendChild(htmlEl("span", "dsv-control-name", name));
    const values = comboValues(w, node);
    if (values) {
      const select = htmlEl("select");
      select.dataset.widget = name;
      for (const v of values) {
        const opt = htmlEl("option", "", v);
        opt.value = String(v);
        select.appendChild(opt);
      }
      select.value = String(w.value);
      select.addEventListener("change", () => { setWidgetValue(node, name, select.value); onChange(name, select.value); });
      row.appendChild(select);
    } else if (typeof w.value === "number") {
      const { min, max } = sliderRange(w);
      const slider = htmlEl("input");
      Object.assign(slider, { type: "range", min, max, step: (max - min) / 200, value: w.value });
      const number = htmlEl("input");
      Object.assign(number, { type: "number", value: w.value, step: "any" });
      number.dataset.widget = name;
      const apply = (v, done) => {
        if (!Number.isFinite(v)) return;
        setWidgetValue(node, name, Number.isInteger(w.value) && isIntegerWidget(w) ? Math.round(v) : v);
        slider.value = w.value;
        number.value = w.value;
        if (done) onChange(name, w.value);   // redraw (previews) once the slider is released
      };
      slider.addEventListener("input", () => apply(Number(slider.value), false));
      slider.addEventListener("change", () => apply(Number(slider.value), true));
      number.addEventListener("change", () => apply(Number(number.value), true));
      row.append(slider, number);
    } else {
      row.appendChild(htmlEl("span", "dsv-control-value", String(w.value)));
    }
    box.appendChild(row);
  }
  if (missing.length) box.appendChild(htmlEl("div", "dsv-note", `Not on this node: ${missing.join(", ")}`));
  return box;
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
 * Makes the threshold curve on a DFS chart draggable: dragging the handle vertically sets δ (so that δ_t at the
 * handle's step is where it is dropped), previews the new curve and writes `delta` on the node.
 * `curve` is [[step, δ_t, σ]], `schedule` the δ schedule name.
 */
export function attachThresholdDrag(frame, curve, { schedule, noiseForm, node, onPreview }) {
  if (!frame || !curve.length) return;
  const mid = curve[Math.floor(curve.length / 2)];
  if (mid[1] === null) return;
  const handle = svgEl("circle", { cx: frame.x(mid[0]), cy: frame.y(mid[1]), r: 6, class: "dsv-handle", "data-handle": "delta" });
  handle.appendChild(svgEl("title", {}, "Drag to move the threshold δ_t (sets the node's delta)"));
  frame.plot.appendChild(handle);
  let dragging = false;
  const deltaAt = (ev) => {
    const box = frame.svg.getBoundingClientRect();
    const value = frame.invertY(((ev.clientY - box.top) / box.height) * frame.height);
    return { value, delta: value / thresholdShape(schedule, mid[2], noiseForm) };
  };
  handle.addEventListener("pointerdown", (ev) => { dragging = true; handle.setPointerCapture?.(ev.pointerId); ev.preventDefault(); });
  handle.addEventListener("pointermove", (ev) => {
    if (!dragging) return;
    const { value, delta } = deltaAt(ev);
    handle.setAttribute("cy", frame.y(value));
    onPreview(delta, false);
  });
  const finish = (ev) => {
    if (!dragging) return;
    dragging = false;
    const { delta } = deltaAt(ev);
    if (node) setWidgetValue(node, "delta", delta);
    onPreview(delta, true);
  };
  handle.addEventListener("pointerup", finish);
  handle.addEventListener("pointercancel", finish);
}

/**
 * BFS temperature schedule chart (the one used, per step) with the preview for a new λ; the handle
 * drags λ (the schedule's scale) and writes `lam` on the node.
 */
export function temperatureChart(run, { node, lamPreview = null, onPreview }) {
  const temps = run.temperatureSeries();
  if (!temps.some((t) => t !== null)) return emptyNote("No temperature recorded (infinite temperature or no BFS steps).");
  const oldLam = Number(run.config.lam);
  const scale = lamPreview !== null && lamPreview !== oldLam && Number.isFinite(oldLam) && oldLam !== 0 ? lamPreview / oldLam : null;
  const preview = scale !== null ? temps.map((t) => (t === null ? null : t * scale)) : null;
  const frame = chartFrame({
    title: `Temperature schedule${Number.isFinite(oldLam) ? ` (λ = ${formatNumber(oldLam)})` : ""}`, kind: "temperature", height: 130,
    xDomain: [0, Math.max(temps.length - 1, 1)], yDomain: extent([temps, preview || [], 0]), xLabel: "step",
  });
  const points = temps.map((t, s) => [s, t]);
  frame.plot.append(seriesPath(frame, points, { stroke: "#c8f", "stroke-width": 2, class: "dsv-temperature" }, true),
    seriesDots(frame, points, { fill: "#c8f" }));
  if (preview) frame.plot.appendChild(seriesPath(frame, preview.map((t, s) => [s, t]), { stroke: "#fc6", "stroke-width": 2, class: "dsv-temperature-preview" }, true));
  let last = temps.length - 1;
  while (last > 0 && temps[last] === null) last -= 1;   // the handle sits on the last recorded temperature
  if (Number.isFinite(oldLam) && oldLam !== 0 && temps[last] !== null && temps[last] !== 0) {
    const handle = svgEl("circle", { cx: frame.x(last), cy: frame.y((preview || temps)[last]), r: 6, class: "dsv-handle", "data-handle": "lam" });
    handle.appendChild(svgEl("title", {}, "Drag to rescale the temperature schedule (sets the node's lam)"));
    frame.plot.appendChild(handle);
    let dragging = false;
    const lamAt = (ev) => {
      const box = frame.svg.getBoundingClientRect();
      return (oldLam * frame.invertY(((ev.clientY - box.top) / box.height) * frame.height)) / temps[last];
    };
    handle.addEventListener("pointerdown", (ev) => { dragging = true; handle.setPointerCapture?.(ev.pointerId); ev.preventDefault(); });
    handle.addEventListener("pointermove", (ev) => { if (dragging) handle.setAttribute("cy", ev.offsetY ?? handle.getAttribute("cy")); });
    handle.addEventListener("pointerup", (ev) => {
      if (!dragging) return;
      dragging = false;
      const lam = lamAt(ev);
      if (node) setWidgetValue(node, "lam", lam);
      onPreview(lam);
    });
  }
  return frame.svg;
}
