// The floating search-view panel: header (run, item, save/load), then the charts that fit the
// run's algorithm, the tuning controls and the final ranking. Redraws at most once per frame.

import { bfsScoreChart, dfsChart, essChart, localChart, nfeBars } from "./search_charts.js";
import { formatNumber, htmlEl } from "./search_svg.js";
import { ancestryTree } from "./search_tree.js";
import {
  BFS_WIDGETS, DFS_WIDGETS, attachThresholdDrag, findGraphNode, findWidget, previewThreshold, temperatureChart, widgetControls,
} from "./search_tuning.js";
import { PANEL_CSS } from "./search_style.js";

export class SearchPanel {
  constructor({ store, app, imageUrl }) {
    this.store = store;
    this.app = app;
    this.imageUrl = imageUrl;   // ({filename, subfolder, type}) -> URL
    this.item = 0;
    this.deltaPreview = null;
    this.lamPreview = null;
    this.previewUrl = null;
    this.pending = false;
    this.drawCount = 0;
    this.userHidden = false;
    this.interacting = false;   // a pointer is down inside the panel
    this.deferred = false;      // a redraw waits for it to come up
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
    this.itemSelect = htmlEl("select", "dsv-item");
    this.itemSelect.title = "Batch item";
    this.itemSelect.addEventListener("change", () => { this.item = Number(this.itemSelect.value) || 0; this.scheduleDraw(); });
    const save = this.button("Save JSON", "Download the shown run's trace", () => this.saveTrace());
    const load = this.button("Load JSON…", "Load a saved trace to compare with", () => this.fileInput.click());
    this.clearBtn = this.button("Clear compare", "Stop comparing with the loaded trace", () => this.store.clearComparison());
    // Closed by the user: new runs do not pop it open again until it is shown from the button or a node menu.
    const close = this.button("×", "Hide the search view", () => { this.userHidden = true; this.hide(); });
    this.fileInput = htmlEl("input");
    Object.assign(this.fileInput, { type: "file", accept: ".json,application/json", hidden: true });
    this.fileInput.className = "dsv-file";
    this.fileInput.addEventListener("change", () => this.loadFile());
    header.append(this.titleEl, this.itemSelect, save, load, this.clearBtn, close, this.fileInput);
    this.dragBy(header, root);
    this.statusEl = htmlEl("div", "dsv-status", "Queue a workflow with a DiffusionSearch node to watch it here.");
    this.errorEl = htmlEl("div", "dsv-error");
    this.body = htmlEl("div", "dsv-body");
    root.append(header, this.statusEl, this.errorEl, this.body);
    root.addEventListener("pointerdown", () => { this.interacting = true; });
    window.addEventListener("pointerup", () => this.endInteraction());
    window.addEventListener("pointercancel", () => this.endInteraction());
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

  endInteraction() {
    if (!this.interacting) return;
    this.interacting = false;
    if (this.deferred) { this.deferred = false; this.scheduleDraw(); }
  }

  show() { this.root.hidden = false; this.scheduleDraw(); }
  hide() { this.root.hidden = true; }
  toggle() { if (this.root.hidden) this.show(); else this.hide(); }

  /** Shows the newest live preview image (ComfyUI's `b_preview` of the best particle). */
  setPreview(blob) {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = URL.createObjectURL(blob);
    this.scheduleDraw();
  }

  scheduleDraw() {
    // Redrawing replaces the controls: wait while a slider or handle is being dragged.
    if (this.interacting) { this.deferred = true; return; }
    if (this.pending) return;
    this.pending = true;
    const run = () => {
      this.pending = false;
      if (this.interacting) this.deferred = true;
      else this.draw();
    };
    if (typeof requestAnimationFrame === "function" && !document.hidden) requestAnimationFrame(run);
    else setTimeout(run, 0);
  }

  /** Rebuilds the body for the current run (cheap: a few SVGs of at most a few thousand elements). */
  draw() {
    const run = this.store.current;
    const cmp = this.store.comparison && this.store.comparison !== run ? this.store.comparison : null;
    this.drawCount += 1;
    this.clearBtn.hidden = !this.store.comparison;
    this.root.dataset.events = String(this.store.eventCount);
    if (!run) { this.root.dataset.algorithm = ""; return; }
    this.item = Math.min(this.item, Math.max(0, run.nItems - 1));
    this.syncItems(run.nItems);
    const node = findGraphNode(this.app, run.node);
    const label = run.source === "live" ? `node ${run.node ?? "?"}` : `file ${run.source}`;
    this.titleEl.textContent = `Diffusion search · ${run.algorithm || "?"} · ${label}`;
    this.statusEl.textContent = this.statusText(run, cmp);
    const body = htmlEl("div", "dsv-body");
    const algorithm = run.algorithm;
    let particles = 0;
    let steps = 0;
    if (algorithm === "bfs" || (algorithm === "local" && run.bfsSteps.length)) {
      const scores = bfsScoreChart(run, this.item, cmp);
      particles = Number(scores.getAttribute?.("data-particles") || 0);
      steps = Number(scores.getAttribute?.("data-steps") || 0);
      body.append(this.section("Scores", scores, essChart(run, this.item)), this.section("Ancestry", ancestryTree(run, this.item)));
      const lamWidget = findWidget(node, "lam");
      const lam = this.lamPreview ?? (lamWidget ? Number(lamWidget.value) : null);
      const temp = temperatureChart(run, { node, lamPreview: lam, onPreview: (l) => { this.lamPreview = node ? null : l; this.scheduleDraw(); } });
      body.append(this.section("Tune BFS", temp, widgetControls(node, BFS_WIDGETS, () => this.scheduleDraw())));
    }
    if (algorithm === "dfs") {
      const curve = run.thresholdCurve(this.item);
      const scheduleWidget = findWidget(node, "delta_schedule");
      const schedule = scheduleWidget ? scheduleWidget.value : run.config.delta_schedule;
      const deltaWidget = findWidget(node, "delta");
      const delta = this.deltaPreview ?? (deltaWidget ? Number(deltaWidget.value) : null);
      const changed = delta !== null && (delta !== Number(run.config.delta) || schedule !== run.config.delta_schedule);
      const noiseForm = run.start ? run.start.noise_form : "eps";
      const preview = changed ? previewThreshold(curve, schedule, delta, noiseForm) : null;
      const { svg, frame } = dfsChart(run, this.item, cmp, preview);
      attachThresholdDrag(frame, curve, { schedule, noiseForm, node, onPreview: (d, done) => { this.deltaPreview = done && node ? null : d; if (done) this.scheduleDraw(); } });
      particles = run.nItems;
      steps = new Set(run.dfsSteps.map((e) => e.step)).size;
      body.append(this.section("Depth-first search", svg, nfeBars(run, cmp)), this.section("Tune DFS", widgetControls(node, DFS_WIDGETS, () => this.scheduleDraw())));
    }
    if (run.local.length) body.append(this.section("Local search", localChart(run, this.item, cmp)));
    if (algorithm === "local" && !run.bfsSteps.length) {
      particles = run.nParticles;
      steps = run.local.length;
    }
    if (!algorithm) body.append(htmlEl("div", "dsv-empty", "Events arrived without an algorithm; nothing to draw."));
    body.append(this.section("Ranking", this.rankingList(run)));
    this.root.dataset.algorithm = algorithm || "";
    this.root.dataset.particles = String(particles);
    this.root.dataset.steps = String(steps);
    this.root.dataset.finished = String(run.finished);
    this.root.dataset.comparison = cmp ? cmp.source : "";
    this.body.replaceWith(body);
    this.body = body;
  }

  statusText(run, cmp) {
    const parts = [`${run.events.length} events`, `${run.nItems} item(s) × ${run.nParticles} particle(s)`, `${run.nSteps} steps`];
    if (run.final) parts.push(`NFE ${run.final.nfe ?? "?"}`);
    else parts.push("running…");
    if (cmp) {
      const best = (r) => formatNumber(r.bestRewards()[Math.min(this.item, r.nItems - 1)]);
      parts.push(`compare: best ${best(run)} vs ${best(cmp)} (${cmp.source}), NFE ${run.final?.nfe ?? "?"} vs ${cmp.final?.nfe ?? "?"}`);
    }
    return parts.join(" · ");
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

  /** Final ranking of the shown item: rank, particle, reward and a thumbnail when the prompt output images. */
  rankingList(run) {
    const list = htmlEl("ol", "dsv-ranking");
    const ranking = run.ranking(this.item);
    if (!ranking.length) {
      list.appendChild(htmlEl("li", "dsv-empty", run.finished ? "No ranking in the final event." : "Ranking appears when the search ends."));
      if (this.previewUrl && !run.finished) list.appendChild(this.thumb(this.previewUrl, "live preview of the best particle"));
      return list;
    }
    const n = run.nParticles;
    for (const entry of ranking) {
      const li = htmlEl("li", entry.selected ? "dsv-rank dsv-selected" : "dsv-rank");
      li.dataset.particle = String(entry.particle);
      const img = this.thumbnailFor(run, entry, n);
      if (img) li.appendChild(img);
      li.appendChild(htmlEl("span", "", `#${entry.rank + 1} particle ${entry.particle} · reward ${formatNumber(entry.reward)}${entry.selected ? " · selected" : ""}`));
      list.appendChild(li);
    }
    return list;
  }

  /** The thumbnail of a ranked entry: its candidate image, the item's output for the selected one, or the preview. */
  thumbnailFor(run, entry, n) {
    const { images, perRank } = run.rankedImages();
    const image = perRank ? images[this.item * n + entry.rank] : entry.selected ? images[this.item] : null;
    if (!image) return entry.selected && this.previewUrl ? this.thumb(this.previewUrl, "last preview") : null;
    return this.thumb(this.imageUrl(image), `particle ${entry.particle}`);
  }

  thumb(src, alt) {
    const img = htmlEl("img", "dsv-thumb");
    img.src = src;
    img.alt = alt;
    return img;
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
      this.store.loadComparison(await file.text(), file.name);
      this.showError("");
    } catch (e) {
      this.showError(e.message);
    }
    this.fileInput.value = "";
  }

  showError(text) { this.errorEl.textContent = text; this.errorEl.hidden = !text; }
}
