// The result, first thing in the panel: the final pick (large), every final candidate in a grid (click to enlarge),
// why the pick won (rule, verifier, reward; the selecting verifier with dual verifiers), and the settings the run
// actually used (from its start event, not the node's widgets now).

import { runSettings } from "./search_history.js";
import { formatNumber, htmlEl, imageEl, particleColor } from "./search_svg.js";

/** One sentence on why the selected particle of `item` was picked. */
export function whyPicked(run, item) {
  const ranking = run.ranking(item);
  const pick = ranking.find((r) => r.selected) || ranking[0];
  if (!pick) return "";
  const { guide, select } = run.verifiers;
  const judge = select || guide;
  const by = judge ? `by ${judge}` : "by the verifier";
  const dual = select ? ` (dual verifiers: ${guide || "the guide verifier"} steered the search, ${select} picked)` : "";
  const reward = `reward ${formatNumber(pick.reward)}`;
  if (run.algorithm === "dfs") {
    return `The completed dive, ${reward} ${by}${dual}: DFS keeps the sample that finished at or above δ_t, or the last dive once the NFE budget is spent.`;
  }
  const of = `${ranking.length} final candidate${ranking.length === 1 ? "" : "s"}`;
  if (run.config.final_pick === "sample") {
    return `Drawn from the ${of} with probability ∝ exp(λ·reward) ${by} (final_pick = sample); ${reward}, rank #${pick.rank + 1}${dual}.`;
  }
  const runnerUp = ranking.find((r) => !r.selected);
  const margin = runnerUp && pick.reward !== null && runnerUp.reward !== null ? `, ${formatNumber(pick.reward - runnerUp.reward)} above the next` : "";
  return `Highest ${reward} of the ${of} ${by}${margin} (rule: best of the final candidates)${dual}.`;
}

/**
 * The result block of `run`, item `item`. `ctx` = {imageFor(item, particle) -> URL|null, previewUrl, enlarge(url, caption)}.
 */
export function resultSection(run, item, ctx) {
  const box = htmlEl("section", "dsv-section dsv-result");
  box.appendChild(htmlEl("h4", "", `Result · ${run.presetName}`));
  const ranking = run.ranking(item);
  const pick = ranking.find((r) => r.selected) || ranking[0];
  const top = htmlEl("div", "dsv-pick");
  const pickUrl = pick ? ctx.imageFor(item, pick.particle) : null;
  const url = pickUrl || (!run.finished ? ctx.previewUrl : null);
  const frame = htmlEl("div", "dsv-pick-image");
  if (url) {
    const img = imageEl(url, "dsv-pick-img", pick ? `picked particle ${pick.particle}` : "live preview");
    img.title = "Click to enlarge";
    img.addEventListener("click", () => ctx.enlarge(url, img.alt));
    frame.appendChild(img);
  } else {
    frame.appendChild(htmlEl("div", "dsv-noimage", run.finished ? "No image: add a Preview/Save Image of the result" : "Searching…"));
  }
  const text = htmlEl("div", "dsv-pick-text");
  if (pick) {
    const title = htmlEl("div", "dsv-pick-title", `Picked particle ${pick.particle} · reward ${formatNumber(pick.reward)} · #${pick.rank + 1} of ${ranking.length}`);
    text.append(title, htmlEl("div", "dsv-why", whyPicked(run, item)));
  } else {
    text.appendChild(htmlEl("div", "dsv-pick-title", run.finished ? "No ranking in the final event." : `Running… ${run.events.length} events`));
  }
  text.appendChild(settingsList(run));
  top.append(frame, text);
  box.appendChild(top);
  if (ranking.length > 1) box.appendChild(candidateGrid(run, item, ranking, ctx));
  return box;
}

/** The settings the run used, as name/value chips. */
export function settingsList(run) {
  const list = htmlEl("div", "dsv-settings");
  list.dataset.settings = "run";
  for (const [label, value] of runSettings(run)) {
    const chip = htmlEl("span", "dsv-setting");
    chip.dataset.setting = label;
    chip.append(htmlEl("span", "dsv-setting-name", label), document.createTextNode(` ${value}`));
    list.appendChild(chip);
  }
  return list;
}

/** Every final candidate, best first: image (or a coloured tile), rank, particle and reward; click to enlarge. */
function candidateGrid(run, item, ranking, ctx) {
  const grid = htmlEl("ol", "dsv-ranking dsv-grid");
  for (const entry of ranking) {
    const li = htmlEl("li", entry.selected ? "dsv-rank dsv-selected" : "dsv-rank");
    li.dataset.particle = String(entry.particle);
    li.style.setProperty("--c", particleColor(entry.particle));
    const url = ctx.imageFor(item, entry.particle);
    const caption = `#${entry.rank + 1} p${entry.particle} · ${formatNumber(entry.reward)}${entry.selected ? " ★" : ""}`;
    if (url) {
      const img = imageEl(url, "dsv-thumb", `particle ${entry.particle}`);
      img.title = "Click to enlarge";
      img.addEventListener("click", () => ctx.enlarge(url, `${run.presetName}: ${caption}`));
      li.appendChild(img);
    } else {
      li.appendChild(htmlEl("div", "dsv-thumb dsv-thumb-empty"));
    }
    const text = htmlEl("span", "dsv-caption", `#${entry.rank + 1} · p${entry.particle}${entry.selected ? " ★" : ""}`);
    text.append(htmlEl("br"), document.createTextNode(formatNumber(entry.reward)));
    li.appendChild(text);
    grid.appendChild(li);
  }
  return grid;
}
