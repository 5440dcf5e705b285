// Tiny SVG toolkit for the search view: elements, scales, axes and a chart frame.
// All text goes through textContent, so prompt-derived strings are never parsed as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Creates an SVG element with attributes (values are set as attributes, never as markup). */
export function svgEl(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = String(text);
  return el;
}

/** Creates an HTML element with a class and optional text (textContent only). */
export function htmlEl(tag, className = "", text = null) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== null) el.textContent = String(text);
  return el;
}

/** Qualitative colour of particle `i` (golden-angle hues stay distinct for many particles). */
export function particleColor(i, alpha = 1) {
  return `hsla(${(i * 137.508) % 360}, 70%, 60%, ${alpha})`;
}

/** [min, max] of the finite numbers in nested arrays, padded; a flat range is widened. */
export function extent(values, pad = 0.05) {
  let lo = Infinity;
  let hi = -Infinity;
  const visit = (v) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === "number" && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  };
  visit(values);
  if (!Number.isFinite(lo)) return [0, 1];
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

export function formatNumber(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(2);
  return String(Math.round(v * 1000) / 1000);
}

/** A tick label: short forms for large values (150k, 2.5M), else formatNumber. */
export function tickLabel(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return formatNumber(v);
}

/** Rounded tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9 && ticks.length < 50; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/** [lo, hi] widened to the rounded ticks just outside it, so the axis starts and ends on a labelled value. */
export function niceDomain([lo, hi], count = 4) {
  if (!(hi > lo)) return [lo - 0.5, hi + 0.5];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  return [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step];
}

/** The width charts are drawn at (the panel sets it from its own width, so charts grow with the panel). */
export const layout = { width: 440 };

/**
 * A chart frame: title, axes with rounded ticks and light grid lines, and linear scales.
 * Returns {svg, plot, x, y, invertY, width, height, margin, ih, iw, xDomain, yDomain}; plot is the group to draw in.
 */
export function chartFrame({ title, xDomain, yDomain, width = layout.width, height = 180, xLabel = "", yLabel = "", kind = "",
  nice = true }) {
  const margin = { left: 54, right: 12, top: 22, bottom: 32 };
  const svg = svgEl("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "dsv-chart", "data-chart": kind,
  });
  const iw = width - margin.left - margin.right;
  const ih = height - margin.top - margin.bottom;
  const [x0, x1] = xDomain[1] > xDomain[0] ? xDomain : [xDomain[0], xDomain[0] + 1];
  const [y0, y1] = nice ? niceDomain(yDomain) : yDomain;
  const x = (v) => margin.left + ((v - x0) / (x1 - x0)) * iw;
  const y = (v) => margin.top + (1 - (v - y0) / (y1 - y0)) * ih;
  const invertY = (py) => y0 + (1 - (py - margin.top) / ih) * (y1 - y0);
  const invertX = (px) => x0 + ((px - margin.left) / iw) * (x1 - x0);
  svg.appendChild(svgEl("text", { x: margin.left, y: 15, class: "dsv-title" }, title));
  const axes = svgEl("g", { class: "dsv-axes" });
  for (const v of niceTicks(y0, y1, Math.max(2, Math.round(ih / 36)))) {
    axes.appendChild(svgEl("line", { x1: margin.left, x2: margin.left + iw, y1: y(v), y2: y(v), class: "dsv-grid" }));
    axes.appendChild(svgEl("text", { x: margin.left - 5, y: y(v) + 4, "text-anchor": "end" }, tickLabel(v)));
  }
  axes.appendChild(svgEl("line", { x1: margin.left, y1: margin.top + ih, x2: margin.left + iw, y2: margin.top + ih }));
  axes.appendChild(svgEl("line", { x1: margin.left, y1: margin.top, x2: margin.left, y2: margin.top + ih }));
  // Whole-number ticks: steps, levels and items are integers.
  const xTicks = niceTicks(Math.ceil(x0), Math.floor(x1), Math.max(2, Math.round(iw / 60))).filter((v) => Number.isInteger(v));
  for (const v of xTicks) {
    axes.appendChild(svgEl("text", { x: x(v), y: margin.top + ih + 15, "text-anchor": "middle" }, formatNumber(v)));
  }
  if (xLabel) axes.appendChild(svgEl("text", { x: margin.left + iw, y: height - 2, "text-anchor": "end", class: "dsv-axis-name" }, xLabel));
  if (yLabel) axes.appendChild(svgEl("text", { x: width - margin.right, y: 15, "text-anchor": "end", class: "dsv-axis-name" }, yLabel));
  svg.appendChild(axes);
  const plot = svgEl("g", { class: "dsv-plot" });
  svg.appendChild(plot);
  return { svg, plot, x, y, invertY, invertX, width, height, margin, iw, ih, xDomain: [x0, x1], yDomain: [y0, y1] };
}

/** A legend under a chart: [{label, color, dash, hollow, dot, title}] as swatches with text (HTML, wraps). */
export function legend(entries, kind = "") {
  const box = htmlEl("div", "dsv-legend");
  if (kind) box.dataset.legend = kind;
  for (const e of entries) {
    const item = htmlEl("span", "dsv-legend-item");
    const sw = htmlEl("span", `dsv-swatch${e.dash ? " dsv-swatch-dash" : ""}${e.hollow ? " dsv-swatch-hollow" : ""}${e.dot ? " dsv-swatch-dot" : ""}`);
    sw.style.setProperty("--c", e.color);
    item.append(sw, document.createTextNode(e.label));
    if (e.title) item.title = e.title;
    box.appendChild(item);
  }
  return box;
}

/** A chart with its legend below it, as one block. */
export function withLegend(svg, entries, kind) {
  const box = htmlEl("div", "dsv-figure");
  box.append(svg, legend(entries, kind));
  return box;
}

/**
 * Hover readout: moving over the plot shows a vertical rule at the nearest whole step and calls
 * `describe(step)` -> {text, particle} for the panel's hover card.
 */
export function attachReadout(frame, hover, describe) {
  if (!hover) return;
  const rule = svgEl("line", { y1: frame.margin.top, y2: frame.margin.top + frame.ih, class: "dsv-rule", visibility: "hidden" });
  frame.svg.appendChild(rule);
  frame.svg.addEventListener("pointermove", (ev) => {
    const box = frame.svg.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * frame.width;
    const step = Math.round(frame.invertX(px));
    if (step < frame.xDomain[0] || step > frame.xDomain[1]) return;
    rule.setAttribute("x1", frame.x(step));
    rule.setAttribute("x2", frame.x(step));
    rule.setAttribute("visibility", "visible");
    const d = describe(step, ev);
    if (d) hover.show(d, ev);
  });
  frame.svg.addEventListener("pointerleave", () => { rule.setAttribute("visibility", "hidden"); hover.hide(); });
}

/**
 * A polyline through [x, y] points; nulls break it, or are skipped when `connect` (series scored only at
 * some steps, like BFS scores at resampling steps). Returns the path element.
 */
export function seriesPath(frame, points, attrs, connect = false) {
  let d = "";
  let pen = false;
  for (const [xv, yv] of points) {
    if (yv === null || yv === undefined) { pen = pen && connect; continue; }
    d += `${pen ? "L" : "M"}${frame.x(xv).toFixed(1)},${frame.y(yv).toFixed(1)}`;
    pen = true;
  }
  return svgEl("path", { d, fill: "none", ...attrs });
}

/** Dots at the finite points of a series (so isolated values stay visible). */
export function seriesDots(frame, points, attrs) {
  const g = svgEl("g", { class: "dsv-dots" });
  for (const [xv, yv] of points) {
    if (yv !== null && yv !== undefined) g.appendChild(svgEl("circle", { cx: frame.x(xv), cy: frame.y(yv), r: 2, ...attrs }));
  }
  return g;
}

/**
 * An <img> for a ComfyUI /view URL that turns into a plain tile when the file is gone (a temp preview of an earlier
 * server session, say) instead of a broken-image icon.
 */
export function imageEl(src, className, alt) {
  const img = htmlEl("img", className);
  img.alt = alt;
  img.addEventListener("error", () => {
    const tile = htmlEl("div", `${className} dsv-thumb-empty`, "image gone");
    tile.title = "ComfyUI no longer has this image (temp files go when the server restarts)";
    img.replaceWith(tile);
  }, { once: true });
  img.src = src;
  return img;
}

/** A short note in place of a chart (no data yet, unknown algorithm, ...). */
export function emptyNote(text) {
  return htmlEl("div", "dsv-empty", text);
}

/**
 * Makes `handle` (a circle in frame.plot) draggable up and down inside the plot area: `onMove(value)` while it moves
 * (the handle follows, clamped to the chart), `onDrop(value)` when released. `drag.active` tells the panel not to
 * rebuild the chart under the pointer.
 */
export function dragVertically(frame, handle, { onMove, onDrop, drag = {} }) {
  let dragging = false;
  const valueAt = (ev) => {
    const box = frame.svg.getBoundingClientRect();
    const py = ((ev.clientY - box.top) / (box.height || frame.height)) * frame.height;
    const clamped = Math.min(frame.margin.top + frame.ih, Math.max(frame.margin.top, py));
    return { py: clamped, value: frame.invertY(clamped) };
  };
  handle.addEventListener("pointerdown", (ev) => {
    dragging = true;
    drag.active = true;
    handle.setPointerCapture?.(ev.pointerId);
    ev.preventDefault();
    ev.stopPropagation();
  });
  handle.addEventListener("pointermove", (ev) => {
    if (!dragging) return;
    const { py, value } = valueAt(ev);
    handle.setAttribute("cy", py);
    onMove(value);
  });
  const finish = (ev) => {
    if (!dragging) return;
    dragging = false;
    const { py, value } = valueAt(ev);
    handle.setAttribute("cy", py);
    drag.active = false;
    onDrop(value);
  };
  handle.addEventListener("pointerup", finish);
  handle.addEventListener("pointercancel", finish);
}
