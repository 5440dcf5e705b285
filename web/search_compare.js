// Comparisons: with the previous run of the same node (what changed, reward and NFE differences) and, when one
// prompt ran several search nodes (the presets side by side), all of them in one view on a shared reward axis.

import { comparisonText } from "./search_history.js";
import { extent, formatNumber, htmlEl, imageEl, layout, niceTicks, particleColor, svgEl } from "./search_svg.js";

/** "vs previous run: particles 4 → 8 · best reward … · NFE …" as a block, or null without a comparison. */
export function comparisonBlock(run, cmp, item, cmpIsPrevious) {
  if (!run || !cmp || !run.finished || !cmp.finished) return null;
  const box = htmlEl("div", "dsv-compare-line");
  box.dataset.compare = cmpIsPrevious ? "previous" : "file";
  box.textContent = comparisonText(cmp, run, item, cmpIsPrevious ? "previous run of this node" : `loaded ${cmp.source}`);
  return box;
}

/**
 * One row per run of the same prompt: its pick, preset, NFE and every candidate's final reward on an axis shared by
 * all rows (best ringed). Clicking a row shows that run. `imageFor(run, item, particle)` gives image URLs.
 */
export function sideBySide(runs, item, { current, imageFor, onPick }) {
  const finished = runs.filter((r) => r.finished);
  if (finished.length < 2) return null;
  const box = htmlEl("section", "dsv-section dsv-side-by-side");
  box.appendChild(htmlEl("h4", "", `${finished.length} searches of this prompt, side by side`));
  const rewards = finished.map((r) => r.ranking(Math.min(item, r.nItems - 1)).map((e) => e.reward));
  const [lo, hi] = extent(rewards, 0.06);
  const width = Math.max(160, layout.width - 210);
  const x = (v) => 8 + ((v - lo) / (hi - lo)) * (width - 16);
  const best = Math.max(...finished.map((r) => r.bestRewards()[Math.min(item, r.nItems - 1)] ?? -Infinity));
  const table = htmlEl("div", "dsv-sbs");
  for (const run of finished) {
    const it = Math.min(item, run.nItems - 1);
    const ranking = run.ranking(it);
    const pick = ranking.find((e) => e.selected) || ranking[0];
    const row = htmlEl("div", run === current ? "dsv-sbs-row dsv-sbs-current" : "dsv-sbs-row");
    row.dataset.run = run.key;
    row.title = "Show this run";
    row.addEventListener("click", () => onPick(run.key));
    const url = pick ? imageFor(run, it, pick.particle) : null;
    if (url) {
      row.appendChild(imageEl(url, "dsv-thumb", `${run.presetName} pick`));
    } else {
      row.appendChild(htmlEl("div", "dsv-thumb dsv-thumb-empty"));
    }
    const label = htmlEl("div", "dsv-sbs-label");
    const top = pick ? pick.reward : null;
    label.append(htmlEl("div", "dsv-sbs-name", `${run.presetName}${top !== null && top === best ? " ★" : ""}`),
      htmlEl("div", "dsv-sbs-meta", `node ${run.node ?? "?"} · best ${formatNumber(top)} · NFE ${run.final?.nfe ?? "?"}`));
    const svg = svgEl("svg", { width, height: 34, viewBox: `0 0 ${width} 34`, class: "dsv-chart dsv-sbs-strip" });
    svg.appendChild(svgEl("line", { x1: 8, x2: width - 8, y1: 17, y2: 17, class: "dsv-strip-axis" }));
    for (const e of ranking) {
      if (e.reward === null) continue;
      svg.appendChild(svgEl("circle", { cx: x(e.reward), cy: 17, r: e.selected ? 6 : 4, fill: particleColor(e.particle),
        stroke: e.selected ? "#fd4" : "none", "stroke-width": 2 }));
    }
    row.append(label, svg);
    table.appendChild(row);
  }
  const axis = svgEl("svg", { width, height: 18, viewBox: `0 0 ${width} 18`, class: "dsv-chart dsv-sbs-axis" });
  for (const t of niceTicks(lo, hi, 4)) axis.appendChild(svgEl("text", { x: x(t), y: 13, "text-anchor": "middle" }, formatNumber(t)));
  const axisRow = htmlEl("div", "dsv-sbs-row dsv-sbs-axis-row");
  axisRow.append(htmlEl("div", "dsv-thumb-spacer"), htmlEl("div", "dsv-sbs-label", "final reward →"), axis);
  table.appendChild(axisRow);
  box.appendChild(table);
  box.dataset.runs = String(finished.length);
  return box;
}
