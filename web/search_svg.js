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

/**
 * A chart frame: title, axes with a few ticks, and linear scales.
 * Returns {svg, plot, x, y, invertY, width, height, margin} where plot is the group to draw in.
 */
export function chartFrame({ title, xDomain, yDomain, width = 420, height = 170, xLabel = "", yLabel = "", kind = "" }) {
  const margin = { left: 44, right: 10, top: 18, bottom: 26 };
  const svg = svgEl("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, class: "dsv-chart", "data-chart": kind,
  });
  const iw = width - margin.left - margin.right;
  const ih = height - margin.top - margin.bottom;
  const [x0, x1] = xDomain[1] > xDomain[0] ? xDomain : [xDomain[0], xDomain[0] + 1];
  const [y0, y1] = yDomain;
  const x = (v) => margin.left + ((v - x0) / (x1 - x0)) * iw;
  const y = (v) => margin.top + (1 - (v - y0) / (y1 - y0)) * ih;
  const invertY = (py) => y0 + (1 - (py - margin.top) / ih) * (y1 - y0);
  svg.appendChild(svgEl("text", { x: margin.left, y: 12, class: "dsv-title" }, title));
  const axes = svgEl("g", { class: "dsv-axes" });
  axes.appendChild(svgEl("line", { x1: margin.left, y1: margin.top + ih, x2: margin.left + iw, y2: margin.top + ih }));
  axes.appendChild(svgEl("line", { x1: margin.left, y1: margin.top, x2: margin.left, y2: margin.top + ih }));
  for (let k = 0; k <= 3; k++) {
    const v = y0 + ((y1 - y0) * k) / 3;
    axes.appendChild(svgEl("text", { x: margin.left - 4, y: y(v) + 3, "text-anchor": "end" }, formatNumber(v)));
  }
  // Whole-number ticks: steps, levels and items are integers.
  const xStep = Math.max(1, Math.ceil((x1 - x0) / 6));
  for (let v = Math.ceil(x0); v <= x1 + 1e-9; v += xStep) {
    axes.appendChild(svgEl("text", { x: x(v), y: margin.top + ih + 12, "text-anchor": "middle" }, formatNumber(v)));
  }
  if (xLabel) axes.appendChild(svgEl("text", { x: margin.left + iw, y: height - 2, "text-anchor": "end" }, xLabel));
  if (yLabel) axes.appendChild(svgEl("text", { x: width - margin.right, y: 12, "text-anchor": "end" }, yLabel));
  svg.appendChild(axes);
  const plot = svgEl("g", { class: "dsv-plot" });
  svg.appendChild(plot);
  return { svg, plot, x, y, invertY, width, height, margin };
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

/** A short note in place of a chart (no data yet, unknown algorithm, ...). */
export function emptyNote(text) {
  return htmlEl("div", "dsv-empty", text);
}
