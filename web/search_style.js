// Styles of the search view panel (scoped under .dsv-panel; dark, like both ComfyUI themes). Text is 12 px or more.

export const PANEL_CSS = `
/* Below modern's top bar and right of its side bar; the 2024 menu floats on the right. */
.dsv-panel { position: fixed; top: 56px; left: 56px; width: 520px; min-width: 360px; max-height: calc(100vh - 110px); overflow: auto;
  z-index: 1000; background: rgb(24,26,30); color: #ddd; border: 1px solid #444; border-radius: 6px;
  font: 13px/1.35 system-ui, sans-serif; box-shadow: 0 4px 18px rgba(0,0,0,0.5); resize: both; }
.dsv-panel[hidden], .dsv-panel [hidden] { display: none !important; }
/* Docked in the modern frontend's sidebar tab: the tab's full width, scrolled by the tab, no drag or resize. */
.dsv-panel.dsv-docked { position: relative; top: auto; left: auto; width: auto; min-width: 0; max-height: none; overflow: visible;
  z-index: auto; border: 0; border-radius: 0; box-shadow: none; resize: none; }
.dsv-docked .dsv-header { cursor: default; }
.dsv-header { display: flex; gap: 4px; align-items: center; padding: 5px 8px; background: #30343c; cursor: move;
  position: sticky; top: 0; z-index: 2; flex-wrap: wrap; }
.dsv-heading { flex: 1; font-weight: 600; font-size: 14px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.dsv-break { flex-basis: 100%; height: 0; }
.dsv-button { background: #444a55; color: #eee; border: 1px solid #555; border-radius: 3px; padding: 2px 7px; cursor: pointer; font-size: 12px; }
.dsv-runs, .dsv-item { background: #222; color: #ddd; border: 1px solid #555; font-size: 12px; max-width: 260px; }
.dsv-status { padding: 4px 10px; color: #aab; font-size: 12px; }
.dsv-warning { margin: 4px 8px; padding: 5px 8px; color: #fc8; background: #3a2f1c; border-radius: 4px; font-size: 12px; }
.dsv-error { padding: 4px 10px; color: #f88; font-size: 12px; white-space: pre-wrap; }
.dsv-section h4 { margin: 10px 10px 4px; font-size: 13px; color: #9bd; font-weight: 600; }
.dsv-row, .dsv-stack { display: flex; flex-direction: column; gap: 6px; padding: 0 8px; }
.dsv-figure { display: flex; flex-direction: column; gap: 2px; }
.dsv-chart { background: #1b1d22; border-radius: 4px; display: block; }
.dsv-chart text { fill: #aab; font-size: 12px; }
.dsv-chart .dsv-title { fill: #dde; font-size: 12px; font-weight: 600; }
.dsv-chart .dsv-axis-name { fill: #889; }
.dsv-chart .dsv-drag-readout { fill: #fc6; font-weight: 600; }
.dsv-chart .dsv-dive-label, .dsv-chart .dsv-budget-label { fill: #f9a640; }
.dsv-axes line { stroke: #556; }
.dsv-axes line.dsv-grid { stroke: #2c3038; }
.dsv-rule { stroke: #778; stroke-dasharray: 2 2; pointer-events: none; }
.dsv-resample { stroke: #c66; stroke-dasharray: 3 3; }
.dsv-budget { stroke: #f55; stroke-dasharray: 6 3; stroke-width: 1.5; }
.dsv-strip-axis { stroke: #556; }
.dsv-would-backtrack { fill: none; stroke: #f55; stroke-width: 2; }
.dsv-handle { fill: #fc6; stroke: #000; stroke-width: 1.5; cursor: ns-resize; }
.dsv-hit { pointer-events: stroke; cursor: crosshair; }
.dsv-legend { display: flex; flex-wrap: wrap; gap: 2px 12px; padding: 2px 4px 4px; font-size: 12px; color: #bbc; }
.dsv-legend-item { display: inline-flex; align-items: center; gap: 4px; white-space: nowrap; }
.dsv-swatch { width: 14px; height: 4px; background: var(--c); border-radius: 2px; display: inline-block; }
.dsv-swatch-dash { background: repeating-linear-gradient(90deg, var(--c) 0 4px, transparent 4px 7px); }
.dsv-swatch-dot { width: 9px; height: 9px; border-radius: 50%; }
.dsv-swatch-hollow { width: 9px; height: 9px; border-radius: 50%; background: none; border: 2px solid var(--c); }
.dsv-budget-note { color: #f99; font-size: 12px; padding: 2px 4px; }
.dsv-result { background: #20242b; border-bottom: 1px solid #333; padding-bottom: 8px; }
.dsv-pick { display: flex; gap: 10px; padding: 0 10px; align-items: flex-start; }
.dsv-pick-image { flex: 0 0 auto; }
.dsv-pick-img { width: 168px; height: 168px; object-fit: contain; background: #000; border-radius: 4px; cursor: zoom-in; border: 2px solid #fd4; }
.dsv-noimage { width: 168px; height: 96px; display: flex; align-items: center; justify-content: center; text-align: center;
  color: #889; font-size: 12px; border: 1px dashed #555; border-radius: 4px; padding: 4px; box-sizing: border-box; }
.dsv-pick-text { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 5px; }
.dsv-pick-title { font-weight: 600; color: #fd4; }
.dsv-why { color: #ccd; font-size: 12px; }
.dsv-settings { display: flex; flex-wrap: wrap; gap: 3px; }
.dsv-setting { background: #2c313a; border-radius: 3px; padding: 1px 5px; font-size: 12px; color: #dde; }
.dsv-setting-name { color: #99a; }
.dsv-grid { list-style: none; display: grid; grid-template-columns: repeat(auto-fill, minmax(84px, 1fr)); gap: 6px; margin: 8px 10px 0; padding: 0; }
.dsv-rank { display: flex; flex-direction: column; align-items: center; gap: 2px; font-size: 12px; border-top: 3px solid var(--c); padding-top: 2px; }
.dsv-selected { color: #fd4; }
.dsv-selected .dsv-thumb { outline: 2px solid #fd4; }
.dsv-thumb { width: 80px; height: 80px; object-fit: cover; border-radius: 3px; background: #000; cursor: zoom-in; }
.dsv-thumb-empty { background: #2a2d33; cursor: default; display: flex; align-items: center; justify-content: center; color: #778; font-size: 12px; }
.dsv-thumb-spacer { width: 48px; }
.dsv-caption { text-align: center; line-height: 1.25; }
.dsv-compare-line { margin: 6px 10px 0; padding: 5px 8px; background: #1e2a33; border-radius: 4px; font-size: 12px; color: #cde; }
.dsv-sbs { display: flex; flex-direction: column; gap: 3px; padding: 0 8px; }
.dsv-sbs-row { display: flex; gap: 8px; align-items: center; cursor: pointer; border-radius: 4px; padding: 2px; }
.dsv-sbs-row:hover, .dsv-sbs-current { background: #272c35; }
.dsv-sbs-row .dsv-thumb { width: 48px; height: 48px; }
.dsv-sbs-label { width: 140px; font-size: 12px; }
.dsv-sbs-name { font-weight: 600; }
.dsv-sbs-meta { color: #99a; }
.dsv-sbs-axis-row { cursor: default; }
.dsv-sbs-axis-row:hover { background: none; }
.dsv-controls { display: flex; flex-direction: column; gap: 3px; padding: 4px 10px; }
.dsv-controls-title { color: #9bd; font-size: 12px; margin-top: 4px; }
.dsv-control { display: flex; gap: 6px; align-items: center; font-size: 12px; flex-wrap: wrap; }
.dsv-control-name { width: 150px; color: #bbc; }
.dsv-control input[type=range] { flex: 1; min-width: 80px; }
.dsv-control input[type=number] { width: 80px; background: #222; color: #ddd; border: 1px solid #555; font-size: 12px; }
.dsv-control select { background: #222; color: #ddd; border: 1px solid #555; font-size: 12px; }
.dsv-ignored .dsv-control-name, .dsv-ignored input, .dsv-ignored select { opacity: 0.45; }
.dsv-ignored-reason { flex-basis: 100%; padding-left: 156px; color: #998; font-style: italic; font-size: 12px; }
.dsv-ignored-reason:empty { display: none; }
.dsv-note, .dsv-empty { color: #99a; padding: 4px 10px; font-style: italic; font-size: 12px; }
.dsv-hover { position: absolute; z-index: 5; background: #111418; border: 1px solid #556; border-radius: 4px; padding: 4px;
  pointer-events: none; max-width: 200px; font-size: 12px; box-shadow: 0 2px 10px rgba(0,0,0,0.6); }
.dsv-hover-img { width: 128px; height: 128px; object-fit: contain; display: block; background: #000; margin-bottom: 3px; }
.dsv-lightbox { position: fixed; z-index: 1001; background: rgba(10,11,14,0.94); display: flex; flex-direction: column;
  align-items: center; justify-content: center; gap: 6px; cursor: zoom-out; }
.dsv-lightbox img { max-width: 96%; max-height: 85%; object-fit: contain; image-rendering: auto; }
.dsv-lightbox-text { font-size: 13px; color: #dde; }
.dsv-toggle { position: fixed; left: 50%; transform: translateX(-50%); bottom: 12px; z-index: 1000; background: #30343c; color: #eee;
  border: 1px solid #555; border-radius: 4px; padding: 4px 10px; cursor: pointer; font: 12px sans-serif; }
`;
