// A range-query graph drawn with uPlot: one line per series, a legend with series labels,
// hover values, and an optional stacked mode.
import uPlot from "uplot";
import { h, formatLabels } from "./dom.js";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#3366cc", "#dc3912", "#109618", "#990099", "#0099c6"];

export function colorFor(i) { return PALETTE[i % PALETTE.length]; }

// Expands "{{instance}}"-style legend templates (Grafana and Prometheus legends).
export function legendName(metric, template) {
  if (!template) return formatLabels(metric);
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => metric[name] ?? "");
}

const SI = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
const IEC = [[2 ** 50, "Pi"], [2 ** 40, "Ti"], [2 ** 30, "Gi"], [2 ** 20, "Mi"], [2 ** 10, "Ki"]];

// Formats an axis or panel value with a unit: bytes in KiB/MiB/GiB, others with SI prefixes.
export function formatUnit(v, unit = "") {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  const abs = Math.abs(v);
  const table = unit === "B" ? IEC : SI;
  for (const [size, prefix] of table) {
    if (abs >= size) return `${Number((v / size).toPrecision(4))}${prefix}${unit}`;
  }
  if (abs !== 0 && abs < 1e-3) return `${v.toExponential(2)}${unit}`;
  return `${Number(v.toPrecision(4))}${unit}`;
}

export function formatValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(3);
  return Number(v.toPrecision(6)).toString();
}

// Builds aligned uPlot data from matrix results: the union of all timestamps as x.
export function alignMatrix(series, start, end, step) {
  const n = Math.floor((end - start) / step) + 1;
  const xs = new Float64Array(n);
  for (let i = 0; i < n; i++) xs[i] = start + i * step;
  const ys = series.map((s) => {
    const col = new Array(n).fill(null);
    for (const [t, v] of s.values || []) {
      const i = Math.round((t - start) / step);
      if (i >= 0 && i < n) col[i] = Number(v);
    }
    return col;
  });
  return [Array.from(xs), ...ys];
}

function stack(data) {
  const out = [data[0]];
  let acc = new Array(data[0].length).fill(0);
  for (let s = 1; s < data.length; s++) {
    acc = data[s].map((v, i) => (v === null ? acc[i] : acc[i] + v));
    out.push(acc.slice());
  }
  return out;
}

export function renderGraph(container, result, { start, end, step, stacked = false,
  legendTemplate = "", height = 320, unit = "" } = {}) {
  const series = result.slice(0, 200);
  const data = alignMatrix(series, start, end, step);
  const plotData = stacked ? stack(data) : data;
  const width = Math.max(300, container.clientWidth || 800);
  const opts = {
    width,
    height,
    cursor: { drag: { x: true, y: false } },
    legend: { show: false },
    scales: { x: { time: true } },
    axes: [{}, { values: (u, vals) => vals.map((v) => formatUnit(v, unit)), size: 70 }],
    series: [{}].concat(series.map((s, i) => ({
      label: legendName(s.metric, legendTemplate),
      stroke: colorFor(i),
      fill: stacked ? colorFor(i) + "55" : undefined,
      width: 1.5,
      spanGaps: false,
      points: { show: false },
    }))),
    hooks: { setCursor: [(u) => updateHover(u, hover, data)] },
  };
  const plotEl = h("div.plot");
  const hover = h("div.hover");
  const legend = h("div.legend", series.map((s, i) =>
    h("div.legend-item", { "data-index": i, onclick: () => toggle(i) }, [
      h("span.swatch", { style: { background: colorFor(i) } }),
      h("span", legendName(s.metric, legendTemplate)),
    ])));
  container.append(h("div.graph", [plotEl, hover, legend]));
  const plot = new uPlot(opts, plotData, plotEl);
  function toggle(i) {
    const shown = plot.series[i + 1].show;
    plot.setSeries(i + 1, { show: !shown });
    legend.children[i].classList.toggle("off", shown);
  }
  const resize = () => plot.setSize({ width: Math.max(300, container.clientWidth), height });
  window.addEventListener("resize", resize);
  return plot;
}

function updateHover(u, hover, data) {
  const idx = u.cursor.idx;
  if (idx === null || idx === undefined) { hover.textContent = ""; return; }
  const time = new Date(data[0][idx] * 1000).toISOString().replace("T", " ").slice(0, 19);
  const rows = [];
  for (let s = 1; s < u.series.length; s++) {
    const v = data[s][idx];
    if (v === null || !u.series[s].show) continue;
    rows.push(h("div", [h("span.swatch", { style: { background: u.series[s].stroke() } }),
      `${u.series[s].label}: `, h("b", formatValue(v))]));
  }
  hover.replaceChildren(h("div.hover-time", time), ...rows.slice(0, 12));
}
