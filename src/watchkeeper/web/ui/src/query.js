// The expression browser: several query panels, each with a table (instant) or graph
// (range) view, metric and label autocomplete, the server's formatted query and stats.
// Panel state lives in the URL (g0.expr, g0.tab, g0.range_input, ...) so a link shows
// the same thing, as in Prometheus.
import { api, query, queryRange } from "./api.js";
import { h, clear, formatLabels, parseDuration, formatDurationShort } from "./dom.js";
import { renderGraph, formatValue } from "./graph.js";
import { t } from "./i18n.js";

let metricNames = null;

async function loadMetricNames() {
  if (metricNames) return metricNames;
  try {
    metricNames = (await api("label/__name__/values")).data;
  } catch {
    metricNames = [];
  }
  return metricNames;
}

function readPanels() {
  const params = new URLSearchParams(location.search);
  const panels = [];
  for (let i = 0; params.has(`g${i}.expr`) || params.has(`g${i}.tab`); i++) {
    const tab = params.get(`g${i}.tab`);
    panels.push({
      expr: params.get(`g${i}.expr`) || "",
      tab: tab === "0" || tab === "graph" ? "graph" : "table",
      range: params.get(`g${i}.range_input`) || "1h",
      end: params.get(`g${i}.end_input`) || "",
      moment: params.get(`g${i}.moment_input`) || "",
      step: params.get(`g${i}.step_input`) || "",
      stacked: params.get(`g${i}.display_mode`) === "stacked" || params.get(`g${i}.stacked`) === "1",
    });
  }
  return panels.length ? panels : [newPanel()];
}

function newPanel() {
  return { expr: "", tab: "table", range: "1h", end: "", moment: "", step: "", stacked: false };
}

function writePanels(panels) {
  const params = new URLSearchParams();
  panels.forEach((p, i) => {
    params.set(`g${i}.expr`, p.expr);
    params.set(`g${i}.tab`, p.tab);
    params.set(`g${i}.range_input`, p.range);
    if (p.end) params.set(`g${i}.end_input`, p.end);
    if (p.moment) params.set(`g${i}.moment_input`, p.moment);
    if (p.step) params.set(`g${i}.step_input`, p.step);
    params.set(`g${i}.display_mode`, p.stacked ? "stacked" : "lines");
  });
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

function toUnix(text) {
  if (!text) return Date.now() / 1000;
  const ms = Date.parse(text.includes("T") || text.includes(" ") ? text.replace(" ", "T") + (text.endsWith("Z") ? "" : "Z") : text);
  return Number.isNaN(ms) ? Date.now() / 1000 : ms / 1000;
}

// Finds what the user is typing at the cursor: a metric name, a label name inside {...},
// or a label value after name=".
function completionContext(text, pos) {
  const before = text.slice(0, pos);
  const valueMatch = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/.exec(before);
  const open = before.lastIndexOf("{");
  const close = before.lastIndexOf("}");
  if (valueMatch && open > close) {
    const metric = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{[^{}]*$/.exec(before);
    return { kind: "value", label: valueMatch[1], prefix: valueMatch[3], metric: metric ? metric[1] : "" };
  }
  if (open > close) {
    const nameMatch = /([a-zA-Z_][a-zA-Z0-9_]*)$/.exec(before);
    const metric = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{[^{}]*$/.exec(before);
    return { kind: "label", prefix: nameMatch ? nameMatch[1] : "", metric: metric ? metric[1] : "" };
  }
  const word = /([a-zA-Z_:][a-zA-Z0-9_:]*)$/.exec(before);
  return word ? { kind: "metric", prefix: word[1] } : null;
}

async function suggestions(ctx) {
  if (!ctx) return [];
  if (ctx.kind === "metric") {
    const names = await loadMetricNames();
    return names.filter((n) => n.startsWith(ctx.prefix) && n !== ctx.prefix).slice(0, 30);
  }
  const match = ctx.metric ? [`{__name__="${ctx.metric}"}`] : undefined;
  try {
    if (ctx.kind === "label") {
      const res = await api("labels", match ? { "match[]": match } : null);
      return res.data.filter((n) => n !== "__name__" && n.startsWith(ctx.prefix)).slice(0, 30);
    }
    const res = await api(`label/${encodeURIComponent(ctx.label)}/values`, match ? { "match[]": match } : null);
    return res.data.filter((v) => v.startsWith(ctx.prefix)).slice(0, 30);
  } catch {
    return [];
  }
}

function renderTable(container, data) {
  const { resultType, result } = data;
  if (resultType === "scalar" || resultType === "string") {
    container.append(h("table.data", [h("tr", [h("td", "scalar"), h("td", String(result[1]))])]));
    return;
  }
  if (!result.length) { container.append(h("div.empty", t("query.emptyResult"))); return; }
  const rows = result.slice(0, 10000).map((s) => {
    const value = resultType === "vector"
      ? s.value[1]
      : (s.values || []).map(([ts, v]) => `${v} @${ts}`).join("\n");
    return h("tr", [h("td.series", formatLabels(s.metric)), h("td.value", value)]);
  });
  container.append(h("table.data", [
    h("thead", h("tr", [h("th", t("query.series")), h("th", t("query.value"))])),
    h("tbody", rows),
  ]));
}

function renderMessages(container, payload) {
  for (const w of payload.warnings || []) container.append(h("div.alert.warn", `${t("query.warning")}: ${w}`));
  for (const i of payload.infos || []) container.append(h("div.alert.info", `${t("query.info")}: ${i}`));
}

function buildPanel(panels, index, rerender) {
  const p = panels[index];
  const textarea = h("textarea.expr", { rows: 1, placeholder: t("query.placeholder"), spellcheck: "false", "aria-label": "expression" }, []);
  textarea.value = p.expr;
  const suggestBox = h("ul.suggest");
  const formatted = h("div.formatted");
  const output = h("div.output");
  const stats = h("div.stats");
  let selected = -1;

  async function showSuggestions() {
    const ctx = completionContext(textarea.value, textarea.selectionStart);
    const items = await suggestions(ctx);
    selected = -1;
    clear(suggestBox);
    for (const item of items) {
      suggestBox.append(h("li", { onmousedown: (e) => { e.preventDefault(); accept(item, ctx); } }, item));
    }
    suggestBox.style.display = items.length ? "block" : "none";
  }

  function accept(item, ctx) {
    const pos = textarea.selectionStart;
    const before = textarea.value.slice(0, pos - ctx.prefix.length);
    textarea.value = before + item + textarea.value.slice(pos);
    textarea.selectionStart = textarea.selectionEnd = before.length + item.length;
    suggestBox.style.display = "none";
    p.expr = textarea.value;
  }

  textarea.addEventListener("input", () => {
    p.expr = textarea.value;
    textarea.style.height = "auto";
    textarea.style.height = `${textarea.scrollHeight}px`;
    showSuggestions();
  });
  textarea.addEventListener("blur", () => { suggestBox.style.display = "none"; });
  textarea.addEventListener("keydown", (e) => {
    const items = [...suggestBox.children];
    if (suggestBox.style.display === "block" && items.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        selected = (selected + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach((li, i) => li.classList.toggle("active", i === selected));
        return;
      }
      if ((e.key === "Tab" || e.key === "Enter") && selected >= 0) {
        e.preventDefault();
        accept(items[selected].textContent, completionContext(textarea.value, textarea.selectionStart));
        return;
      }
      if (e.key === "Escape") { suggestBox.style.display = "none"; return; }
    }
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); execute(); }
  });

  async function showFormatted() {
    clear(formatted);
    if (!p.expr.trim()) return;
    try {
      const res = await api("format_query", { query: p.expr });
      if (res.data !== p.expr.trim()) {
        formatted.append(h("span.label", `${t("query.formatted")}: `), h("code", res.data));
      }
    } catch { /* parse errors show up in the result area */ }
  }

  async function execute() {
    writePanels(panels);
    clear(output); clear(stats);
    if (!p.expr.trim()) { output.append(h("div.empty", t("query.noData"))); return; }
    const started = performance.now();
    showFormatted();
    try {
      if (p.tab === "table") {
        const time = p.moment ? toUnix(p.moment) : Date.now() / 1000;
        const res = await query(p.expr, time);
        renderMessages(output, res);
        renderTable(output, res.data);
        const n = Array.isArray(res.data.result) && res.data.resultType !== "scalar" ? res.data.result.length : 1;
        stats.textContent = t("query.statsInstant", { ms: Math.round(performance.now() - started), series: n });
      } else {
        const range = parseDuration(p.range) || 3600;
        const end = p.end ? toUnix(p.end) : Date.now() / 1000;
        const start = end - range;
        const step = parseDuration(p.step) || Math.max(1, Math.ceil(range / 250));
        const res = await queryRange(p.expr, start, end, step);
        renderMessages(output, res);
        if (!res.data.result.length) output.append(h("div.empty", t("query.emptyResult")));
        else {
          if (res.data.result.length > 200) {
            output.append(h("div.alert.info", t("query.seriesLimited", { shown: 200, total: res.data.result.length })));
          }
          renderGraph(output, res.data.result, { start, end, step, stacked: p.stacked });
        }
        stats.textContent = t("query.stats", { ms: Math.round(performance.now() - started), step, series: res.data.result.length });
      }
    } catch (err) {
      output.append(h("div.alert.error", `${t("query.error")}: ${err.message}`));
    }
  }

  const tabButton = (name, label) => h(`button.tab${p.tab === name ? ".active" : ""}`, {
    onclick: () => { p.tab = name; rerender(); },
  }, label);

  const graphControls = p.tab === "graph" ? h("div.controls", [
    h("label", [t("query.range"), " ", h("input.short", { value: p.range, "aria-label": "range", onchange: (e) => { p.range = e.target.value; execute(); } })]),
    h("button.small", { onclick: () => { p.range = formatDurationShort(Math.max(1, (parseDuration(p.range) || 3600) / 2)); rerender(); } }, "−"),
    h("button.small", { onclick: () => { p.range = formatDurationShort((parseDuration(p.range) || 3600) * 2); rerender(); } }, "+"),
    h("label", [t("query.endTime"), " ", h("input", { value: p.end, placeholder: t("query.now"), "aria-label": "end time", onchange: (e) => { p.end = e.target.value; execute(); } })]),
    h("label", [t("query.resolution"), " ", h("input.short", { value: p.step, placeholder: t("query.auto"), "aria-label": "resolution", onchange: (e) => { p.step = e.target.value; execute(); } })]),
    h("label", [h("input", { type: "checkbox", checked: p.stacked, onchange: (e) => { p.stacked = e.target.checked; execute(); } }), " ", t("query.stacked")]),
  ]) : h("div.controls", [
    h("label", [t("query.evalTime"), " ", h("input", { value: p.moment, placeholder: t("query.now"), "aria-label": "evaluation time", onchange: (e) => { p.moment = e.target.value; execute(); } })]),
  ]);

  const el = h("section.panel", [
    h("div.editor", [textarea, suggestBox,
      h("button.primary", { onclick: execute }, t("query.execute"))]),
    formatted,
    h("div.tabs", [tabButton("table", t("query.table")), tabButton("graph", t("query.graph")),
      panels.length > 1 ? h("button.link", { onclick: () => { panels.splice(index, 1); rerender(); } }, t("query.removePanel")) : null]),
    graphControls, output, stats,
  ]);
  if (p.expr) setTimeout(execute, 0);
  return el;
}

export function renderQueryPage(root) {
  const panels = readPanels();
  const list = h("div.panels");
  function rerender() {
    writePanels(panels);
    clear(list);
    panels.forEach((_, i) => list.append(buildPanel(panels, i, rerender)));
  }
  rerender();
  root.append(list, h("button", { onclick: () => { panels.push(newPanel()); rerender(); } }, t("query.addPanel")));
  loadMetricNames();
}
