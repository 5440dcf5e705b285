// Event store for the search view: groups `diffusion_search.event` messages into runs and
// derives what the charts draw. Plain data, no DOM (docs/design.md, "Trace events").

import { LIMITS, TRACE_VERSION, parseTrace } from "./search_validate.js";

export { TRACE_VERSION, parseTrace };
const ALGORITHMS = new Set(["bfs", "dfs", "local"]);
const MAX_RUNS = 40;

// Names people know the presets by (search_core/presets.py names them in lower case).
const PRESET_NAMES = { bfs: "BFS", best_of_n: "Best-of-N", fk: "FK steering", das: "DAS", treeg: "TreeG", svdd: "SVDD", custom: "Custom BFS" };

/** One search run: the events of one node in one prompt (or one loaded trace file). */
export class SearchRun {
  constructor(key, { node = null, promptId = null, source = "live", nodeType = null, workflow = null, time = Date.now() } = {}) {
    this.key = key;
    this.node = node;
    this.promptId = promptId;
    this.source = source;
    this.nodeType = nodeType;   // class_type of the node that ran it (events' node_type)
    this.workflow = workflow;   // the workflow open when it started (see EventStore.workflow)
    this.time = time;
    this.events = [];
    this.start = null;
    this.bfsSteps = [];   // BFS / local `step` events, in order
    this.dfsSteps = [];   // DFS `step` events (one diving particle per item)
    this.backtracks = [];
    this.local = [];
    this.final = null;
    this.merged = null;   // an extension's `extend` event: every candidate of the kept search and of this run
    this.algorithm = null;
    this.imageSets = new Map();   // output node id -> images it showed ({filename, subfolder, type})
  }

  /** Adds one trace event; unknown types are kept (for saving) but not drawn. */
  add(event) {
    this.events.push(event);
    if (event.algorithm && ALGORITHMS.has(event.algorithm) && !this.algorithm) this.algorithm = event.algorithm;
    switch (event.type) {
      case "start":
        this.start = event;
        this.algorithm = event.algorithm || this.algorithm;
        if (typeof event.node_type === "string") this.nodeType = event.node_type;
        break;
      case "step":
        if (event.algorithm === "dfs" || (event.item !== undefined && event.scores === undefined)) this.dfsSteps.push(event);
        else this.bfsSteps.push(event);
        break;
      case "backtrack": this.backtracks.push(event); break;
      case "local": this.local.push(event); break;
      case "final": this.final = event; break;
      case "extend": this.merged = event; break;
      default: break;
    }
  }

  // Counts are clamped to the limits of search_validate.js: a bad live event must not allocate millions of rows.
  get nItems() { return clampCount(this.rawItems(), LIMITS.items); }
  get nParticles() { return clampCount(this.rawParticles(), Math.floor(LIMITS.slots / this.nItems)); }
  get nSteps() { return clampCount(this.rawSteps(), LIMITS.steps); }

  rawItems() {
    if (this.start && Number.isInteger(this.start.n_items)) return this.start.n_items;
    const s = this.bfsSteps[0];
    if (s && Array.isArray(s.scores)) return s.scores.length;
    if (this.final && Array.isArray(this.final.rewards)) return this.final.rewards.length;
    let last = 0;
    for (const e of this.dfsSteps) if (Number.isInteger(e.item)) last = Math.max(last, e.item);
    return 1 + last;
  }

  rawParticles() {
    if (this.start && Number.isInteger(this.start.n_particles)) return this.start.n_particles;
    const s = this.bfsSteps[0];
    if (s && Array.isArray(s.scores) && Array.isArray(s.scores[0])) return s.scores[0].length;
    return this.final && Array.isArray(this.final.rewards?.[0]) ? this.final.rewards[0].length : 1;
  }

  rawSteps() {
    if (this.start && Number.isInteger(this.start.n_steps)) return this.start.n_steps;
    let last = -1;
    for (const e of this.dfsSteps) if (Number.isInteger(e.step)) last = Math.max(last, e.step);
    return Math.max(this.bfsSteps.length, 1 + last);
  }

  get finished() { return this.final !== null; }

  get config() { const c = this.start && this.start.config; return c && typeof c === "object" ? c : {}; }

  /** The preset (BFS), else the algorithm, as people name it: the run's title. */
  get presetName() {
    if (this.algorithm === "dfs") return this.local.length ? "DFS + local search" : "DFS";
    if (this.algorithm === "local") return "Local search";
    const preset = this.config.preset;
    const name = typeof preset === "string" ? (PRESET_NAMES[preset] || preset) : "BFS";
    return this.local.length || this.config.local ? `${name} + local search` : name;
  }

  /** Identity of the node that ran it: workflow + node id + node type (ids repeat across workflows). */
  get identity() { return `${this.workflow ?? "?"}|${this.node ?? "?"}|${this.nodeType ?? "?"}`; }

  /** Verifier names of the start event (nodes/ adds them), {guide, select}. */
  get verifiers() {
    const v = this.start && this.start.verifiers;
    return { guide: v && typeof v.guide === "string" ? v.guide : null, select: v && typeof v.select === "string" ? v.select : null };
  }

  /** Score of every particle of `item` per BFS step: [particle][stepIndex] (null where not scored). */
  particleScores(item) {
    const n = this.nParticles;
    const rows = Array.from({ length: n }, () => []);
    for (const ev of this.bfsSteps) {
      const scores = (ev.scores && ev.scores[item]) || [];
      for (let p = 0; p < n; p++) rows[p].push(finiteOrNull(scores[p]));
    }
    return rows;
  }

  /**
   * Each final particle's history: the score of its ancestor at every BFS step, [particle][step] (null where
   * not scored). Particles that share an ancestor share the start of their line, so branching shows.
   */
  lineageScores(item) {
    const scores = this.particleScores(item);
    const parents = this.ancestry(item);
    const nSteps = parents.length;
    return Array.from({ length: this.nParticles }, (_, p) => {
      const line = Array(nSteps).fill(null);
      let slot = p;
      for (let s = nSteps - 1; s >= 0; s--) {
        line[s] = scores[slot] ? scores[slot][s] : null;
        if (s > 0) slot = parents[s - 1][slot];
      }
      return line;
    });
  }

  /** ESS per BFS step for `item`. */
  essSeries(item) { return this.bfsSteps.map((ev) => finiteOrNull(ev.ess && ev.ess[item])); }

  /** Temperature per BFS step (the schedule that was used). */
  temperatureSeries() { return this.bfsSteps.map((ev) => finiteOrNull(ev.temperature)); }

  /**
   * Parent of each particle per BFS step for `item`: parents[s][i] is the particle of step s
   * that particle i of step s+1 descends from (identity where no resampling happened).
   */
  ancestry(item) {
    const n = this.nParticles;
    return this.bfsSteps.map((ev) => {
      const row = ev.resampled && ev.ancestors && ev.ancestors[item];
      return Array.from({ length: n }, (_, i) => (row && Number.isInteger(row[i]) ? row[i] : i));
    });
  }

  /** DFS dives of `item`: one list of {step, score, threshold, nfe} per attempt, split at each backtrack. */
  dfsAttempts(item) {
    const attempts = [];
    let current = [];
    let lastStep = -Infinity;
    for (const ev of this.dfsSteps) {
      if ((ev.item || 0) !== item) continue;
      if (ev.step <= lastStep && current.length) { attempts.push(current); current = []; }
      current.push({ step: ev.step, score: finiteOrNull(ev.score), threshold: finiteOrNull(ev.threshold), nfe: ev.nfe });
      lastStep = ev.step;
    }
    if (current.length) attempts.push(current);
    return attempts;
  }

  /** δ_t per step for `item` (last value seen at each step): [[step, δ_t, σ]]. */
  thresholdCurve(item) {
    const curve = new Map();
    for (const ev of this.dfsSteps) {
      if ((ev.item || 0) === item) curve.set(ev.step, [ev.step, finiteOrNull(ev.threshold), finiteOrNull(ev.sigma)]);
    }
    return [...curve.values()].sort((a, b) => a[0] - b[0]);
  }

  backtracksOf(item) { return this.backtracks.filter((b) => (b.item || 0) === item); }

  /** Denoiser evaluations per item: from `final`, else the last NFE seen per DFS item. */
  nfePerItem() {
    if (this.final && Array.isArray(this.final.nfe_per_item)) return this.final.nfe_per_item.slice();
    const out = Array(this.nItems).fill(0);
    for (const ev of this.dfsSteps) out[ev.item || 0] = Math.max(out[ev.item || 0], ev.nfe || 0);
    return out;
  }

  /** Local-search levels for `item`: [{step, before: [...], after: [...]}]. */
  localLevels(item) {
    return this.local.map((ev) => ({
      step: ev.step,
      before: ((ev.reward_before && ev.reward_before[item]) || []).map(finiteOrNull),
      after: ((ev.reward_after && ev.reward_after[item]) || []).map(finiteOrNull),
    }));
  }

  /** Final ranking of `item`: [{particle, reward, rank, selected}] best first. */
  /** Final candidates per item: this run's particles, or with an extension every candidate of both runs. */
  get nCandidates() {
    const row = this.merged && Array.isArray(this.merged.rewards?.[0]) ? this.merged.rewards[0] : null;
    return row ? clampCount(row.length, Math.floor(LIMITS.slots / this.nItems)) : this.nParticles;
  }

  ranking(item) {
    const final = this.merged || this.final;
    if (!final) return [];
    const rewards = (final.rewards && final.rewards[item]) || [];
    const order = (final.order && final.order[item]) || rewards.map((_, i) => i);
    const selected = final.selected ? final.selected[item] : order[0];
    return order.map((p, rank) => ({ particle: p, reward: finiteOrNull(rewards[p]), rank, selected: p === selected }));
  }

  /**
   * Thumbnails for the ranking: an output node's images with one per candidate (B·N, ranked best first per item,
   * as the search KSampler's candidates and the rank node give them), else one per item. Returns {images, perRank}.
   */
  rankedImages() {
    const sets = [...this.imageSets.values()];
    const all = sets.find((imgs) => imgs.length === this.nItems * this.nCandidates);
    if (all) return { images: all, perRank: true };
    const best = sets.find((imgs) => imgs.length === this.nItems);
    return best ? { images: best, perRank: false } : { images: [], perRank: false };
  }

  /** Best final reward per item, for comparing runs. */
  bestRewards() {
    return Array.from({ length: this.nItems }, (_, b) => {
      const r = this.ranking(b)[0];
      return r ? r.reward : null;
    });
  }

  /** The trace document saved to disk (same shape the all-in-one node returns). */
  toTrace() {
    return { version: TRACE_VERSION, node: this.node, node_type: this.nodeType, prompt_id: this.promptId, events: this.events };
  }
}

/** A run from a checked trace document (a loaded file or a run kept in browser storage). */
export function runFromTrace(doc, key, source) {
  const run = new SearchRun(key, { node: doc.node ?? null, promptId: doc.prompt_id ?? null, source,
    nodeType: typeof doc.node_type === "string" ? doc.node_type : null, workflow: doc.workflow ?? null,
    time: Number.isFinite(doc.time) ? doc.time : Date.now() });
  for (const ev of doc.events) run.add(ev);
  if (doc.images && typeof doc.images === "object") {
    for (const [nodeId, images] of Object.entries(doc.images)) {
      if (Array.isArray(images) && images.length <= LIMITS.slots) run.imageSets.set(String(nodeId), images.filter(isImageRef));
    }
  }
  return run;
}

function isImageRef(i) { return i && typeof i === "object" && typeof i.filename === "string"; }

/**
 * All runs seen on this page (and kept from earlier visits), the one being shown, and an optional loaded run to
 * compare against. `workflow` names the graph that is open: live runs take it when they start.
 */
export class EventStore extends EventTarget {
  constructor() {
    super();
    this.runs = new Map();
    this.current = null;
    this.comparison = null;
    this.eventCount = 0;
    this.workflow = null;
    this.nodeTypeOf = () => null;   // (node id) -> class_type of that node in the open graph, set by the extension
  }

  static keyOf(event) { return `${event.prompt_id ?? "?"}/${event.node ?? "?"}`; }

  /** Adds a live event; a `start` for a new node or prompt begins a new run and shows it. */
  add(event) {
    if (!event || typeof event !== "object" || typeof event.type !== "string") return null;
    const key = EventStore.keyOf(event);
    let run = this.runs.get(key);
    if (!run || (event.type === "start" && run.start)) {
      // The open graph ran it only if its node of that id has the type the server reports.
      const type = typeof event.node_type === "string" ? event.node_type : null;
      const here = this.nodeTypeOf(event.node);
      run = new SearchRun(key, { node: event.node ?? null, promptId: event.prompt_id ?? null, nodeType: type ?? here,
        workflow: type && here && here !== type ? null : this.workflow });
      this.runs.delete(key);
      this.runs.set(key, run);
      this.trim();
    }
    run.add(event);
    this.current = run;
    this.eventCount += 1;
    this.changed(event.type === "final" || event.type === "extend" ? "final" : "event");
    return run;
  }

  /** Keeps the latest MAX_RUNS runs (Map order is insertion order); never drops the shown one. */
  trim() {
    for (const key of this.runs.keys()) {
      if (this.runs.size <= MAX_RUNS) break;
      if (this.runs.get(key) !== this.current) this.runs.delete(key);
    }
  }

  /** Runs kept from an earlier visit (search_history.js), oldest first; live runs of this page stay. */
  restore(runs) {
    const live = [...this.runs.entries()];
    this.runs = new Map([...runs.filter((r) => !this.runs.has(r.key)).map((r) => [r.key, r]), ...live]);
    this.trim();
    if (!this.current && this.runs.size) this.current = [...this.runs.values()].pop();
    this.changed("restore");
  }

  /** Attaches the images an output node of a prompt showed to that prompt's runs (thumbnails for the ranking). */
  addImages(promptId, nodeId, images) {
    for (const run of this.runs.values()) {
      if (run.promptId === promptId) run.imageSets.set(String(nodeId), images.filter(isImageRef));
    }
    this.changed("images");
  }

  /**
   * Keeps, for each run of a prompt, only the images of output nodes downstream of its search node (`prompt` is the
   * API-format graph from /history): two search nodes in one prompt each get their own candidates.
   */
  linkOutputs(promptId, prompt) {
    if (!prompt || typeof prompt !== "object") return;
    const children = new Map();
    for (const [id, node] of Object.entries(prompt)) {
      for (const value of Object.values((node && node.inputs) || {})) {
        if (Array.isArray(value) && value.length === 2 && (typeof value[0] === "string" || typeof value[0] === "number")) {
          const src = String(value[0]);
          if (!children.has(src)) children.set(src, []);
          children.get(src).push(id);
        }
      }
    }
    for (const run of this.runs.values()) {
      if (run.promptId !== promptId || run.node === null || !(String(run.node) in prompt)) continue;
      const downstream = new Set();
      const queue = [String(run.node)];
      while (queue.length) for (const c of children.get(queue.pop()) || []) if (!downstream.has(c)) { downstream.add(c); queue.push(c); }
      for (const key of [...run.imageSets.keys()]) if (!downstream.has(key)) run.imageSets.delete(key);
    }
    this.changed("images");
  }

  /** The latest finished run of the same node (workflow + id + type) before `run`, for the automatic comparison. */
  previousOf(run) {
    if (!run || run.source !== "live" || run.workflow === null) return null;
    let previous = null;
    for (const r of this.runs.values()) {
      if (r === run) break;
      if (r.source === "live" && r.finished && r.identity === run.identity) previous = r;
    }
    return previous;
  }

  /** Runs of the same prompt as `run` (several search nodes in one graph, e.g. presets side by side). */
  siblingsOf(run) {
    if (!run || run.promptId === null || run.source !== "live") return [run].filter(Boolean);
    return [...this.runs.values()].filter((r) => r.promptId === run.promptId && r.source === "live");
  }

  show(key) {
    const run = this.runs.get(key) || (this.comparison && this.comparison.key === key ? this.comparison : null);
    if (run) { this.current = run; this.changed("pick"); }
  }

  /** Loads a saved trace as the comparison run (drawn dashed behind the current one); throws what is wrong. */
  loadComparison(text, name = "loaded") {
    const doc = parseTrace(text);
    const run = runFromTrace(doc, `file:${name}`, name);
    this.comparison = run;
    if (!this.current) this.current = run;
    this.changed("compare");
    return run;
  }

  clearComparison() { this.comparison = null; this.changed("compare"); }

  /** Forgets every run (the Clear button; browser storage is cleared by the panel). */
  clearRuns() {
    this.runs.clear();
    this.current = null;
    this.comparison = null;
    this.changed("clear");
  }

  changed(reason = "event") { this.dispatchEvent(new CustomEvent("change", { detail: reason })); }
}

function clampCount(v, max) { return Number.isInteger(v) && v >= 1 ? Math.min(v, Math.max(1, max)) : 1; }

function finiteOrNull(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }
