// Charts of one BFS / local search run (paper §3.1, §3.3): particle scores along their ancestry, ESS, the
// final-reward strip of runs without intermediate scores (Best-of-N), the temperature schedule with its λ handle,
// and local search rewards before/after Langevin. Each has a legend and a hover readout.

import {
  attachReadout, chartFrame, dragVertically, emptyNote, extent, formatNumber, layout, niceTicks, particleColor, seriesDots,
  seriesPath, svgEl, withLegend,
} from "./search_svg.js";

const LEGEND_MAX = 12;

/** Legend entries tying each particle's colour to its final rank and reward (best first, at most LEGEND_MAX). */
function particleLegend(run, item) {
  const ranking = run.ranking(item);
  if (!ranking.length) {
    const n = Math.min(run.nParticles, LEGEND_MAX);
    return Array.from({ length: n }, (_, p) => ({ label: `p${p}`, color: particleColor(p) }));
  }
  const entries = ranking.slice(0, LEGEND_MAX).map((r) => ({
    label: `p${r.particle} #${r.rank + 1} ${formatNumber(r.reward)}${r.selected ? " ★" : ""}`, color: particleColor(r.particle),
    title: `particle ${r.particle}: rank ${r.rank + 1}, final reward ${formatNumber(r.reward)}`,
  }));
  if (ranking.length > LEGEND_MAX) entries.push({ label: `… ${ranking.length - LEGEND_MAX} more`, color: "transparent" });
  return entries;
}

/** True when no BFS step scored anything (Best-of-N: only the final rewards exist). */
export function hasStepScores(run, item) {
  return run.bfsSteps.some((ev) => Array.isArray(ev.scores?.[item]) && ev.scores[item].some((v) => typeof v === "number"));
}

const COMPARE_STYLE = { stroke: "#9aa", "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "dsv-compare" };

/** Mean of the finite numbers in `values`, or null. */
function mean(values) {
  const ok = values.filter((v) => v !== null && Number.isFinite(v));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
}

/**
 * BFS: one line per final particle through its ancestors' scores (shared starts = branching), the final
 * rewards as the last column, and the loaded run's best score per step dashed.
 */
export function bfsScoreChart(run, item, comparison = null, ctx = {}) {
  const rows = run.lineageScores(item);
  const nSteps = rows[0] ? rows[0].length : 0;
  if (!nSteps) return emptyNote("Waiting for BFS steps…");
  const finals = run.final && run.final.rewards ? (run.final.rewards[item] || []) : [];
  const cmpRows = comparison && comparison.bfsSteps.length ? comparison.particleScores(Math.min(item, comparison.nItems - 1)) : null;
  const cmpBest = cmpRows ? cmpRows[0].map((_, s) => {
    const v = Math.max(...cmpRows.map((r) => r[s] ?? -Infinity));
    return Number.isFinite(v) ? v : null;
  }) : null;
  const frame = chartFrame({
    title: `Particle scores per step (item ${item})${finals.length ? "; last column: final" : ""}`, kind: "bfs-scores",
    xDomain: [0, Math.max(nSteps - (finals.length ? 0 : 1), cmpBest ? cmpBest.length - 1 : 1, 1)],
    yDomain: extent([rows, finals, cmpBest || []]), xLabel: "step", yLabel: "reward", height: 200,
  });
  if (cmpBest) frame.plot.appendChild(seriesPath(frame, cmpBest.map((v, s) => [s, v]), COMPARE_STYLE, true));
  const hits = svgEl("g", { class: "dsv-hits" });
  rows.forEach((row, p) => {
    const points = row.map((v, s) => [s, v]);
    if (finals.length) points.push([nSteps, finiteOr(finals[p])]);
    const line = seriesPath(frame, points, { stroke: particleColor(p), "stroke-width": 1.6, class: "dsv-particle" }, true);
    line.setAttribute("data-particle", p);
    frame.plot.append(line, seriesDots(frame, points, { fill: particleColor(p), class: "dsv-point" }));
    // A wide invisible copy takes the pointer: hovering a line shows that particle's image.
    const hit = seriesPath(frame, points, { stroke: "transparent", "stroke-width": 9, class: "dsv-hit" }, true);
    hit.setAttribute("data-particle", p);
    hits.appendChild(hit);
  });
  frame.plot.appendChild(hits);
  attachReadout(frame, ctx.hover, (step, ev) => {
    const hovered = ev.target && ev.target.getAttribute ? ev.target.getAttribute("data-particle") : null;
    const at = (p) => (step >= nSteps ? finiteOr(finals[p]) : rows[p][step]);
    const where = step >= nSteps ? "final" : `step ${step}`;
    if (hovered !== null) {
      const p = Number(hovered);
      return { text: `particle ${p} · ${where} · reward ${formatNumber(at(p))}`, image: ctx.imageFor ? ctx.imageFor(item, p) : null, particle: p };
    }
    const values = rows.map((_, p) => [p, at(p)]).filter(([, v]) => v !== null).sort((a, b) => b[1] - a[1]).slice(0, 6);
    return { text: `${where} · ${values.map(([p, v]) => `p${p} ${formatNumber(v)}`).join(", ") || "not scored"}` };
  });
  frame.svg.setAttribute("data-particles", rows.length);
  frame.svg.setAttribute("data-steps", nSteps);
  const entries = particleLegend(run, item);
  if (cmpBest) entries.push({ label: `best of ${comparison.source === "live" ? "previous run" : comparison.source}`, color: "#9aa", dash: true });
  return withLegend(frame.svg, entries, "particles");
}

/** Best-of-N (no intermediate scores): every particle's final reward on one axis, the pick ringed. */
export function rewardStrip(run, item, ctx = {}) {
  const ranking = run.ranking(item);
  if (!ranking.length) return emptyNote("Best-of-N scores only the finished samples: the rewards appear when the search ends.");
  const width = layout.width;
  const height = 96;
  const values = ranking.map((r) => r.reward).filter((v) => v !== null);
  const [lo, hi] = extent(values, 0.08);
  const left = 20;
  const right = width - 20;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (right - left);
  const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "dsv-chart", "data-chart": "reward-strip" });
  svg.appendChild(svgEl("text", { x: left, y: 15, class: "dsv-title" }, `Final reward of every candidate (item ${item})`));
  const axisY = 62;
  svg.appendChild(svgEl("line", { x1: left, x2: right, y1: axisY, y2: axisY, class: "dsv-strip-axis" }));
  for (const t of niceTicks(lo, hi, 5)) svg.appendChild(svgEl("text", { x: x(t), y: axisY + 22, "text-anchor": "middle" }, formatNumber(t)));
  for (const r of ranking) {
    if (r.reward === null) continue;
    const dot = svgEl("circle", { cx: x(r.reward), cy: axisY - 12, r: r.selected ? 8 : 6, fill: particleColor(r.particle),
      stroke: r.selected ? "#fd4" : "#111", "stroke-width": r.selected ? 3 : 1, class: r.selected ? "dsv-strip-dot dsv-selected-dot" : "dsv-strip-dot",
      "data-particle": r.particle });
    dot.addEventListener("pointerenter", (ev) => ctx.hover && ctx.hover.show({ text: `particle ${r.particle} · rank ${r.rank + 1} · reward ${formatNumber(r.reward)}`,
      image: ctx.imageFor ? ctx.imageFor(item, r.particle) : null, particle: r.particle }, ev));
    dot.addEventListener("pointerleave", () => ctx.hover && ctx.hover.hide());
    svg.appendChild(dot);
  }
  svg.setAttribute("data-particles", ranking.length);
  return withLegend(svg, [...particleLegend(run, item), { label: "picked", color: "#fd4", hollow: true }], "strip");
}

function finiteOr(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }

/** BFS: effective sample size per step, resampling steps marked. */
export function essChart(run, item, ctx = {}) {
  const ess = run.essSeries(item);
  if (!ess.length) return emptyNote("No ESS yet.");
  const frame = chartFrame({
    title: "Effective sample size (ESS)", kind: "ess", height: 150,
    xDomain: [0, Math.max(ess.length - 1, 1)], yDomain: [0, run.nParticles * 1.05], xLabel: "step",
  });
  run.bfsSteps.forEach((ev, s) => {
    if (ev.resampled) frame.plot.appendChild(svgEl("line", { x1: frame.x(s), x2: frame.x(s), y1: frame.y(0), y2: frame.y(run.nParticles), class: "dsv-resample" }));
  });
  const points = ess.map((v, s) => [s, v]);
  frame.plot.append(seriesPath(frame, points, { stroke: "#6cf", "stroke-width": 2 }, true), seriesDots(frame, points, { fill: "#6cf" }));
  attachReadout(frame, ctx.hover, (step) => ({ text: `step ${step} · ESS ${formatNumber(ess[step] ?? null)} of ${run.nParticles}${run.bfsSteps[step]?.resampled ? " · resampled" : ""}` }));
  return withLegend(frame.svg, [{ label: "ESS", color: "#6cf" }, { label: "resampling step", color: "#c66", dash: true }], "ess");
}

/** Local search: per level (denoising step), each particle's reward before (hollow) and after (filled) the Langevin steps. */
export function localChart(run, item, comparison = null, ctx = {}) {
  const levels = run.localLevels(item);
  if (!levels.length) return emptyNote("No local search levels yet.");
  const cmpLevels = comparison && comparison.local.length ? comparison.localLevels(Math.min(item, comparison.nItems - 1)) : [];
  const stepsShown = [...levels, ...cmpLevels].map((l) => l.step);
  const frame = chartFrame({
    title: `Reward before → after Langevin (item ${item})`, kind: "local",
    xDomain: [Math.min(...stepsShown) - 0.5, Math.max(...stepsShown) + 0.5],
    yDomain: extent([levels.map((l) => [l.before, l.after]), cmpLevels.map((l) => l.after)]), xLabel: "step", yLabel: "reward",
  });
  if (cmpLevels.length) frame.plot.appendChild(seriesPath(frame, cmpLevels.map((l) => [l.step, mean(l.after)]), COMPARE_STYLE, true));
  for (const lvl of levels) {
    const n = Math.max(lvl.before.length, lvl.after.length);
    for (let p = 0; p < n; p++) {
      const dx = n > 1 ? ((p / (n - 1)) - 0.5) * 0.5 : 0;
      const [b, a] = [lvl.before[p] ?? null, lvl.after[p] ?? null];
      const cx = frame.x(lvl.step + dx);
      if (b !== null && a !== null) frame.plot.appendChild(svgEl("line", { x1: cx, x2: cx, y1: frame.y(b), y2: frame.y(a), stroke: particleColor(p), "stroke-width": 1.2 }));
      if (b !== null) frame.plot.appendChild(svgEl("circle", { cx, cy: frame.y(b), r: 2.5, fill: "none", stroke: particleColor(p), class: "dsv-before" }));
      if (a !== null) frame.plot.appendChild(svgEl("circle", { cx, cy: frame.y(a), r: 2.5, fill: particleColor(p), class: "dsv-after" }));
    }
  }
  frame.plot.appendChild(seriesPath(frame, levels.map((l) => [l.step, mean(l.after)]), { stroke: "#eee", "stroke-width": 1.2, "stroke-dasharray": "3 2" }, true));
  attachReadout(frame, ctx.hover, (step) => {
    const lvl = levels.find((l) => l.step === step);
    if (!lvl) return { text: `step ${step}: no local search` };
    return { text: `step ${step} · mean reward ${formatNumber(mean(lvl.before))} → ${formatNumber(mean(lvl.after))} after Langevin` };
  });
  frame.svg.setAttribute("data-levels", levels.length);
  const entries = [{ label: "before Langevin", color: "#ccc", hollow: true }, { label: "after", color: "#ccc", dot: true }, { label: "mean after", color: "#eee", dash: true },
    ...(cmpLevels.length ? [{ label: `mean after, ${comparison.source === "live" ? "previous run" : comparison.source}`, color: "#9aa", dash: true }] : [])];
  return withLegend(frame.svg, entries, "local");
}

/**
 * The temperature schedule λ_t the run used, and the one a new λ gives (λ_t is proportional to λ for every
 * schedule). Dragging the handle at the last resampling step rescales λ live; `onDrop(λ)` writes it.
 */
export function temperatureChart(run, { lam = null, onDrop = null, drag = {}, hover = null } = {}) {
  const temps = run.temperatureSeries();
  if (!temps.some((t) => t !== null)) return emptyNote("No temperature recorded (λ = ∞: greedy, or no resampling step yet).");
  const oldLam = Number(run.config.lam);
  const scaleOf = (l) => (Number.isFinite(oldLam) && oldLam !== 0 && Number.isFinite(l) ? l / oldLam : null);
  const scale = lam !== null && lam !== oldLam ? scaleOf(lam) : null;
  const preview = scale !== null ? temps.map((t) => (t === null ? null : t * scale)) : null;
  const top = Math.max(...temps.filter((t) => t !== null), ...(preview || []).filter((t) => t !== null), 1e-9);
  const frame = chartFrame({
    title: `Temperature schedule λ_t${Number.isFinite(oldLam) ? ` (this run: λ = ${formatNumber(oldLam)})` : ""}`, kind: "temperature", height: 160,
    // Room above the curve: the handle can raise λ by half again before the chart rescales.
    xDomain: [0, Math.max(temps.length - 1, 1)], yDomain: [0, top * 1.5], xLabel: "step", yLabel: "λ_t",
  });
  const points = temps.map((t, s) => [s, t]);
  frame.plot.append(seriesPath(frame, points, { stroke: "#c8f", "stroke-width": 2, "stroke-dasharray": "6 3", class: "dsv-temperature" }, true),
    seriesDots(frame, points, { fill: "#c8f" }));
  let previewPath = seriesPath(frame, (preview || []).map((t, s) => [s, t]), { stroke: "#fc6", "stroke-width": 2, class: "dsv-temperature-preview" }, true);
  frame.plot.appendChild(previewPath);
  const readout = svgEl("text", { x: frame.width - frame.margin.right, y: frame.margin.top + 14, "text-anchor": "end", class: "dsv-drag-readout" },
    preview ? `λ ${formatNumber(oldLam)} → ${formatNumber(lam)}` : "");
  frame.plot.appendChild(readout);
  const showLam = (l) => {
    const path = seriesPath(frame, temps.map((t, s) => [s, t === null ? null : t * scaleOf(l)]), { stroke: "#fc6", "stroke-width": 2, class: "dsv-temperature-preview" }, true);
    previewPath.replaceWith(path);
    previewPath = path;
    readout.textContent = `λ ${formatNumber(oldLam)} → ${formatNumber(l)}`;
    frame.svg.setAttribute("data-lam-preview", l);
  };
  let last = temps.length - 1;
  while (last > 0 && temps[last] === null) last -= 1;   // the handle sits on the last recorded temperature
  if (onDrop && scaleOf(1) !== null && temps[last] !== null && temps[last] > 0) {
    const handle = svgEl("circle", { cx: frame.x(last), cy: frame.y((preview || temps)[last]), r: 7, class: "dsv-handle", "data-handle": "lam" });
    handle.appendChild(svgEl("title", {}, "Drag to rescale the temperature schedule (sets the node's lam when released)"));
    frame.plot.appendChild(handle);
    const lamAt = (v) => Math.max(0, (oldLam * v) / temps[last]);
    dragVertically(frame, handle, { drag, onMove: (v) => showLam(lamAt(v)), onDrop: (v) => onDrop(lamAt(v)) });
  }
  attachReadout(frame, hover, (step) => ({ text: `step ${step} · λ_t ${formatNumber(temps[step] ?? null)}${preview ? ` → ${formatNumber(preview[step] ?? null)}` : ""}` }));
  return withLegend(frame.svg, [{ label: "λ_t of this run", color: "#c8f", dash: true }, { label: "λ_t of the next run", color: "#fc6" }], "temperature");
}
