// Runs kept across page reloads (browser localStorage, bounded) and what changed between two runs:
// the settings a run used (its start event), their differences, and the reward and NFE differences.

import { formatNumber } from "./search_svg.js";
import { traceProblems } from "./search_validate.js";
import { runFromTrace } from "./search_store.js";

export const STORAGE_KEY = "diffusion_search.runs.v1";
export const STORAGE_LIMIT = 1500000;   // characters of JSON: well inside every browser's 5 MB per origin
const MAX_STORED_RUNS = 30;

/** What a run keeps in storage: its trace plus where it came from and the images its prompt showed. */
function storedForm(run) {
  return { version: 1, key: run.key, node: run.node, node_type: run.nodeType, prompt_id: run.promptId, workflow: run.workflow,
    time: run.time, events: run.events, images: Object.fromEntries(run.imageSets) };
}

/**
 * Writes the finished live runs, newest first, until STORAGE_LIMIT; a run too large for a third of it stays only
 * in this page. Returns how many runs were kept.
 */
export function saveRuns(store, storage = globalThis.localStorage) {
  if (!storage) return 0;
  const runs = [...store.runs.values()].filter((r) => r.source === "live" && r.finished).reverse();
  const kept = [];
  let size = 2;
  for (const run of runs) {
    if (kept.length >= MAX_STORED_RUNS) break;
    const text = JSON.stringify(storedForm(run));
    if (text.length > STORAGE_LIMIT / 3 || size + text.length + 1 > STORAGE_LIMIT) continue;
    kept.push(text);
    size += text.length + 1;
  }
  try {
    storage.setItem(STORAGE_KEY, `[${kept.reverse().join(",")}]`);
    return kept.length;
  } catch (e) {   // quota taken by other extensions: keep nothing rather than half a list
    console.warn("[diffusion_search] could not keep runs in browser storage", e);
    try { storage.removeItem(STORAGE_KEY); } catch { /* storage unusable */ }
    return 0;
  }
}

/** The runs kept by saveRuns, each checked like a loaded file (a bad entry is dropped, not drawn). */
export function loadRuns(storage = globalThis.localStorage) {
  let list;
  try { list = JSON.parse((storage && storage.getItem(STORAGE_KEY)) || "[]"); } catch { return []; }
  if (!Array.isArray(list)) return [];
  const runs = [];
  for (const doc of list.slice(-MAX_STORED_RUNS)) {
    if (!doc || typeof doc !== "object" || typeof doc.key !== "string" || traceProblems(doc).length) continue;
    runs.push(runFromTrace(doc, doc.key, "live"));
  }
  return runs;
}

export function clearSavedRuns(storage = globalThis.localStorage) {
  try { storage && storage.removeItem(STORAGE_KEY); } catch { /* nothing kept */ }
}

const show = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? formatNumber(v)
  : Array.isArray(v) ? (v.length ? v.join(",") : "none") : String(v));

/** The settings a run used, from its start event: [[label, value]] in reading order (absent ones left out). */
export function runSettings(run) {
  const c = run.config;
  const out = [];
  const add = (label, v) => { if (v !== undefined) out.push([label, v]); };
  add("search", run.presetName);
  if (run.algorithm !== "dfs") add("particles", run.nParticles);
  add("steps", run.nSteps);
  if (run.algorithm === "bfs" && c.resampling === "none") {
    add("resampling", "none");   // Best-of-N: λ, temperature and scoring play no part
    add("final pick", c.final_pick);
  } else if (run.algorithm === "bfs") {
    add("λ", c.lam);
    add("temperature", c.temperature);
    add("scoring", c.scoring);
    add("resampling", c.resampling);
    add("resample at", c.resample_at);
    add("ESS threshold", c.ess_threshold ?? undefined);
    add("final pick", c.final_pick);
  }
  if (run.algorithm === "dfs") {
    add("δ", c.delta);
    add("δ schedule", c.delta_schedule);
    add("ΔT", c.backtrack_steps);
    add("NFE budget", c.nfe_budget);
    add("max backtracks", c.max_backtracks ?? undefined);
    add("check from", c.check_from);
  }
  const local = c.local && typeof c.local === "object" ? c.local : null;
  if (local) {
    add("gradient", local.grad_mode);
    add("μ", local.mu);
    add("ρ", local.rho);
    add("Langevin steps", local.steps);
    add("recurrences", local.recur_steps);
    add("local from", local.start_step);
  }
  const v = run.verifiers;
  add("verifier", v.guide ?? undefined);
  add("selecting verifier", v.select ?? undefined);
  add("seed", Number.isInteger(run.start?.seed) ? run.start.seed : undefined);
  return out.map(([label, value]) => [label, show(value)]);
}

/** "particles 4 → 8, λ 10 → 11.5": the settings both runs recorded that differ. */
export function settingsDiff(before, after) {
  const a = new Map(runSettings(before));
  const changes = [];
  for (const [label, value] of runSettings(after)) {
    if (a.has(label) && a.get(label) !== value) changes.push(`${label} ${a.get(label)} → ${value}`);
  }
  return changes;   // settings only one run has (another algorithm's) are not differences of a setting
}

/** Best final reward of `item` and total NFE of a run, and the differences after − before. */
export function outcomeDiff(before, after, item = 0) {
  const best = (r) => r.bestRewards()[Math.min(item, r.nItems - 1)] ?? null;
  const nfe = (r) => (r.final && Number.isFinite(r.final.nfe) ? r.final.nfe : null);
  const delta = (x, y) => (x === null || y === null ? null : y - x);
  return { reward: [best(before), best(after), delta(best(before), best(after))], nfe: [nfe(before), nfe(after), delta(nfe(before), nfe(after))] };
}

/** One line: "vs previous run: particles 4 → 8 · best reward 0.5 → 0.6 (+0.1) · NFE 32 → 64 (+32)". */
export function comparisonText(before, after, item = 0, what = "previous run") {
  const changes = settingsDiff(before, after);
  const { reward, nfe } = outcomeDiff(before, after, item);
  const signed = (v) => (v === null ? "" : ` (${v >= 0 ? "+" : ""}${formatNumber(v)})`);
  return [`vs ${what}: ${changes.length ? changes.join(", ") : "same settings"}`,
    `best reward ${formatNumber(reward[0])} → ${formatNumber(reward[1])}${signed(reward[2])}`,
    `NFE ${show(nfe[0])} → ${show(nfe[1])}${signed(nfe[2])}`].join(" · ");
}
