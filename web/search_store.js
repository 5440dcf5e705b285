// Event store for the search view: groups `diffusion_search.event` messages into runs and
// derives what the charts draw. Plain data, no DOM (docs/design.md, "Trace events").

export const TRACE_VERSION = 1;
const ALGORITHMS = new Set(["bfs", "dfs", "local"]);
const MAX_RUNS = 20;

/** One search run: the events of one node in one prompt (or one loaded trace file). */
export class SearchRun {
  constructor(key, { node = null, promptId = null, source = "live" } = {}) {
    this.key = key;
    this.node = node;
    this.promptId = promptId;
    this.source = source;
    this.events = [];
    this.start = null;
    this.bfsSteps = [];   // BFS / local `step` events, in order
    this.dfsSteps = [];   // DFS `step` events (one diving particle per item)
    this.backtracks = [];
    this.local = [];
    this.final = null;
    this.algorithm = null;
    this.imageSets = new Map();   // output node id -> images it showed ({filename, subfolder, type})
  }

  /** Adds one trace event; unknown types are kept (for saving) but not drawn. */
  add(event) {
    this.events.push(event);
    if (event.algorithm && ALGORITHMS.has(event.algorithm) && !this.algorithm) this.algorithm = event.algorithm;
    switch (event.type) {
      case "start": this.start = event; this.algorithm = event.algorithm || this.algorithm; break;
      case "step":
        if (event.algorithm === "dfs" || (event.item !== undefined && event.scores === undefined)) this.dfsSteps.push(event);
        else this.bfsSteps.push(event);
        break;
      case "backtrack": this.backtracks.push(event); break;
      case "local": this.local.push(event); break;
      case "final": this.final = event; break;
      default: break;
    }
  }

  get nItems() {
    if (this.start && Number.isInteger(this.start.n_items)) return this.start.n_items;
    const s = this.bfsSteps[0];
    if (s && Array.isArray(s.scores)) return s.scores.length;
    if (this.final && Array.isArray(this.final.rewards)) return this.final.rewards.length;
    return 1 + Math.max(0, ...this.dfsSteps.map((e) => e.item || 0));
  }

  get nParticles() {
    if (this.start && Number.isInteger(this.start.n_particles)) return this.start.n_particles;
    const s = this.bfsSteps[0];
    if (s && Array.isArray(s.scores) && Array.isArray(s.scores[0])) return s.scores[0].length;
    return this.final && Array.isArray(this.final.rewards?.[0]) ? this.final.rewards[0].length : 1;
  }

  get nSteps() {
    if (this.start && Number.isInteger(this.start.n_steps)) return this.start.n_steps;
    return Math.max(this.bfsSteps.length, 1 + Math.max(-1, ...this.dfsSteps.map((e) => e.step)));
  }

  get finished() { return this.final !== null; }

  get config() { return (this.start && this.start.config) || {}; }

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
  ranking(item) {
    if (!this.final) return [];
    const rewards = (this.final.rewards && this.final.rewards[item]) || [];
    const order = (this.final.order && this.final.order[item]) || rewards.map((_, i) => i);
    const selected = this.final.selected ? this.final.selected[item] : order[0];
    return order.map((p, rank) => ({ particle: p, reward: finiteOrNull(rewards[p]), rank, selected: p === selected }));
  }

  /**
   * Thumbnails for the ranking: an output node's images with one per candidate (B·N, ranked best first per item,
   * as the search KSampler's candidates and the rank node give them), else one per item. Returns {images, perRank}.
   */
  rankedImages() {
    const sets = [...this.imageSets.values()];
    const all = sets.find((imgs) => imgs.length === this.nItems * this.nParticles);
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
    return { version: TRACE_VERSION, node: this.node, prompt_id: this.promptId, events: this.events };
  }
}

/** Parses a saved trace document; throws an Error that says what is wrong and how to fix it. */
export function parseTrace(text) {
  let doc;
  try { doc = typeof text === "string" ? JSON.parse(text) : text; } catch (e) {
    throw new Error(`Not a JSON file (${e.message}); load a trace saved by the search view or the node's trace output.`);
  }
  if (Array.isArray(doc)) doc = { version: TRACE_VERSION, events: doc };
  if (!doc || typeof doc !== "object" || !Array.isArray(doc.events)) {
    throw new Error('Trace JSON needs an "events" list: {"version": 1, "events": [...]}.');
  }
  if (doc.version !== undefined && doc.version !== TRACE_VERSION) {
    throw new Error(`Trace version ${doc.version} is not supported; this view reads version ${TRACE_VERSION}.`);
  }
  const bad = doc.events.findIndex((e) => !e || typeof e !== "object" || typeof e.type !== "string");
  if (bad >= 0) throw new Error(`Trace event ${bad} has no "type"; the file is not a search trace.`);
  return doc;
}

/** All runs seen on this page, the one being shown, and an optional loaded run to compare against. */
export class EventStore extends EventTarget {
  constructor() {
    super();
    this.runs = new Map();
    this.current = null;
    this.comparison = null;
    this.eventCount = 0;
  }

  static keyOf(event) { return `${event.prompt_id ?? "?"}/${event.node ?? "?"}`; }

  /** Adds a live event; a `start` for a new node or prompt begins a new run and shows it. */
  add(event) {
    if (!event || typeof event !== "object" || typeof event.type !== "string") return null;
    const key = EventStore.keyOf(event);
    let run = this.runs.get(key);
    if (!run || (event.type === "start" && run.start)) {
      run = new SearchRun(key, { node: event.node ?? null, promptId: event.prompt_id ?? null });
      this.runs.delete(key);
      this.runs.set(key, run);
      // A long session keeps only the latest runs (Map order is insertion order).
      while (this.runs.size > MAX_RUNS) this.runs.delete(this.runs.keys().next().value);
    }
    run.add(event);
    this.current = run;
    this.eventCount += 1;
    this.changed();
    return run;
  }

  /** Attaches the images an output node of a prompt showed to that prompt's runs (thumbnails for the ranking). */
  addImages(promptId, nodeId, images) {
    for (const run of this.runs.values()) {
      if (run.promptId === promptId) run.imageSets.set(String(nodeId), images.slice());
    }
    this.changed();
  }

  /** Loads a saved trace as the comparison run (drawn dashed behind the current one). */
  loadComparison(text, name = "loaded") {
    const doc = parseTrace(text);
    const run = new SearchRun(`file:${name}`, { node: doc.node ?? null, promptId: doc.prompt_id ?? null, source: name });
    for (const ev of doc.events) run.add(ev);
    this.comparison = run;
    if (!this.current) this.current = run;
    this.changed();
    return run;
  }

  clearComparison() { this.comparison = null; this.changed(); }

  changed() { this.dispatchEvent(new Event("change")); }
}

function finiteOrNull(v) { return typeof v === "number" && Number.isFinite(v) ? v : null; }
