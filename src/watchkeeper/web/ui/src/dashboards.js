// Dashboards: a list, a view with variables from label_values(), graph/stat/gauge/table
// panels, an editor for the dashboard JSON, and import of Grafana dashboard JSON.
import { api, query, queryRange } from "./api.js";
import { h, clear, formatLabels, parseDuration } from "./dom.js";
import { renderGraph, formatUnit, legendName } from "./graph.js";
import { t } from "./i18n.js";

const prefix = () => (window.WK && window.WK.prefix) || "";

async function dashApi(path = "", { method = "GET", body = null } = {}) {
  const init = { method, headers: {} };
  if (body !== null) { init.body = typeof body === "string" ? body : JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const res = await fetch(`${prefix()}/api/wk/dashboards${path}`, init);
  const payload = await res.json();
  if (payload.status !== "success") throw new Error(payload.error || res.statusText);
  return payload.data;
}

export async function renderDashboardList(root, navigate) {
  root.append(h("h1", t("dash.title")));
  const importBox = h("section.card.import", { style: { display: "none" } }, [
    h("p", t("dash.importHelp")),
    h("textarea.json", { rows: 10, "aria-label": "grafana json" }),
    h("div", [h("button.primary", { onclick: doImport }, t("dash.importButton"))]),
    h("div.import-result"),
  ]);
  root.append(h("div.controls", [
    h("button.primary", { onclick: createNew }, t("dash.new")),
    h("button", { onclick: () => { importBox.style.display = importBox.style.display === "none" ? "block" : "none"; } }, t("dash.import")),
  ]), importBox);
  const list = h("div.dash-list");
  root.append(list);
  try {
    const items = await dashApi();
    if (!items.length) list.append(h("div.empty", t("dash.none")));
    for (const d of items) {
      list.append(h("a.card.dash-item", { href: `${prefix()}/dashboards/${encodeURIComponent(d.uid)}`, onclick: (e) => { e.preventDefault(); navigate(`/dashboards/${encodeURIComponent(d.uid)}`); } }, [
        h("b", d.title), d.builtin ? h("span.badge", t("dash.builtin")) : null,
        h("div.muted", `${d.panels} panels`),
      ]));
    }
  } catch (err) { list.append(h("div.alert.error", t("common.error", { msg: err.message }))); }

  async function createNew() {
    const uid = `dash-${Date.now().toString(36)}`;
    await dashApi(`/${uid}`, { method: "PUT", body: { uid, title: t("dash.new"), time: { from: "now-1h" }, variables: [], panels: [] } });
    navigate(`/dashboards/${uid}?edit=1`);
  }

  async function doImport() {
    const out = importBox.querySelector(".import-result");
    clear(out);
    try {
      const res = await dashApi("/import-grafana", { method: "POST", body: importBox.querySelector("textarea").value });
      out.append(h("div.alert.info", `${res.dashboard.title}: ${res.dashboard.panels.length} panels`));
      if (res.unsupported.length) {
        out.append(h("div.alert.warn", [h("b", `${t("dash.unsupported")}: `), h("ul", res.unsupported.map((u) => h("li", u)))]));
      }
      const link = h("a", { href: "#", onclick: (e) => { e.preventDefault(); navigate(`/dashboards/${encodeURIComponent(res.dashboard.uid)}`); } }, res.dashboard.title);
      out.append(link);
    } catch (err) { out.append(h("div.alert.error", t("common.error", { msg: err.message }))); }
  }
}

function substitute(expr, vars) {
  return expr.replace(/\$\{?(\w+)\}?/g, (m, name) => (name in vars ? vars[name] : m));
}

async function variableOptions(v) {
  const m = /^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec((v.query || "").trim());
  if (!m) return v.options || [];
  const params = m[1] ? { "match[]": m[1] } : null;
  try { return (await api(`label/${encodeURIComponent(m[2])}/values`, params)).data; } catch { return []; }
}

function thresholdColor(panel, value) {
  let color = "#2ca02c";
  for (const step of panel.thresholds || []) if (value >= step.value) color = step.color;
  return color;
}

async function renderPanel(el, panel, vars, range) {
  clear(el);
  el.append(h("div.panel-title", panel.title || ""));
  const body = h("div.panel-body");
  el.append(body);
  const targets = panel.targets || (panel.expr ? [{ expr: panel.expr, legend: panel.legend }] : []);
  const unit = panel.unit === "percent" ? "%" : panel.unit === "bytes" ? "B" : panel.unit === "seconds" ? "s" : "";
  try {
    if (panel.type === "graph") {
      const end = Date.now() / 1000;
      const start = end - range;
      const step = Math.max(1, Math.ceil(range / 240));
      let result = [];
      const legends = [];
      for (const target of targets) {
        const res = await queryRange(substitute(target.expr, vars), start, end, step);
        for (const s of res.data.result) { result.push(s); legends.push(target.legend || ""); }
      }
      if (!result.length) { body.append(h("div.empty", t("dash.noData"))); return; }
      result = result.map((s, i) => ({ ...s, metric: legends[i] ? { __legend__: legendName(s.metric, legends[i]) } : s.metric }));
      renderGraph(body, result, { start, end, step, stacked: Boolean(panel.stacked), height: 220, unit,
        legendTemplate: legends.some(Boolean) ? "{{__legend__}}" : "" });
      return;
    }
    const res = await query(substitute(targets[0]?.expr || "", vars));
    const data = res.data;
    const rows = data.resultType === "scalar" ? [{ metric: {}, value: data.result }] : data.result;
    if (!rows.length) { body.append(h("div.empty", t("dash.noData"))); return; }
    if (panel.type === "stat") {
      const v = Number(rows[0].value[1]);
      body.append(h("div.stat", { style: { color: thresholdColor(panel, v) } }, formatUnit(v, unit)));
    } else if (panel.type === "gauge") {
      const v = Number(rows[0].value[1]);
      const min = panel.min ?? 0;
      const max = panel.max ?? (unit === "%" ? 100 : Math.max(1, v));
      const frac = Math.max(0, Math.min(1, (v - min) / (max - min || 1)));
      body.append(h("div.gauge", [
        h("div.gauge-bar", h("div.gauge-fill", { style: { width: `${frac * 100}%`, background: thresholdColor(panel, v) } })),
        h("div.stat", formatUnit(v, unit)),
      ]));
    } else {
      body.append(h("table.data", [
        h("thead", h("tr", [h("th", t("query.series")), h("th", t("query.value"))])),
        h("tbody", rows.map((r) => h("tr", [h("td", legendName(r.metric, targets[0]?.legend) || formatLabels(r.metric)), h("td", formatUnit(Number(r.value[1]), unit))]))),
      ]));
    }
  } catch (err) {
    body.append(h("div.alert.error", err.message));
  }
}

export async function renderDashboard(root, uid, navigate) {
  let dash;
  try { dash = await dashApi(`/${encodeURIComponent(uid)}`); } catch (err) {
    root.append(h("div.alert.error", t("common.error", { msg: err.message }))); return;
  }
  const params = new URLSearchParams(location.search);
  const vars = {};
  let range = parseDuration((dash.time && dash.time.from || "now-1h").replace("now-", "")) || 3600;
  let timer = null;
  const grid = h("div.dash-grid");
  const varBar = h("div.controls.vars");
  const editor = h("section.card.editor", { style: { display: params.get("edit") ? "block" : "none" } });

  for (const v of dash.variables || []) {
    const options = await variableOptions(v);
    vars[v.name] = params.get(`var-${v.name}`) || v.current || options[0] || "";
    varBar.append(h("label", [`${v.label || v.name} `, h("select", { "aria-label": v.name, onchange: (e) => { vars[v.name] = e.target.value; drawPanels(); } },
      options.map((o) => h("option", { value: o, selected: o === vars[v.name] }, o)))]));
  }
  const rangeSelect = h("select", { "aria-label": "range", onchange: (e) => { range = Number(e.target.value); drawPanels(); } },
    [[300, "5m"], [900, "15m"], [3600, "1h"], [10800, "3h"], [21600, "6h"], [43200, "12h"], [86400, "1d"], [604800, "7d"]]
      .map(([s, label]) => h("option", { value: s, selected: s === range }, label)));
  const refreshSelect = h("select", { "aria-label": "refresh", onchange: (e) => setRefresh(Number(e.target.value)) },
    [[0, t("dash.off")], [10, "10s"], [30, "30s"], [60, "1m"], [300, "5m"]].map(([s, label]) => h("option", { value: s }, label)));
  root.append(h("div.dash-header", [h("h1", dash.title), varBar,
    h("div.controls", [h("label", [t("dash.range"), " ", rangeSelect]), h("label", [t("dash.refresh"), " ", refreshSelect]),
      h("button", { onclick: () => { editor.style.display = editor.style.display === "none" ? "block" : "none"; } }, t("dash.edit"))])]), editor, grid);

  const jsonArea = h("textarea.json", { rows: 24, "aria-label": "dashboard json" });
  jsonArea.value = JSON.stringify(dash, null, 2);
  const status = h("span.muted");
  editor.append(h("h3", t("dash.jsonModel")), jsonArea, h("div.controls", [
    h("button.primary", { onclick: save }, t("dash.save")),
    h("button", { onclick: () => { editor.style.display = "none"; } }, t("dash.cancel")),
    h("button.danger", { onclick: remove }, t("dash.delete")), status]));

  async function save() {
    try {
      const model = JSON.parse(jsonArea.value);
      await dashApi(`/${encodeURIComponent(uid)}`, { method: "PUT", body: model });
      status.textContent = t("dash.saved");
      dash = model;
      clear(root);
      renderDashboard(root, uid, navigate);
    } catch (err) { status.textContent = t("common.error", { msg: err.message }); }
  }
  async function remove() {
    if (!confirm(t("dash.confirmDelete"))) return;
    await dashApi(`/${encodeURIComponent(uid)}`, { method: "DELETE" });
    navigate("/dashboards");
  }
  function setRefresh(seconds) {
    if (timer) clearInterval(timer);
    timer = seconds ? setInterval(drawPanels, seconds * 1000) : null;
  }
  function drawPanels() {
    clear(grid);
    for (const panel of dash.panels || []) {
      const pos = panel.gridPos || { w: 12, h: 8 };
      const el = h(`div.card.dash-panel.panel-${panel.type}`, { style: { gridColumn: `span ${Math.max(1, Math.min(24, pos.w || 12))}`, minHeight: `${(pos.h || 8) * 30}px` }, "data-panel-type": panel.type });
      grid.append(el);
      renderPanel(el, panel, vars, range);
    }
  }
  drawPanels();
}
