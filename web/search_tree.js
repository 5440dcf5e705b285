// BFS resampling ancestry as a tree: columns are steps, rows particles; an edge joins each particle
// to the parent it was resampled from, so branching (several children) and dying (none) are visible.

import { emptyNote, extent, formatNumber, layout, svgEl, withLegend } from "./search_svg.js";

/** Children per particle at each step, from the parent lists. */
export function childCounts(parents, n) {
  return parents.map((row) => {
    const counts = Array(n).fill(0);
    for (const p of row) if (p >= 0 && p < n) counts[p] += 1;
    return counts;
  });
}

/** Particles of each step that lie on the lineage of `finalParticle` at the last step. */
export function lineage(parents, finalParticle) {
  const nSteps = parents.length;
  const onPath = Array.from({ length: nSteps }, () => new Set());
  let p = finalParticle;
  for (let s = nSteps - 1; s >= 0; s--) {
    onPath[s].add(p);
    if (s > 0) p = parents[s - 1][p];
  }
  return onPath;
}

/**
 * Keeps only the steps in `columns` (sorted): parents between kept steps are composed, which loses nothing
 * because steps without resampling have identity parents.
 */
export function collapseSteps(parents, scores, columns) {
  const kept = columns.map((s, k) => {
    const next = columns[k + 1];
    if (next === undefined) return parents[s].slice();
    return parents[next - 1].map((_, i) => {
      let p = i;
      for (let t = next - 1; t >= s && p >= 0; t--) p = parents[t][p];
      return p;
    });
  });
  return { parents: kept, scores: scores.map((row) => columns.map((s) => row[s])) };
}

/** Final particles descending from particle `p` of column `s`: anc[s][f] is final particle f's ancestor at s. */
export function descendants(parents, s, p) {
  const last = parents.length - 1;
  const out = [];
  for (let f = 0; f < (parents[last] || []).length; f++) {
    let a = f;
    for (let t = last; t > s && a >= 0; t--) a = parents[t - 1][a];
    if (a === p) out.push(f);
  }
  return out;
}

/** Above this many nodes the tree shows only the first, resampling and last steps. */
const MAX_TREE_NODES = 3000;

/** The ancestry tree of `item`; the selected final particle's lineage is highlighted. */
export function ancestryTree(run, item, { width = layout.width, rowHeight = null, hover = null, imageFor = null } = {}) {
  let parents = run.ancestry(item);
  let scores = run.particleScores(item);
  const n = run.nParticles;
  if (!parents.length) return emptyNote("Waiting for BFS steps…");
  let stepLabels = parents.map((_, s) => s);
  if (n * parents.length > MAX_TREE_NODES) {
    const last = parents.length - 1;
    stepLabels = [...new Set([0, ...run.bfsSteps.flatMap((ev, s) => (ev.resampled ? [s, s + 1] : [])), last])]
      .filter((s) => s <= last).sort((a, b) => a - b);
    const keep = Math.max(2, Math.floor(MAX_TREE_NODES / n));   // still too many (resampling every step): thin evenly
    if (stepLabels.length > keep) {
      stepLabels = [...new Set(Array.from({ length: keep }, (_, k) => stepLabels[Math.round((k * (stepLabels.length - 1)) / (keep - 1))]))];
    }
    ({ parents, scores } = collapseSteps(parents, scores, stepLabels));
  }
  const nSteps = parents.length;
  rowHeight = rowHeight || Math.max(3, Math.min(16, Math.floor(480 / n)));
  const height = Math.max(60, 24 + n * rowHeight);
  const left = 34;
  const colW = nSteps > 1 ? (width - left - 12) / (nSteps - 1) : 0;
  const x = (s) => left + s * colW;
  const y = (p) => 18 + p * rowHeight + rowHeight / 2;
  const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "dsv-chart dsv-tree", "data-chart": "tree" });
  svg.appendChild(svgEl("text", { x: left, y: 12, class: "dsv-title" }, `Resampling ancestry (item ${item})`));
  const selected = run.final && run.final.selected ? run.final.selected[item] : null;
  const path = selected !== null && selected !== undefined && run.finished ? lineage(parents, selected) : null;
  const counts = childCounts(parents, n);
  const [lo, hi] = extent(scores, 0);

  const edges = svgEl("g", { class: "dsv-edges" });
  let edgeCount = 0;
  for (let s = 0; s + 1 < nSteps; s++) {
    parents[s].forEach((parent, child) => {
      if (parent < 0) return;   // an empty slot (pruned beam): no edge
      const hot = path && path[s].has(parent) && path[s + 1].has(child);
      edges.appendChild(svgEl("path", {
        d: `M${x(s)},${y(parent)} C${x(s) + colW / 2},${y(parent)} ${x(s + 1) - colW / 2},${y(child)} ${x(s + 1)},${y(child)}`,
        fill: "none", stroke: hot ? "#fd4" : parent === child ? "#567" : "#89a", "stroke-width": hot ? 2.2 : 1,
        class: hot ? "dsv-edge dsv-lineage" : "dsv-edge",
      }));
      edgeCount += 1;
    });
  }
  svg.appendChild(edges);

  const nodes = svgEl("g", { class: "dsv-nodes" });
  let nodeCount = 0;
  for (let s = 0; s < nSteps; s++) {
    for (let p = 0; p < n; p++) {
      const v = scores[p] ? scores[p][s] : null;
      const t = v === null || hi <= lo ? 0.5 : (v - lo) / (hi - lo);
      const children = s + 1 < nSteps ? counts[s][p] : 1;
      const circle = svgEl("circle", {
        cx: x(s), cy: y(p), r: Math.min(rowHeight / 2, 3) * (children > 1 ? 1 + Math.min(children, 5) / 3 : 1),
        fill: children === 0 ? "#333" : `hsl(${Math.round(220 - 180 * t)}, 70%, 55%)`,
        stroke: path && path[s].has(p) ? "#fd4" : "none", class: children === 0 ? "dsv-node dsv-died" : "dsv-node",
        "data-step": stepLabels[s], "data-particle": p, "data-children": children,
      });
      const tip = svgEl("title", {}, `step ${stepLabels[s]}, particle ${p}, score ${v === null ? "–" : v.toFixed(3)}, children ${children}`);
      circle.appendChild(tip);
      nodes.appendChild(circle);
      nodeCount += 1;
    }
  }
  if (hover) {
    // Hovering a node shows the image of its best final descendant (or says it died).
    nodes.addEventListener("pointerover", (ev) => {
      const c = ev.target;
      if (!c.getAttribute || c.getAttribute("data-particle") === null) return;
      const col = stepLabels.indexOf(Number(c.getAttribute("data-step")));
      const p = Number(c.getAttribute("data-particle"));
      const heirs = descendants(parents, col, p);
      const ranking = run.ranking(item);
      const rankOf = (f) => { const r = ranking.find((e) => e.particle === f); return r ? r.rank : Infinity; };
      const best = heirs.length ? heirs.reduce((a, b) => (rankOf(b) < rankOf(a) ? b : a)) : null;
      const v = scores[p] ? scores[p][col] : null;
      const text = `step ${stepLabels[col]}, particle ${p}, score ${formatNumber(v)} · ` + (heirs.length
        ? `${heirs.length} final descendant${heirs.length > 1 ? "s" : ""}${best !== null && ranking.length ? `, best p${best} (#${rankOf(best) + 1})` : ""}`
        : "no descendant survived");
      hover.show({ text, image: best !== null && imageFor ? imageFor(item, best) : null, particle: best }, ev);
    });
    nodes.addEventListener("pointerout", () => hover.hide());
  }
  if (rowHeight >= 12) for (let p = 0; p < n; p++) svg.appendChild(svgEl("text", { x: 4, y: y(p) + 3, class: "dsv-axis-label" }, `p${p}`));
  svg.appendChild(nodes);
  svg.setAttribute("data-nodes", nodeCount);
  svg.setAttribute("data-edges", edgeCount);
  return withLegend(svg, [{ label: "larger dot: branched", color: "#ccc", hollow: true }, { label: "dark dot: died", color: "#555", hollow: true },
    { label: "lineage of the pick", color: "#fd4" }, { label: "colour: score, blue low → red high", color: "linear-gradient(90deg, hsl(220,70%,55%), hsl(40,70%,55%))" }], "tree");
}
