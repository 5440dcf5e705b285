// Checks a trace (a loaded file, a run restored from browser storage) against docs/design.md ("Trace events")
// before anything is drawn: types, ranges, and the size of every list against the counts of the start event.
// Nothing is allocated from a count before the count is checked, so a hostile file cannot hang or crash the tab.

export const TRACE_VERSION = 1;
export const LIMITS = {
  events: 200000,        // a 256-particle × 1000-step BFS run is ~1000 events; DFS ~ NFE budget
  items: 1024,
  particles: 4096,
  slots: 65536,          // items × particles
  steps: 100000,
};
const ALGORITHMS = new Set(["bfs", "dfs", "local"]);
const MAX_PROBLEMS = 6;

class Problems {
  constructor() { this.list = []; }
  add(text) { if (this.list.length < MAX_PROBLEMS) this.list.push(text); this.count = (this.count || 0) + 1; }
  get full() { return this.list.length >= MAX_PROBLEMS; }
}

const isInt = (v) => Number.isInteger(v);
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const numOrNull = (v) => v === null || isNum(v);

/** n_items, n_particles, n_steps of a start event, each checked against LIMITS; null where invalid. */
function startCounts(start, problems) {
  const check = (name, max) => {
    const v = start[name];
    if (!isInt(v) || v < 1 || v > max) {
      problems.add(`start: ${name} is ${JSON.stringify(v)}; it must be a whole number from 1 to ${max}`);
      return null;
    }
    return v;
  };
  const counts = { items: check("n_items", LIMITS.items), particles: check("n_particles", LIMITS.particles),
    steps: check("n_steps", LIMITS.steps) };
  if (counts.items && counts.particles && counts.items * counts.particles > LIMITS.slots) {
    problems.add(`start: ${counts.items} items × ${counts.particles} particles is over ${LIMITS.slots} particles in all`);
    counts.particles = null;
  }
  if (start.config !== undefined && (start.config === null || typeof start.config !== "object" || Array.isArray(start.config))) {
    problems.add("start: config must be an object of settings");
  }
  if (start.sigmas !== undefined && (!Array.isArray(start.sigmas) || start.sigmas.length > LIMITS.steps + 1)) {
    problems.add("start: sigmas must be a list with one noise level per step (+1)");
  }
  return counts;
}

/** A [item][particle] matrix of numbers (or nulls / ints in [0, n) with `index`), sized by the start event. */
function checkMatrix(where, name, value, counts, problems, { nullable = true, index = false, empty = false } = {}) {
  if (value === null || value === undefined) {
    if (!nullable) problems.add(`${where}: ${name} is missing`);
    return;
  }
  if (!Array.isArray(value) || value.length !== counts.items) {
    problems.add(`${where}: ${name} must have one list per item (${counts.items}), has ${Array.isArray(value) ? value.length : typeof value}`);
    return;
  }
  for (let b = 0; b < value.length; b++) {
    const row = value[b];
    if (!Array.isArray(row) || row.length !== counts.particles) {
      problems.add(`${where}: ${name}[${b}] must hold ${counts.particles} values (one per particle), has ${Array.isArray(row) ? row.length : typeof row}`);
      return;
    }
    const low = empty ? -1 : 0;   // -1: an empty slot (a pruned beam holds fewer particles than slots)
    const bad = index ? row.findIndex((v) => !isInt(v) || v < low || v >= counts.particles) : row.findIndex((v) => !numOrNull(v));
    if (bad >= 0) {
      problems.add(`${where}: ${name}[${b}][${bad}] is ${JSON.stringify(row[bad])}; expected ${index ? `a particle index ${low}…${counts.particles - 1}` : "a number or null"}`);
      return;
    }
  }
}

function checkList(where, name, value, length, problems, ok = numOrNull, expected = "numbers or null") {
  if (value === null || value === undefined) return;
  if (!Array.isArray(value) || value.length !== length || !value.every(ok)) {
    problems.add(`${where}: ${name} must be a list of ${length} ${expected}`);
  }
}

function checkStepIndex(where, name, v, counts, problems) {
  if (!isInt(v) || v < 0 || (counts.steps && v >= counts.steps)) {
    problems.add(`${where}: ${name} is ${JSON.stringify(v)}; expected a step 0…${(counts.steps || 1) - 1}`);
    return false;
  }
  return true;
}

function checkEvent(ev, k, counts, problems) {
  const where = `event ${k} (${ev.type})`;
  if (ev.algorithm !== undefined && !ALGORITHMS.has(ev.algorithm)) problems.add(`${where}: algorithm ${JSON.stringify(ev.algorithm)} is not bfs, dfs or local`);
  if (ev.nfe !== undefined && ev.nfe !== null && !(isNum(ev.nfe) && ev.nfe >= 0)) problems.add(`${where}: nfe must be a number ≥ 0`);
  switch (ev.type) {
    case "step":
      if (!checkStepIndex(where, "step", ev.step, counts, problems)) return;
      if (ev.scores === undefined && ev.item !== undefined) {   // DFS: one diving particle per item
        if (!isInt(ev.item) || ev.item < 0 || ev.item >= counts.items) problems.add(`${where}: item ${JSON.stringify(ev.item)} is not one of the ${counts.items} items`);
        if (!numOrNull(ev.score ?? null) || !numOrNull(ev.threshold ?? null)) problems.add(`${where}: score and threshold must be numbers or null`);
        return;
      }
      checkMatrix(where, "scores", ev.scores, counts, problems);
      checkMatrix(where, "weights", ev.weights, counts, problems);
      checkMatrix(where, "ancestors", ev.ancestors, counts, problems, { index: true, empty: true });
      checkMatrix(where, "counts", ev.counts, counts, problems);
      checkList(where, "ess", ev.ess, counts.items, problems);
      if (!numOrNull(ev.temperature ?? null)) problems.add(`${where}: temperature must be a number or null`);
      if (ev.resampled !== undefined && typeof ev.resampled !== "boolean") problems.add(`${where}: resampled must be true or false`);
      return;
    case "backtrack":
      if (!isInt(ev.item) || ev.item < 0 || ev.item >= counts.items) problems.add(`${where}: item ${JSON.stringify(ev.item)} is not one of the ${counts.items} items`);
      checkStepIndex(where, "step_from", ev.step_from, counts, problems);
      checkStepIndex(where, "step_to", ev.step_to, counts, problems);
      return;
    case "local":
      if (!checkStepIndex(where, "step", ev.step, counts, problems)) return;
      checkMatrix(where, "reward_before", ev.reward_before, counts, problems);
      checkMatrix(where, "reward_after", ev.reward_after, counts, problems);
      return;
    case "final":
      checkMatrix(where, "rewards", ev.rewards, counts, problems, { nullable: false });
      checkMatrix(where, "order", ev.order, counts, problems, { index: true });
      checkList(where, "selected", ev.selected, counts.items, problems, (v) => isInt(v) && v >= 0 && v < counts.particles, "particle indices");
      checkList(where, "nfe_per_item", ev.nfe_per_item, counts.items, problems, (v) => isNum(v) && v >= 0, "numbers ≥ 0");
      return;
    case "extend": {   // every candidate of an extended search: as many per item as the first row says
      const n = Array.isArray(ev.rewards) && Array.isArray(ev.rewards[0]) ? ev.rewards[0].length : 0;
      if (!n || n > LIMITS.particles || (counts.items && counts.items * n > LIMITS.slots)) {
        problems.add(`${where}: rewards must hold 1 to ${LIMITS.particles} candidates per item`);
        return;
      }
      const all = { ...counts, particles: n };
      checkMatrix(where, "rewards", ev.rewards, all, problems, { nullable: false });
      checkMatrix(where, "order", ev.order, all, problems, { index: true });
      checkList(where, "selected", ev.selected, counts.items, problems, (v) => isInt(v) && v >= 0 && v < n, "candidate indices");
      return;
    }
    default:
      return;   // other types are kept for saving but not drawn
  }
}

/**
 * Every problem of a trace document {version, events}, [] when it can be drawn. Stops after a few problems.
 */
export function traceProblems(doc) {
  const problems = new Problems();
  if (!doc || typeof doc !== "object" || !Array.isArray(doc.events)) {
    problems.add('a trace needs an "events" list: {"version": 1, "events": [...]}');
    return problems.list;
  }
  if (doc.version !== undefined && doc.version !== TRACE_VERSION) {
    problems.add(`trace version ${JSON.stringify(doc.version)} is not supported; this view reads version ${TRACE_VERSION}`);
    return problems.list;
  }
  const events = doc.events;
  if (events.length > LIMITS.events) {
    problems.add(`${events.length} events is over the ${LIMITS.events} this view draws`);
    return problems.list;
  }
  const bad = events.findIndex((e) => !e || typeof e !== "object" || Array.isArray(e) || typeof e.type !== "string");
  if (bad >= 0) {
    problems.add(`event ${bad} has no "type"; the file is not a search trace`);
    return problems.list;
  }
  const starts = events.filter((e) => e.type === "start");
  if (events[0]?.type !== "start" || starts.length !== 1) {
    problems.add(`a trace starts with one "start" event (found ${starts.length}${events.length && events[0].type !== "start" ? `, the first is "${events[0].type}"` : ""})`);
    return problems.list;
  }
  const counts = startCounts(events[0], problems);
  if (problems.list.length) return problems.list;
  if (!ALGORITHMS.has(events[0].algorithm)) problems.add(`start: algorithm ${JSON.stringify(events[0].algorithm)} is not bfs, dfs or local`);
  for (let k = 1; k < events.length && !problems.full; k++) checkEvent(events[k], k, counts, problems);
  const bfsSteps = events.filter((e) => e.type === "step" && e.scores !== undefined).length;
  if (bfsSteps > counts.steps) problems.add(`${bfsSteps} step events for a run of ${counts.steps} steps`);
  return problems.list;
}

/** Parses and checks a saved trace; throws an Error listing what is wrong (and how to get a good file). */
export function parseTrace(text) {
  let doc;
  try { doc = typeof text === "string" ? JSON.parse(text) : text; } catch (e) {
    throw new Error(`Not a JSON file (${e.message}); load a trace saved by the search view or the node's trace output.`);
  }
  if (Array.isArray(doc)) doc = { version: TRACE_VERSION, events: doc };
  const problems = traceProblems(doc);
  if (problems.length) {
    throw new Error(`This trace cannot be drawn: ${problems.join("; ")}. Load a file saved by Save JSON or the node's trace_json output.`);
  }
  return doc;
}
