// The search-view panel (floating, or docked in a sidebar tab: search_dock.js): header (run picker, item,
// save/load, clear), the result first, comparisons, the charts that fit the run's algorithm, then tuning. Charts
// redraw at most once per frame; tuning controls are built once per bound node and only refreshed, so typing or
// dragging is never interrupted by a redraw.

import { hasStepScores, bfsScoreChart, essChart, localChart, rewardStrip, temperatureChart } from "./search_charts.js";
import { comparisonBlock, sideBySide } from "./search_compare.js";
import { dfsChart, nfeBars } from "./search_dfs.js";
import { moreBudget, searchMore } from "./search_more.js";
import { resultSection } from "./search_result.js";
import { formatNumber, htmlEl, layout } from "./search_svg.js";
import { ancestryTree } from "./search_tree.js";
import {
  BFS_WIDGETS, ControlsView, DFS_WIDGETS, LOCAL_SAMPLER_WIDGETS, LOCAL_WIDGETS, findGraphNode, findWidget, localSettingsNode,
  setWidgetValue,
} from "./search_tuning.js";
import { PANEL_CSS } from "./search_style.js";

export class SearchPanel {
  constructor({ store, app, imageUrl, onClearRuns = () => {} }) {
    this.store = store;
    this.app = app;
    this.imageUrl = imageUrl;   // ({filename, subfolder, type}) -> URL
    this.onClearRuns = onClearRuns;
    this.item = 0;
    this.preview = {};          // value being edited per widget name (slider moving, digits typed, handle dragged)
    this.previewUrl = null;
    this.pending = false;
    this.drawCount = 0;
    this.userHidden = false;
    this.drag = { active: false };   // a chart handle is being dragged: that chart is not rebuilt meanwhile
    this.controls = new Map();       // key -> ControlsView, kept across redraws
    this.resultKey = "";
    this.host = null;                // where the root is shown (search_dock.js); none: shown and hidden in place
    this.root = this.build();
    store.addEventListener("change", () => this.scheduleDraw());
  }

  build() {
    if (!document.getElementById("dsv-style")) {
      const style = htmlEl("style");
      style.id = "dsv-style";
      style.textContent = PANEL_CSS;
      document.head.appendChild(style);
    }
    const root = htmlEl("div", "dsv-panel");
    root.id = "diffusion-search-view";
    root.hidden = true;
    const header = htmlEl("div", "dsv-header");
    this.titleEl = htmlEl("span", "dsv-heading", "Diffusion search");
    this.runSelect = htmlEl("select", "dsv-runs");
    this.runSelect.title = "Runs since the page was opened (and kept from earlier visits)";
    this.runSelect.addEventListener("change", () => { this.preview = {}; this.store.show(this.runSelect.value); });
    this.itemSelect = htmlEl("select", "dsv-item");
    this.itemSelect.title = "Batch item";
    this.itemSelect.addEventListener("change", () => { this.item = Number(this.itemSelect.value) || 0; this.resultKey = ""; this.scheduleDraw(); });
    const save = this.button("Save JSON", "Download the shown run's trace", () => this.saveTrace());
    const load = this.button("Load JSON…", "Load a saved trace to compare with", () => this.fileInput.click());
    this.clearBtn = this.button("Clear compare", "Stop comparing with the loaded trace", () => this.store.clearComparison());
    const clearRuns = this.button("Clear runs", "Forget every run (this page and the browser's storage)", () => { this.store.clearRuns(); this.onClearRuns(); });
    clearRuns.dataset.action = "clear-runs";
    this.moreBtn = this.button("Search more", "", () => this.searchMore());
    this.moreBtn.dataset.action = "search-more";
    // Closed by the user: new runs do not pop it open again until it is shown from the button or a node menu.
    const close = this.button("×", "Hide the search view (Escape)", () => this.close());
    this.fileInput = htmlEl("input");
    Object.assign(this.fileInput, { type: "file", accept: ".json,application/json", hidden: true });
    this.fileInput.className = "dsv-file";
    this.fileInput.addEventListener("change", () => this.loadFile());
    header.append(this.titleEl, close, htmlEl("span", "dsv-break"), this.runSelect, this.itemSelect, this.moreBtn, save, load, this.clearBtn, clearRuns, this.fileInput);
    this.dragBy(header, root);
    this.statusEl = htmlEl("div", "dsv-status", "Queue a workflow with a DiffusionSearch node to watch it here.");
    this.warnEl = htmlEl("div", "dsv-warning");
    this.errorEl = htmlEl("div", "dsv-error");
    this.warnEl.hidden = this.errorEl.hidden = true;
    this.body = htmlEl("div", "dsv-body");
    this.resultBox = htmlEl("div", "dsv-result-box");
    this.compareBox = htmlEl("div", "dsv-compare-box");
    this.chartsBox = htmlEl("div", "dsv-charts");
    this.tuneBox = htmlEl("div", "dsv-tune dsv-section");
    this.tuneCharts = htmlEl("div", "dsv-row");
    this.tuneControls = htmlEl("div", "dsv-tune-controls");
    this.tuneBox.append(htmlEl("h4", "", "Tune the next run"), this.tuneCharts, this.tuneControls);
    this.body.append(this.resultBox, this.compareBox, this.chartsBox, this.tuneBox);
    this.hoverCard = htmlEl("div", "dsv-hover");
    this.hoverCard.hidden = true;
    this.hoverImg = htmlEl("img", "dsv-hover-img");
    this.hoverText = htmlEl("div", "dsv-hover-text");
    this.hoverCard.append(this.hoverImg, this.hoverText);
    this.lightbox = htmlEl("div", "dsv-lightbox");
    this.lightbox.hidden = true;
    this.lightboxImg = htmlEl("img", "dsv-lightbox-img");
    this.lightboxText = htmlEl("div", "dsv-lightbox-text");
    this.lightbox.append(this.lightboxImg, this.lightboxText);
    this.lightbox.addEventListener("click", () => { this.lightbox.hidden = true; });
    root.append(header, this.statusEl, this.warnEl, this.errorEl, this.body, this.hoverCard, this.lightbox);
    document.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape" || root.hidden || ev.defaultPrevented) return;
      if (!this.lightbox.hidden) this.lightbox.hidden = true;
      else this.close();
    });
    // A drag whose release never reached its handle must not stop the drawing.
    window.addEventListener("pointerup", () => { if (this.drag.active) { this.drag.active = false; this.scheduleDraw(); } });
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => {
        // Docked, the charts never overflow the tab (the frontend clips it: 1.27.10's sidebar is about 210 px wide).
        const width = Math.max(root.classList.contains("dsv-docked") ? 180 : 260, Math.floor(root.clientWidth - 16));
        if (Math.abs(width - layout.width) >= 8) { layout.width = width; this.scheduleDraw(); }
      }).observe(root);
    }
    document.body.appendChild(root);
    return root;
  }

  button(text, title, onClick) {
    const b = htmlEl("button", "dsv-button", text);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", onClick);
    return b;
  }

  dragBy(handle, root) {
    let start = null;
    handle.addEventListener("pointerdown", (ev) => {
      if (ev.target !== handle && ev.target !== this.titleEl) return;
      if (root.classList.contains("dsv-docked")) return;   // a sidebar tab stays where the frontend put it
      const box = root.getBoundingClientRect();
      start = { x: ev.clientX - box.left, y: ev.clientY - box.top };
      handle.setPointerCapture?.(ev.pointerId);
    });
    handle.addEventListener("pointermove", (ev) => {
      if (!start) return;
      root.style.left = `${Math.max(0, ev.clientX - start.x)}px`;
      root.style.top = `${Math.max(0, ev.clientY - start.y)}px`;
      root.style.right = "auto";
    });
    handle.addEventListener("pointerup", () => { start = null; });
  }

  show() { if (this.host) this.host.open(); else this.root.hidden = false; this.scheduleDraw(); }
  hide() { if (this.host) this.host.close(); else this.root.hidden = true; this.hoverCard.hidden = true; }
  close() { this.userHidden = true; this.hide(); }
  toggle() { if (this.root.hidden) this.show(); else this.hide(); }

  /** Shows the newest live preview image (ComfyUI's `b_preview` of the search). */
  setPreview(blob) {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = URL.createObjectURL(blob);
    this.scheduleDraw();
  }

  scheduleDraw() {
    if (this.pending) return;
    this.pending = true;
    const run = () => { this.pending = false; this.draw(); };
    if (typeof requestAnimationFrame === "function" && !document.hidden) requestAnimationFrame(run);
    else setTimeout(run, 0);
  }

  /** Hover card API for the charts: {text, image} near the pointer. */
  get hover() {
    return {
      show: ({ text, image = null, particle = null }, ev) => {
        this.hoverText.textContent = text;
        this.hoverImg.hidden = !image;
        if (image) this.hoverImg.src = image;
        this.hoverCard.dataset.particle = particle === null ? "" : String(particle);
        this.hoverCard.hidden = false;
        const box = this.root.getBoundingClientRect();
        const x = Math.min(ev.clientX - box.left + 14, this.root.clientWidth - 180);
        this.hoverCard.style.left = `${Math.max(4, x)}px`;
        this.hoverCard.style.top = `${ev.clientY - box.top + this.root.scrollTop + 14}px`;
      },
      hide: () => { this.hoverCard.hidden = true; },
    };
  }

  /** The image URL of `particle` of `item` in `run` (final candidates, ranked best first per item), or null. */
  imageFor(run, item, particle) {
    const { images, perRank } = run.rankedImages();
    if (!images.length) return null;
    const ranking = run.ranking(item);
    const entry = ranking.find((r) => r.particle === particle);
    if (!entry) return null;
    const image = perRank ? images[item * run.nCandidates + entry.rank] : entry.selected ? images[item] : null;
    return image ? this.imageUrl(image) : null;
  }

  enlarge(url, caption) {
    this.lightboxImg.src = url;
    this.lightboxText.textContent = `${caption} · click or Escape to close`;
    const box = this.root.getBoundingClientRect();   // over the visible part of the panel, wherever it is scrolled
    const top = Math.max(0, box.top);
    const bottom = Math.min(window.innerHeight, box.bottom);   // a docked panel can be taller than the window
    Object.assign(this.lightbox.style, { left: `${box.left}px`, top: `${top}px`, width: `${box.width}px`, height: `${Math.max(0, bottom - top)}px` });
    this.lightbox.hidden = false;
  }

  /** The graph node a run is bound to (same workflow, id and type), or null with the reason in the warning line. */
  bind(run) {
    if (run.source !== "live") return { node: null, warning: "" };
    const node = findGraphNode(this.app, run.node);
    const type = run.nodeType;
    if (!node) return { node: null, warning: `Node ${run.node} is not in the open workflow: open the workflow that ran this search to tune it.` };
    if (type && node.type !== type) {
      return { node: null, warning: `Node ${run.node} of the open workflow is a ${node.type}, but this run came from a ${type}: the tuning controls are off. Open the workflow that ran it.` };
    }
    if (run.workflow === null || run.workflow !== this.store.workflow) {
      return { node: null, warning: `This run came from another workflow than the one open (node ${run.node}, ${type || node.type}): the tuning controls are off. Open that workflow to tune it.` };
    }
    return { node, warning: "" };
  }

  /** "Search more" is on for a finished run bound to its node; its title says what it will change. */
  syncMore(run, node) {
    const change = run && run.final ? moreBudget(run, node) : null;
    this.moreBtn.disabled = !change;
    this.moreBtn.title = change
      ? `Set ${change.name} ${change.from} → ${change.to} on node ${run.node} and queue the workflow again: the finished search is extended, not redone`
      : "Raise the budget and queue again (for a finished run of a node in the open workflow)";
  }

  async searchMore() {
    const run = this.store.current;
    const { node } = run ? this.bind(run) : { node: null };
    try {
      const change = await searchMore(this.app, run, node);
      if (change) this.moreBtn.dataset.last = `${change.name}:${change.from}:${change.to}`;
    } catch (e) {
      this.warnEl.textContent = `Search more could not queue the workflow: ${e && e.message ? e.message : e}`;
      this.warnEl.hidden = false;
    }
  }

  /** Redraws for the current run; a chart whose handle is being dragged is left alone until it is dropped. */
  draw() {
    if (this.drag.active) return;
    const run = this.store.current;
    const loaded = this.store.comparison && this.store.comparison !== run ? this.store.comparison : null;
    const previous = loaded ? null : this.store.previousOf(run);
    const cmp = loaded || previous;
    this.drawCount += 1;
    this.clearBtn.hidden = !this.store.comparison;
    this.root.dataset.events = String(this.store.eventCount);
    this.syncRuns(run);
    if (!run) {
      this.root.dataset.algorithm = "";
      this.titleEl.textContent = "Diffusion search";
      for (const box of [this.resultBox, this.compareBox, this.chartsBox, this.tuneCharts, this.tuneControls]) box.replaceChildren();
      this.resultKey = "";
      this.controls.clear();
      this.syncMore(null, null);
      return;
    }
    this.item = Math.min(this.item, Math.max(0, run.nItems - 1));
    this.syncItems(run.nItems);
    const { node, warning } = this.bind(run);
    const label = run.source === "live" ? `node ${run.node ?? "?"}` : `file ${run.source}`;
    this.titleEl.textContent = `${run.presetName} · ${label}`;
    this.titleEl.title = `${run.presetName} · ${label}${run.nodeType ? ` (${run.nodeType})` : ""}`;
    this.statusEl.textContent = this.statusText(run, loaded);
    this.warnEl.textContent = warning;
    this.warnEl.hidden = !warning;
    this.syncMore(run, node);
    const ctx = { hover: this.hover, drag: this.drag, imageFor: (item, p) => this.imageFor(run, item, p) };
    this.drawResult(run);
    this.compareBox.replaceChildren(...[comparisonBlock(run, cmp, this.item, !!previous),
      sideBySide(this.store.siblingsOf(run), this.item, { current: run, imageFor: (r, i, p) => this.imageFor(r, i, p), onPick: (key) => this.store.show(key) })].filter(Boolean));
    const charts = [];
    const guard = (title, make) => {   // one failing chart must not take the others (or later runs) with it
      try { charts.push(this.section(title, make())); } catch (e) {
        console.error("[diffusion_search] chart failed", title, e);
        charts.push(this.section(title, htmlEl("div", "dsv-error", `This chart could not be drawn: ${e.message}`)));
      }
    };
    const algorithm = run.algorithm;
    let particles = 0;
    let steps = 0;
    if (run.local.length) guard("Local search", () => localChart(run, this.item, cmp, ctx));
    const bfsLike = algorithm === "bfs" || (algorithm === "local" && run.bfsSteps.length);
    if (bfsLike && algorithm === "bfs" && !hasStepScores(run, this.item)) {
      guard("Final rewards", () => rewardStrip(run, this.item, ctx));
      particles = run.nParticles;
      steps = run.bfsSteps.length;
    } else if (bfsLike && algorithm === "bfs") {
      guard("Scores", () => {
        const scores = bfsScoreChart(run, this.item, cmp, ctx);
        const svg = scores.querySelector ? scores.querySelector("svg") || scores : scores;
        particles = Number(svg.getAttribute?.("data-particles") || 0);
        steps = Number(svg.getAttribute?.("data-steps") || 0);
        return scores;
      });
      guard("Resampling", () => {
        const box = htmlEl("div", "dsv-stack");
        box.append(essChart(run, this.item, ctx), ancestryTree(run, this.item, { hover: this.hover, imageFor: ctx.imageFor }));
        return box;
      });
    }
    if (algorithm === "dfs") {
      guard("Depth-first search", () => {
        const box = htmlEl("div", "dsv-stack");
        const delta = this.preview.delta ?? (node ? numberOf(findWidget(node, "delta")) : this.unboundDelta ?? null);
        const schedule = (node && findWidget(node, "delta_schedule")?.value) || run.config.delta_schedule;
        box.append(dfsChart(run, this.item, cmp, { delta, schedule, drag: this.drag, hover: this.hover,
          onDrop: (d) => this.commit(node, "delta", d) }), nfeBars(run, cmp));
        return box;
      });
      particles = run.nItems;
      steps = new Set(run.dfsSteps.map((e) => e.step)).size;
    }
    if (algorithm === "local" && !run.bfsSteps.length) { particles = run.nParticles; steps = run.local.length; }
    if (algorithm === "local" && run.bfsSteps.length) { particles = run.nParticles; steps = run.bfsSteps.length; }
    if (!algorithm) charts.push(htmlEl("div", "dsv-empty", "Events arrived without an algorithm; nothing to draw."));
    this.chartsBox.replaceChildren(...charts);
    this.drawTuning(run, node, ctx);
    this.root.dataset.algorithm = algorithm || "";
    this.root.dataset.particles = String(particles);
    this.root.dataset.steps = String(steps);
    this.root.dataset.finished = String(run.finished);
    this.root.dataset.comparison = loaded ? loaded.source : previous ? "previous" : "";
    this.root.dataset.bound = String(!!node);
    this.root.dataset.run = run.key;
  }

  drawResult(run) {
    const images = [...run.imageSets.values()].map((s) => s.length).join(",");
    const key = [run.key, this.item, run.finished, images, run.finished ? "" : this.previewUrl, run.finished ? "" : run.events.length, layout.width].join("|");
    if (key === this.resultKey) return;
    this.resultKey = key;
    this.resultBox.replaceChildren(resultSection(run, this.item, {
      imageFor: (item, p) => this.imageFor(run, item, p), previewUrl: this.previewUrl, enlarge: (u, c) => this.enlarge(u, c),
    }));
  }

  /** Tuning: the λ schedule (BFS) and the controls of the bound node and its Local Search Settings node. */
  drawTuning(run, node, ctx) {
    const parts = [];
    if (node) {
      const lamWidget = findWidget(node, "lam");
      const preset = findWidget(node, "preset")?.value ?? findWidget(node, "search")?.value;
      if (run.algorithm === "bfs" && lamWidget && preset !== "best_of_n" && hasStepScores(run, this.item)) {
        parts.push(temperatureChart(run, { lam: this.preview.lam ?? numberOf(lamWidget), drag: this.drag, hover: ctx.hover,
          onDrop: (l) => this.commit(node, "lam", l) }));
      }
      const local = localSettingsNode(this.app, node);
      const groups = [];
      const names = { dfs: DFS_WIDGETS, local: LOCAL_SAMPLER_WIDGETS }[run.algorithm] || BFS_WIDGETS;
      groups.push([run.algorithm, node, names, ""]);
      if (local) groups.push(["local", local, LOCAL_WIDGETS, `Local search (node ${local.id})`]);
      const keep = new Set();
      for (const [kind, target, names, title] of groups) {
        const key = `${run.identity}|${kind}|${target.id}`;
        keep.add(key);
        let view = this.controls.get(key);
        if (!view) {
          view = new ControlsView(target, names, { title,
            onPreview: (name, v) => { this.preview[name] = v; this.scheduleDraw(); },
            onCommit: (name) => { delete this.preview[name]; this.scheduleDraw(); } });
          this.controls.set(key, view);
        } else {
          view.refresh();
        }
        parts.push(view.el);
      }
      // Views of other runs are dropped, unless one is being edited (then it stays until the edit ends).
      for (const [key, view] of this.controls) if (!keep.has(key) && !view.busy) this.controls.delete(key);
      for (const [key, view] of this.controls) if (!keep.has(key)) parts.push(view.el);
    } else {
      this.controls.clear();
      const why = run.source === "live" ? "The node that ran this search is not bound (see the note above); its settings are shown under Result."
        : "A loaded trace has no node to tune.";
      parts.push(htmlEl("div", "dsv-note", why));
    }
    // Charts are replaced freely; the controls' elements stay in place (a field being typed in keeps its focus).
    const charts = parts.filter((el) => !el.classList.contains("dsv-controls"));
    const controls = parts.filter((el) => el.classList.contains("dsv-controls"));
    this.tuneCharts.replaceChildren(...charts);
    const current = [...this.tuneControls.children];
    if (controls.length !== current.length || controls.some((el, i) => current[i] !== el)) this.tuneControls.replaceChildren(...controls);
  }

  /** Writes a dragged value to the node (or keeps it as a preview when no node is bound). */
  commit(node, name, value) {
    delete this.preview[name];
    if (node && findWidget(node, name)) {
      setWidgetValue(node, name, value);
      for (const view of this.controls.values()) if (view.node === node) view.refresh();
      this.scheduleDraw();
    } else {
      if (name === "delta") this.unboundDelta = value;
      else this.preview[name] = value;
      this.scheduleDraw();
    }
  }

  statusText(run, cmp) {
    const parts = [`${run.events.length} events`, `${run.nItems} item(s) × ${run.nParticles} particle(s)`, `${run.nSteps} steps`];
    if (run.final) parts.push(`NFE ${run.final.nfe ?? "?"}`);
    else parts.push("running…");
    const ext = run.start && run.start.extends;
    if (ext && typeof ext === "object") {
      parts.push(`extends the kept search, budget ${Number(ext.from_budget)} → ${Number(ext.budget)} (${ext.exact ? "exact" : "a further population"}; ${run.nCandidates} candidates)`);
    }
    if (cmp) {
      const best = (r) => formatNumber(r.bestRewards()[Math.min(this.item, r.nItems - 1)]);
      parts.push(`compare: best ${best(run)} vs ${best(cmp)} (${cmp.source}), NFE ${run.final?.nfe ?? "?"} vs ${cmp.final?.nfe ?? "?"}`);
    }
    return parts.join(" · ");
  }

  /** The run picker: every run kept, newest first; rebuilt only when the list changes and it is not open. */
  syncRuns(current) {
    const runs = [...this.store.runs.values()].reverse();
    if (this.store.comparison) runs.push(this.store.comparison);
    const key = runs.map((r) => `${r.key}:${r.finished}`).join("|");
    if (key !== this.runsKey && document.activeElement !== this.runSelect) {
      this.runsKey = key;
      this.runSelect.replaceChildren(...runs.map((r) => {
        const time = new Date(r.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
        const where = r.source === "live" ? `node ${r.node ?? "?"}` : `file ${r.source}`;
        const o = htmlEl("option", "", `${time} · ${r.presetName} · ${where}${r.finished ? "" : " (running)"}`);
        o.value = r.key;
        return o;
      }));
    }
    if (current && document.activeElement !== this.runSelect) this.runSelect.value = current.key;
    this.runSelect.hidden = runs.length < 2;
  }

  syncItems(n) {
    if (this.itemSelect.options.length !== n) {
      this.itemSelect.replaceChildren(...Array.from({ length: n }, (_, i) => {
        const o = htmlEl("option", "", `item ${i}`);
        o.value = String(i);
        return o;
      }));
    }
    this.itemSelect.value = String(this.item);
    this.itemSelect.hidden = n <= 1;
  }

  section(title, ...children) {
    const s = htmlEl("section", "dsv-section");
    s.appendChild(htmlEl("h4", "", title));
    const row = htmlEl("div", "dsv-row");
    row.append(...children);
    s.appendChild(row);
    return s;
  }

  saveTrace() {
    const run = this.store.current;
    if (!run) { this.showError("Nothing to save yet: run a search first."); return; }
    const blob = new Blob([JSON.stringify(run.toTrace(), null, 1)], { type: "application/json" });
    const a = htmlEl("a");
    a.href = URL.createObjectURL(blob);
    a.download = `diffusion-search-${run.algorithm || "trace"}-${String(run.promptId ?? "run").slice(0, 8)}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  async loadFile() {
    const file = this.fileInput.files && this.fileInput.files[0];
    if (!file) return;
    try {
      if (file.size > 64 * 1024 * 1024) throw new Error(`${file.name} is ${Math.round(file.size / 1048576)} MB; a trace this view can draw is far smaller.`);
      this.store.loadComparison(await file.text(), file.name);
      this.showError("");
    } catch (e) {
      this.showError(`${file.name}: ${e.message}`);
    }
    this.fileInput.value = "";
  }

  showError(text) { this.errorEl.textContent = text; this.errorEl.hidden = !text; }
}

function numberOf(w) { return w && typeof w.value === "number" ? w.value : null; }
