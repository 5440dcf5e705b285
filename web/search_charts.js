// Charts of one search run: BFS particle scores and ESS, DFS score against δ_t with backtracks,
// evaluations per item, and local search rewards before/after Langevin (paper §3-4).

import { chartFrame, emptyNote, extent, particleColor, seriesDots, seriesPath, svgEl } from "./search_svg.js";

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
export function bfsScoreChart(run, item, comparison = null) {
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
    yDomain: extent([rows, finals, cmpBest || []]), xLabel: "step", yLabel: "reward",
  });
  if (cmpBest) frame.plot.appendChild(seriesPath(frame, cmpBest.map((v, s) => [s, v]), COMPARE_STYLE, true));
  rows.forEach((row, p) => {
    const points = row.map((v, s) => [s, v]);
    if (finals.length) points.push([nSteps, finiteOr(finals[p])]);
    const line = seriesPath(frame, points, { stroke: particleColor(p), "stroke-width": 1.5, class: "dsv-particle" }, true);
    line.setAttribute("data-particle", p);
    frame.plot.append(line, seriesDots(frame, points, { fill: particleColor(p), class: "dsv-point" }));
  });
  frame.svg.setAttribute("data-particles", rows.length);
  frame.svg.setAttribute("data-steps", nSteps);
  return frame.svg;
}

function finiteOr(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }

/** BFS: effective sample size per step, resampling steps marked. */
export function essChart(run, item) {
  const ess = run.essSeries(item);
  if (!ess.length) return emptyNote("No ESS yet.");
  const frame = chartFrame({
    title: "Effective sample size", kind: "ess", height: 120,
    xDomain: [0, Math.max(ess.length - 1, 1)], yDomain: [0, run.nParticles * 1.05], xLabel: "step",
  });
  run.bfsSteps.forEach((ev, s) => {
    if (ev.resampled) frame.plot.appendChild(svgEl("line", { x1: frame.x(s), x2: frame.x(s), y1: frame.y(0), y2: frame.y(run.nParticles), class: "dsv-resample" }));
  });
  const points = ess.map((v, s) => [s, v]);
  frame.plot.append(seriesPath(frame, points, { stroke: "#6cf", "stroke-width": 2 }, true), seriesDots(frame, points, { fill: "#6cf" }));
  return frame.svg;
}

/**
 * DFS: each dive is a line of scores over steps, δ_t is the threshold curve, each backtrack an arrow
 * from the step where the score fell below δ_t back to the step it restarted from.
 */
export function dfsChart(run, item, comparison = null, thresholdPreview = null) {
  const attempts = run.dfsAttempts(item);
  if (!attempts.length) return { svg: emptyNote("Waiting for DFS steps…"), frame: null };
  const curve = run.thresholdCurve(item);
  const cmpAttempts = comparison && comparison.dfsSteps.length ? comparison.dfsAttempts(Math.min(item, comparison.nItems - 1)) : [];
  const allScores = [attempts.map((a) => a.map((p) => p.score)), curve.map((c) => c[1]), (thresholdPreview || []).map((c) => c[1]),
    cmpAttempts.map((a) => a.map((p) => p.score))];
  const frame = chartFrame({
    title: `Score vs threshold δ_t (item ${item})`, kind: "dfs", xDomain: [0, Math.max(run.nSteps - 1, 1)],
    yDomain: extent(allScores, 0.1), xLabel: "step", yLabel: "reward",
  });
  for (const a of cmpAttempts) frame.plot.appendChild(seriesPath(frame, a.map((p) => [p.step, p.score]), COMPARE_STYLE, true));
  frame.plot.appendChild(seriesPath(frame, curve, { stroke: "#f90", "stroke-width": 2, "stroke-dasharray": "6 3", class: "dsv-threshold" }, true));
  if (thresholdPreview) frame.plot.appendChild(seriesPath(frame, thresholdPreview, { stroke: "#fc6", "stroke-width": 2, class: "dsv-threshold-preview" }));
  attempts.forEach((a, k) => {
    const points = a.map((p) => [p.step, p.score]);
    const line = seriesPath(frame, points, { stroke: particleColor(k), "stroke-width": 1.8, class: "dsv-dive" }, true);
    line.setAttribute("data-attempt", k);
    frame.plot.append(line, seriesDots(frame, points, { fill: particleColor(k) }));
  });
  const backtracks = run.backtracksOf(item);
  for (const b of backtracks) {
    const yb = Number.isFinite(b.score) ? b.score : (curve.find((c) => c[0] === b.step_from) || [0, 0])[1];
    const g = svgEl("g", { class: "dsv-backtrack" });
    g.appendChild(svgEl("path", {
      d: `M${frame.x(b.step_from)},${frame.y(yb)} Q${(frame.x(b.step_from) + frame.x(b.step_to)) / 2},${frame.y(yb) + 22} ${frame.x(b.step_to)},${frame.y(yb)}`,
      fill: "none", stroke: "#f55", "stroke-width": 1.2,
    }));
    g.appendChild(svgEl("text", { x: frame.x(b.step_from), y: frame.y(yb) + 4, "text-anchor": "middle", fill: "#f55" }, "✕"));
    frame.plot.appendChild(g);
  }
  frame.svg.setAttribute("data-backtracks", backtracks.length);
  frame.svg.setAttribute("data-attempts", attempts.length);
  return { svg: frame.svg, frame };
}

/** Evaluations (NFE) spent per item; the loaded run's as a second bar. */
export function nfeBars(run, comparison = null) {
  const nfe = run.nfePerItem();
  const cmp = comparison ? comparison.nfePerItem() : [];
  const frame = chartFrame({
    title: "Evaluations per item (NFE)", kind: "nfe", height: 120,
    xDomain: [-0.5, Math.max(nfe.length, cmp.length) - 0.5], yDomain: [0, Math.max(1, ...nfe, ...cmp) * 1.1], xLabel: "item",
  });
  const w = Math.min(24, Math.max(4, (frame.x(1) - frame.x(0)) * 0.35));
  nfe.forEach((v, i) => frame.plot.appendChild(svgEl("rect", {
    x: frame.x(i) - w, y: frame.y(v), width: w, height: frame.y(0) - frame.y(v), fill: "#6cf", class: "dsv-nfe",
  })));
  cmp.forEach((v, i) => frame.plot.appendChild(svgEl("rect", {
    x: frame.x(i), y: frame.y(v), width: w, height: frame.y(0) - frame.y(v), fill: "#9aa", class: "dsv-nfe-compare",
  })));
  return frame.svg;
}

/** Local search: per level (denoising step), each particle's reward before (hollow) and after (filled) the Langevin steps. */
export function localChart(run, item, comparison = null) {
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
  frame.plot.appendChild(seriesPath(frame, levels.map((l) => [l.step, mean(l.after)]), { stroke: "#eee", "stroke-width": 1, "stroke-dasharray": "2 2" }, true));
  frame.svg.setAttribute("data-levels", levels.length);
  return frame.svg;
}
