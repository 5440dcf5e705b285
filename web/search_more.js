// "Search more": double the budget widget of the node that ran the shown search and queue the workflow again.
// The nodes keep the finished search (docs/extend.md): the new run reuses it instead of starting over.

import { findWidget, setWidgetValue } from "./search_tuning.js";

/** {name, from, to} that "Search more" would set on `node` for `run`, or null when it has no budget to raise. */
export function moreBudget(run, node) {
  if (!run || !node) return null;
  const name = run.algorithm === "dfs" ? "nfe_budget" : "particles";
  const widget = findWidget(node, name);
  if (!widget) return null;
  let from = Number(widget.value);
  if (name === "nfe_budget" && !(from > 0)) from = Number(run.start?.config?.nfe_budget);   // 0: the run's default
  if (!Number.isFinite(from) || from < 1) return null;
  const max = Number.isFinite(widget.options?.max) ? widget.options.max : Infinity;
  const to = Math.min(max, Math.round(2 * from));
  return to > from ? { name, from, to } : null;
}

const SEEDS = ["seed", "noise_seed"];

function link(graph, id) {
  const links = graph && graph.links;
  if (!links || id === null || id === undefined) return null;
  return typeof links.get === "function" ? links.get(id) : links[id];
}

/** The nodes whose seed fed the run: the node itself (KSampler (Search)), the sampler it plugs into
 * (SamplerCustom's noise_seed) and that one's noise source (SamplerCustomAdvanced's RandomNoise). */
export function seedNodes(app, node) {
  const graph = app && app.graph;
  const found = [node];
  for (const output of node.outputs || []) {
    for (const id of output.links || []) {
      const target = graph && graph.getNodeById(link(graph, id)?.target_id);
      if (!target) continue;
      found.push(target);
      const noise = (target.inputs || []).find((i) => i.name === "noise");
      const source = noise && graph.getNodeById(link(graph, noise.link)?.origin_id);
      if (source) found.push(source);
    }
  }
  return found.filter((n) => SEEDS.some((name) => findWidget(n, name)));
}

/** Sets the doubled budget, puts back the run's seed with its control on "fixed" (a randomized seed after the
 * first queue would start another search), and queues the open workflow (both UIs: app.queuePrompt). */
export async function searchMore(app, run, node) {
  const change = moreBudget(run, node);
  if (!change) return null;
  const seed = Number(run.start?.seed);
  for (const holder of seedNodes(app, node)) {
    const name = SEEDS.find((n) => findWidget(holder, n));
    if (Number.isFinite(seed)) findWidget(holder, name).value = seed;
    const control = findWidget(holder, "control_after_generate");
    if (control) control.value = "fixed";
  }
  setWidgetValue(node, change.name, change.to);
  await app.queuePrompt(0, 1);
  return change;
}
