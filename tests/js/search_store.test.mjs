// Unit tests of the view's pure modules (no DOM, no ComfyUI): run by node's test runner, from tests/test_web_modules.py
// with traces that search_core really produced (TRACE_DIR), or alone: `node --test tests/js/`.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { EventStore, runFromTrace } from "../../web/search_store.js";
import { LIMITS, parseTrace, traceProblems } from "../../web/search_validate.js";

const TRACE_DIR = process.env.TRACE_DIR;
const traces = TRACE_DIR ? readdirSync(TRACE_DIR).filter((f) => f.endsWith(".json")).sort()
  .map((f) => [f, readFileSync(join(TRACE_DIR, f), "utf8")]) : [];

/** A minimal BFS trace in the documented shape (docs/design.md, "Trace events"). */
function tinyBfs({ items = 1, particles = 3, steps = 2 } = {}) {
  const events = [{ type: "start", algorithm: "bfs", n_items: items, n_particles: particles, n_steps: steps,
    sigmas: Array.from({ length: steps + 1 }, (_, i) => steps - i), node: "7", prompt_id: "p" }];
  for (let s = 0; s < steps; s++) {
    events.push({ type: "step", algorithm: "bfs", step: s, sigma: steps - s, node: "7", prompt_id: "p",
      scores: Array.from({ length: items }, () => Array.from({ length: particles }, (_, p) => p + s)),
      resampled: false, nfe: (s + 1) * items * particles });
  }
  events.push({ type: "final", algorithm: "bfs", node: "7", prompt_id: "p",
    rewards: Array.from({ length: items }, () => Array.from({ length: particles }, (_, p) => p / 10)),
    order: Array.from({ length: items }, () => Array.from({ length: particles }, (_, p) => particles - 1 - p)),
    selected: Array.from({ length: items }, () => particles - 1), nfe: steps * items * particles });
  return { version: 1, events };
}

test("a documented trace parses; its run has the start's counts and ranks the final rewards", () => {
  const run = runFromTrace(parseTrace(JSON.stringify(tinyBfs())), "k", "file");
  assert.equal(run.algorithm, "bfs");
  assert.deepEqual([run.nItems, run.nParticles, run.nSteps], [1, 3, 2]);
  const ranking = run.ranking(0);
  assert.deepEqual(ranking.map((r) => r.particle), [2, 1, 0]);
  assert.deepEqual(ranking.map((r) => r.selected), [true, false, false]);
  assert.deepEqual(run.bestRewards(), [0.2]);
});

test("hostile or broken traces are refused with what is wrong, before anything is allocated", () => {
  const huge = tinyBfs();
  huge.events[0].n_particles = 1e9;
  assert.match(traceProblems(huge).join(), /n_particles is 1000000000/);
  const tooMany = tinyBfs({ items: 64, particles: 2048 });
  assert.match(traceProblems(tooMany).join(), new RegExp(`over ${LIMITS.slots} particles`));
  const noStart = tinyBfs();
  noStart.events.shift();
  assert.match(traceProblems(noStart).join(), /starts with one "start" event/);
  assert.throws(() => parseTrace("{not json"), /Not a JSON file/);
  assert.throws(() => parseTrace(JSON.stringify({ version: 99, events: [] })), /version 99 is not supported/);
});

test("the live store groups events by prompt and node, and a new start of the same node begins a new run", () => {
  const store = new EventStore();
  const reasons = [];
  store.addEventListener("change", (e) => reasons.push(e.detail));
  for (const event of tinyBfs().events) store.add(event);
  const other = tinyBfs().events.map((e) => ({ ...e, node: "9" }));
  for (const event of other) store.add(event);
  assert.equal(store.runs.size, 2);
  assert.equal(store.current.node, "9");
  for (const event of tinyBfs().events) store.add(event);   // node 7 queued again in the same prompt
  assert.equal(store.runs.size, 2, "the rerun replaces the earlier run of that prompt and node");
  assert.equal(reasons.filter((r) => r === "final").length, 3);
  assert.equal(store.add({ no: "type" }), null);
});

for (const [name, text] of traces) {
  test(`search_core's trace ${name} parses and its run matches the trace`, () => {
    const doc = parseTrace(text);
    const start = doc.events[0];
    const run = runFromTrace(doc, name, "file");
    assert.equal(run.algorithm, start.algorithm);
    assert.deepEqual([run.nItems, run.nParticles, run.nSteps], [start.n_items, start.n_particles, start.n_steps]);
    const final = doc.events.at(-1);
    assert.equal(final.type, "final");
    for (let b = 0; b < start.n_items; b++) {
      const ranking = run.ranking(b);
      assert.equal(ranking.length, final.rewards[b].length);
      assert.equal(ranking.filter((r) => r.selected).length, 1);
      const backtracks = doc.events.filter((e) => e.type === "backtrack" && (e.item || 0) === b).length;
      assert.equal(run.backtracksOf(b).length, backtracks);
    }
    if (name.startsWith("bfs_")) assert.equal(run.bfsSteps.length, start.n_steps);   // a step event per level
    else if (start.algorithm === "bfs") assert.ok(run.bfsSteps.length >= 1 && run.bfsSteps.length <= start.n_steps);
  });
}
