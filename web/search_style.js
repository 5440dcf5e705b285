// Styles of the search view panel (scoped under .dsv-panel; dark, like both ComfyUI themes).

export const PANEL_CSS = `
/* Below modern's top bar and right of its side bar; the 2024 menu floats on the right. */
.dsv-panel { position: fixed; top: 56px; left: 56px; width: 460px; max-height: calc(100vh - 110px); overflow: auto;
  z-index: 1000; background: rgb(24,26,30); color: #ddd; border: 1px solid #444; border-radius: 6px;
  font: 12px sans-serif; box-shadow: 0 4px 18px rgba(0,0,0,0.5); resize: both; }
.dsv-panel[hidden] { display: none; }
.dsv-header { display: flex; gap: 4px; align-items: center; padding: 4px 6px; background: #30343c; cursor: move;
  position: sticky; top: 0; z-index: 1; flex-wrap: wrap; }
.dsv-heading { flex: 1; font-weight: bold; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.dsv-button { background: #444a55; color: #eee; border: 1px solid #555; border-radius: 3px; padding: 1px 6px; cursor: pointer; }
.dsv-button[hidden], .dsv-item[hidden], .dsv-error[hidden] { display: none; }
.dsv-status { padding: 3px 8px; color: #aab; }
.dsv-error { padding: 3px 8px; color: #f88; }
.dsv-section h4 { margin: 6px 8px 2px; font-size: 12px; color: #9bd; }
.dsv-row { display: flex; flex-wrap: wrap; gap: 4px; padding: 0 6px; }
.dsv-chart { background: #1b1d22; border-radius: 4px; }
.dsv-chart text { fill: #99a; font-size: 9px; }
.dsv-chart .dsv-title { fill: #ccd; font-size: 10px; }
.dsv-axes line { stroke: #556; }
.dsv-resample { stroke: #a55; stroke-dasharray: 2 2; }
.dsv-handle { fill: #fc6; stroke: #000; cursor: ns-resize; }
.dsv-controls { display: flex; flex-direction: column; gap: 2px; padding: 4px 2px; }
.dsv-control { display: flex; gap: 6px; align-items: center; }
.dsv-control-name { width: 96px; color: #bbc; }
.dsv-control input[type=number] { width: 70px; background: #222; color: #ddd; border: 1px solid #555; }
.dsv-control select { background: #222; color: #ddd; border: 1px solid #555; }
.dsv-note, .dsv-empty { color: #889; padding: 4px 8px; font-style: italic; }
.dsv-ranking { margin: 2px 8px 8px; padding-left: 18px; }
.dsv-rank { display: flex; gap: 6px; align-items: center; padding: 1px 0; }
.dsv-selected { color: #fd4; }
.dsv-thumb { width: 48px; height: 48px; object-fit: cover; border-radius: 3px; background: #000; }
.dsv-toggle { position: fixed; left: 50%; transform: translateX(-50%); bottom: 12px; z-index: 1000; background: #30343c; color: #eee;
  border: 1px solid #555; border-radius: 4px; padding: 4px 10px; cursor: pointer; font: 12px sans-serif; }
`;
