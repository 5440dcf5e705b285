// DFS charts (paper §3.2): each dive's score against the threshold δ_t, backtracks as arcs, the NFE spent per
// item against the budget; dragging δ_t previews the new curve, its value and the steps that would backtrack.

import {
  chartFrame, dragVertically, emptyNote, extent, formatNumber, htmlEl, seriesDots, seriesPath, svgEl, withLegend, attachReadout,
} from "./search_svg.js";

const FIRST_DIVE = "#6cf";
const RETRY = "#f9a640";
const COMPARE_STYLE = { stroke: "#9aa", "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "dsv-compare" };

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

/** Steps whose score is checked against δ_t (search_core/dfs.py): check_steps, else from check_from; the last always. */
function isChecked(config, step, nSteps) {
  if (step === nSteps - 1) return true;
  if (Array.isArray(config.check_steps)) return config.check_steps.includes(step);
  return step >= (Number.isInteger(config.check_from) ? config.check_from : 1);
}

/** Points of the dives whose score is below the threshold `curve` at a checked step: where a backtrack fires. */
export function wouldBacktrack(run, attempts, curve) {
  const at = new Map(curve.map(([s, d]) => [s, d]));
  const out = [];
  attempts.forEach((a, k) => a.forEach((p) => {
    const d = at.get(p.step);
    if (p.score !== null && Number.isFinite(d) && p.score < d && isChecked(run.config, p.step, run.nSteps)) out.push({ attempt: k, ...p });
  }));
  return out;
}

/**
 * DFS chart for `item`. `tune` = {schedule, noiseForm, delta (the δ the next run uses, or null), node, drag, hover,
 * onDrop(δ)}: with a δ differing from the run's, the new curve is drawn solid with the steps it would backtrack at.
 */
export function dfsChart(run, item, comparison = null, tune = {}) {
  const attempts = run.dfsAttempts(item);
  if (!attempts.length) return emptyNote("Waiting for DFS steps…");
  const curve = run.thresholdCurve(item);
  const { schedule = run.config.delta_schedule, noiseForm = run.start?.noise_form || "eps", delta = null } = tune;
  const recordedDelta = Number(run.config.delta);
  const changed = delta !== null && Number.isFinite(delta) && (delta !== recordedDelta || schedule !== run.config.delta_schedule);
  const preview = changed ? previewThreshold(curve, schedule, delta, noiseForm) : null;
  const cmpAttempts = comparison && comparison.dfsSteps.length ? comparison.dfsAttempts(Math.min(item, comparison.nItems - 1)) : [];
  const backtracks = run.backtracksOf(item);
  const scores = attempts.map((a) => a.map((p) => p.score));
  const frame = chartFrame({
    title: `Score vs threshold δ_t (item ${item}) · ${backtracks.length} backtrack${backtracks.length === 1 ? "" : "s"}`,
    kind: "dfs", xDomain: [0, Math.max(run.nSteps - 1, 1)], height: 210,
    // Headroom above and below, so δ_t can be dragged past the scores.
    yDomain: extent([scores, curve.map((c) => c[1]), (preview || []).map((c) => c[1]), cmpAttempts.map((a) => a.map((p) => p.score))], 0.25),
    xLabel: "step", yLabel: "reward",
  });
  for (const a of cmpAttempts) frame.plot.appendChild(seriesPath(frame, a.map((p) => [p.step, p.score]), COMPARE_STYLE, true));
  frame.plot.appendChild(seriesPath(frame, curve, { stroke: "#f90", "stroke-width": 2, "stroke-dasharray": "6 3", class: "dsv-threshold" }, true));
  const previewPath = seriesPath(frame, preview || [], { stroke: "#fc6", "stroke-width": 2, class: "dsv-threshold-preview" });
  if (!preview) previewPath.setAttribute("visibility", "hidden");
  frame.plot.appendChild(previewPath);
  attempts.forEach((a, k) => {
    const points = a.map((p) => [p.step, p.score]);
    const color = k === 0 ? FIRST_DIVE : RETRY;
    const line = seriesPath(frame, points, { stroke: color, "stroke-width": k === 0 ? 2.2 : 1.6, "stroke-dasharray": k === 0 ? null : "5 3",
      class: k === 0 ? "dsv-dive dsv-first-dive" : "dsv-dive dsv-retry" }, true);
    line.setAttribute("data-attempt", k);
    frame.plot.append(line, seriesDots(frame, points, { fill: color }));
    const last = a[a.length - 1];
    if (k > 0 && last.score !== null) {
      const nearRight = frame.x(last.step) > frame.margin.left + frame.iw - 50;
      frame.plot.appendChild(svgEl("text", { x: frame.x(last.step) + (nearRight ? -4 : 4), y: frame.y(last.score) - 6,
        "text-anchor": nearRight ? "end" : "start", class: "dsv-dive-label" }, `dive ${k + 1}`));
    }
  });
  for (const b of backtracks) {
    const yb = Number.isFinite(b.score) ? b.score : (curve.find((c) => c[0] === b.step_from) || [0, 0])[1];
    const g = svgEl("g", { class: "dsv-backtrack" });
    g.appendChild(svgEl("path", {
      d: `M${frame.x(b.step_from)},${frame.y(yb)} Q${(frame.x(b.step_from) + frame.x(b.step_to)) / 2},${frame.y(yb) + 24} ${frame.x(b.step_to)},${frame.y(yb)}`,
      fill: "none", stroke: "#f55", "stroke-width": 1.4,
    }));
    g.appendChild(svgEl("text", { x: frame.x(b.step_from), y: frame.y(yb) + 5, "text-anchor": "middle", fill: "#f55" }, "✕"));
    frame.plot.appendChild(g);
  }
  const marks = svgEl("g", { class: "dsv-would-backtrack-marks" });
  const readout = svgEl("text", { x: frame.width - frame.margin.right, y: frame.margin.top + 14, "text-anchor": "end", class: "dsv-drag-readout" }, "");
  frame.plot.append(marks, readout);
  let previewPathRef = previewPath;
  const replacePreview = (d) => {   // keeps a handle on the live preview path across replacements
    const pts = previewThreshold(curve, schedule, d, noiseForm);
    const path = seriesPath(frame, pts, { stroke: "#fc6", "stroke-width": 2, class: "dsv-threshold-preview" });
    previewPathRef.replaceWith(path);
    previewPathRef = path;
    const hits = wouldBacktrack(run, attempts, pts);
    marks.replaceChildren(...hits.map((h) => svgEl("circle", { cx: frame.x(h.step), cy: frame.y(h.score), r: 5, class: "dsv-would-backtrack", "data-step": h.step })));
    readout.textContent = `δ ${formatNumber(recordedDelta)} → ${formatNumber(d)} · ${hits.length} step${hits.length === 1 ? "" : "s"} below the new δ_t`;
    frame.svg.setAttribute("data-would-backtrack", hits.length);
  };
  if (preview) replacePreview(delta);
  // The handle sits on the curve the next run uses (the new one once dropped), at the middle step.
  const mid = curve[Math.floor(curve.length / 2)];
  if (mid && mid[1] !== null && tune.onDrop) {
    const shape = thresholdShape(schedule, mid[2], noiseForm);
    const handle = svgEl("circle", { cx: frame.x(mid[0]), cy: frame.y((preview ? delta : recordedDelta) * shape), r: 7, class: "dsv-handle", "data-handle": "delta" });
    handle.appendChild(svgEl("title", {}, "Drag to move the threshold δ_t (sets the node's delta when released)"));
    frame.plot.appendChild(handle);
    dragVertically(frame, handle, { drag: tune.drag, onMove: (v) => replacePreview(v / shape), onDrop: (v) => tune.onDrop(v / shape) });
  }
  attachReadout(frame, tune.hover, (step) => {
    const parts = attempts.map((a, k) => { const p = a.find((q) => q.step === step); return p ? `dive ${k + 1}: ${formatNumber(p.score)}` : null; }).filter(Boolean);
    const d = curve.find((c) => c[0] === step);
    return { text: `step ${step} · δ_t ${formatNumber(d ? d[1] : null)}${parts.length ? ` · ${parts.join(", ")}` : ""}` };
  });
  frame.svg.setAttribute("data-backtracks", backtracks.length);
  frame.svg.setAttribute("data-attempts", attempts.length);
  return withLegend(frame.svg, [
    { label: "first dive", color: FIRST_DIVE },
    { label: "dive after a backtrack", color: RETRY, dash: true },
    { label: "δ_t of this run", color: "#f90", dash: true },
    { label: "δ_t of the next run", color: "#fc6" },
    { label: "backtrack ✕", color: "#f55" },
    ...(cmpAttempts.length ? [{ label: compareLabel(comparison), color: "#9aa", dash: true }] : []),
  ], "dfs");
}

/** How a comparison run is named in legends: the previous run of the node, or the loaded file. */
export function compareLabel(run) { return run.source === "live" ? "previous run" : `loaded: ${run.source}`; }

/** Whether item's search stopped on the NFE budget: {budget, spent, belowDelta} (the last dive kept below δ_t). */
export function budgetState(run, item) {
  const budget = Number(run.config.nfe_budget);
  const spent = run.nfePerItem()[item] ?? 0;
  if (!Number.isFinite(budget) || budget <= 0) return { budget: null, spent, exhausted: false, belowDelta: false };
  const attempts = run.dfsAttempts(item);
  const last = attempts[attempts.length - 1] || [];
  const belowDelta = last.some((p) => p.score !== null && p.threshold !== null && p.score < p.threshold && isChecked(run.config, p.step, run.nSteps));
  return { budget, spent, exhausted: spent >= budget, belowDelta };
}

/** Evaluations (NFE) spent per item with the budget line; the loaded run's as a second bar. */
export function nfeBars(run, comparison = null) {
  const nfe = run.nfePerItem();
  const cmp = comparison ? comparison.nfePerItem() : [];
  const budget = Number(run.config.nfe_budget);
  const hasBudget = Number.isFinite(budget) && budget > 0;
  const frame = chartFrame({
    title: "Evaluations per item (NFE)", kind: "nfe", height: 150,
    xDomain: [-0.5, Math.max(nfe.length, cmp.length, 1) - 0.5], yDomain: [0, Math.max(1, ...nfe, ...cmp, hasBudget ? budget : 0) * 1.1], xLabel: "item",
  });
  const w = Math.min(28, Math.max(4, (frame.x(1) - frame.x(0)) * 0.35));
  nfe.forEach((v, i) => frame.plot.appendChild(svgEl("rect", {
    x: frame.x(i) - w, y: frame.y(v), width: w, height: frame.y(0) - frame.y(v), fill: hasBudget && v >= budget ? "#f77" : "#6cf", class: "dsv-nfe",
  })));
  cmp.forEach((v, i) => frame.plot.appendChild(svgEl("rect", {
    x: frame.x(i), y: frame.y(v), width: w, height: frame.y(0) - frame.y(v), fill: "#9aa", class: "dsv-nfe-compare",
  })));
  if (hasBudget) {
    frame.plot.appendChild(svgEl("line", { x1: frame.margin.left, x2: frame.margin.left + frame.iw, y1: frame.y(budget), y2: frame.y(budget), class: "dsv-budget" }));
    frame.plot.appendChild(svgEl("text", { x: frame.margin.left + frame.iw - 2, y: frame.y(budget) - 4, "text-anchor": "end", class: "dsv-budget-label" }, `budget ${budget}`));
  }
  const box = withLegend(frame.svg, [{ label: "NFE spent", color: "#6cf" }, ...(hasBudget ? [{ label: "budget spent", color: "#f77" }, { label: "NFE budget", color: "#f55", dash: true }] : []),
    ...(cmp.length ? [{ label: compareLabel(comparison), color: "#9aa" }] : [])], "nfe");
  const notes = nfe.map((_, i) => budgetState(run, i)).map((b, i) => (b.exhausted
    ? `item ${i}: budget spent (${b.spent} of ${b.budget} NFE)${b.belowDelta ? ": the last dive was kept below δ" : ""}` : null)).filter(Boolean);
  if (notes.length) box.appendChild(htmlEl("div", "dsv-budget-note", notes.join(" · ")));
  return box;
}
