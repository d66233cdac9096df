// The operational pages: targets, service discovery, rules, alerts and status.
import { api } from "./api.js";
import { h, clear, labelBadges, humanDuration, since, formatLabels } from "./dom.js";
import { t } from "./i18n.js";
import { formatValue } from "./graph.js";

function errorBox(err) { return h("div.alert.error", t("common.error", { msg: err.message })); }

function healthBadge(health) {
  const key = health === "up" ? "targets.up" : health === "down" ? "targets.down" : "targets.unknown";
  return h(`span.state.${health || "unknown"}`, t(key));
}

export async function renderTargetsPage(root) {
  root.append(h("h1", t("targets.title")));
  const params = new URLSearchParams(location.search);
  let filter = params.get("search") || "";
  let onlyUnhealthy = params.get("health") === "down";
  let showDiscovered = false;
  const body = h("div");
  const controls = h("div.controls", [
    h("input.search", { placeholder: t("targets.filter"), value: filter, "aria-label": "filter",
      oninput: (e) => { filter = e.target.value; draw(); } }),
    h("label", [h("input", { type: "checkbox", checked: onlyUnhealthy, onchange: (e) => { onlyUnhealthy = e.target.checked; draw(); } }), " ", t("targets.unhealthy")]),
    h("label", [h("input", { type: "checkbox", onchange: (e) => { showDiscovered = e.target.checked; draw(); } }), " ", t("targets.showDiscovered")]),
  ]);
  root.append(controls, body);
  let data;
  try {
    data = (await api("targets", { state: "active" })).data;
  } catch (err) { root.append(errorBox(err)); return; }

  function draw() {
    clear(body);
    const pools = new Map();
    for (const target of data.activeTargets) {
      const text = `${target.scrapeUrl} ${formatLabels(target.labels)}`.toLowerCase();
      if (filter && !text.includes(filter.toLowerCase())) continue;
      if (onlyUnhealthy && target.health === "up") continue;
      if (!pools.has(target.scrapePool)) pools.set(target.scrapePool, []);
      pools.get(target.scrapePool).push(target);
    }
    if (!pools.size) { body.append(h("div.empty", t("targets.none"))); return; }
    for (const [pool, targets] of [...pools.entries()].sort()) {
      const up = targets.filter((x) => x.health === "up").length;
      body.append(h("section.card", [
        h("h2", [pool, " ", h(`span.count${up === targets.length ? ".ok" : ".bad"}`, `(${up}/${targets.length} ${t("targets.up")})`)]),
        h("table.data", [
          h("thead", h("tr", [t("targets.endpoint"), t("targets.state"), t("targets.labels"), t("targets.lastScrape"), t("targets.duration"), t("targets.error")].map((c) => h("th", c)))),
          h("tbody", targets.map((x) => {
            const ago = since(x.lastScrape);
            return h("tr", { "data-health": x.health }, [
              h("td", h("a", { href: x.scrapeUrl }, x.scrapeUrl)),
              h("td", healthBadge(x.health)),
              h("td", [labelBadges(x.labels), showDiscovered ? h("div.discovered", [h("small", t("targets.discoveredLabels")), labelBadges(x.discoveredLabels)]) : null]),
              h("td", ago === null ? t("common.never") : t("targets.ago", { s: humanDuration(ago) })),
              h("td", humanDuration(x.lastScrapeDuration)),
              h("td.error-text", x.lastError || ""),
            ]);
          })),
        ]),
      ]));
    }
  }
  draw();
}

export async function renderServiceDiscoveryPage(root) {
  root.append(h("h1", t("sd.title")));
  let data;
  try {
    data = (await api("targets", { state: "any" })).data;
  } catch (err) { root.append(errorBox(err)); return; }
  const pools = new Map();
  const add = (pool, entry) => { if (!pools.has(pool)) pools.set(pool, []); pools.get(pool).push(entry); };
  for (const x of data.activeTargets) add(x.scrapePool, { discovered: x.discoveredLabels, labels: x.labels });
  for (const x of data.droppedTargets || []) add(x.discoveredLabels.job || x.scrapePool || "", { discovered: x.discoveredLabels, labels: null });
  for (const [pool, entries] of [...pools.entries()].sort()) {
    const active = entries.filter((e) => e.labels).length;
    root.append(h("section.card", [
      h("h2", `${pool} (${active} ${t("sd.active")} / ${entries.length - active} ${t("sd.dropped")})`),
      h("table.data", [
        h("thead", h("tr", [h("th", t("sd.discovered")), h("th", t("sd.target"))])),
        h("tbody", entries.map((e) => h("tr", [h("td", labelBadges(e.discovered)),
          h("td", e.labels ? labelBadges(e.labels) : h("span.muted", t("sd.droppedByRelabel")))]))),
      ]),
    ]));
  }
}

export async function renderRulesPage(root) {
  root.append(h("h1", t("rules.title")));
  let groups;
  try {
    groups = (await api("rules")).data.groups;
  } catch (err) { root.append(errorBox(err)); return; }
  if (!groups.length) { root.append(h("div.empty", t("rules.none"))); return; }
  for (const g of groups) {
    root.append(h("section.card", [
      h("h2", g.name),
      h("div.meta", [`${t("rules.file")}: ${g.file}`, "  ·  ", `${t("rules.interval")}: ${g.interval}s`, "  ·  ",
        `${t("rules.lastEvaluation")}: ${since(g.lastEvaluation) === null ? t("common.never") : t("targets.ago", { s: humanDuration(since(g.lastEvaluation)) })}`,
        "  ·  ", `${t("rules.evaluationTime")}: ${humanDuration(g.evaluationTime)}`]),
      h("table.data", [
        h("thead", h("tr", [t("rules.rule"), t("rules.health"), t("rules.lastEvaluation"), t("rules.evaluationTime")].map((c) => h("th", c)))),
        h("tbody", g.rules.map((r) => h("tr", [
          h("td", h("pre.rule", ruleText(r))),
          h("td", [h(`span.state.${r.health === "ok" ? "up" : r.health === "err" ? "down" : "unknown"}`, r.health), r.lastError ? h("div.error-text", r.lastError) : null]),
          h("td", since(r.lastEvaluation) === null ? t("common.never") : t("targets.ago", { s: humanDuration(since(r.lastEvaluation)) })),
          h("td", humanDuration(r.evaluationTime)),
        ]))),
      ]),
    ]));
  }
}

function ruleText(r) {
  const lines = [r.type === "alerting" ? `alert: ${r.name}` : `record: ${r.name}`, `expr: ${r.query}`];
  if (r.duration) lines.push(`for: ${humanDuration(r.duration)}`);
  if (r.keepFiringFor) lines.push(`keep_firing_for: ${humanDuration(r.keepFiringFor)}`);
  if (r.labels && Object.keys(r.labels).length) lines.push(`labels: ${JSON.stringify(r.labels)}`);
  if (r.annotations && Object.keys(r.annotations).length) lines.push(`annotations: ${JSON.stringify(r.annotations)}`);
  return lines.join("\n");
}

export async function renderAlertsPage(root) {
  root.append(h("h1", t("alerts.title")));
  let groups;
  try {
    groups = (await api("rules", { type: "alert" })).data.groups;
  } catch (err) { root.append(errorBox(err)); return; }
  const rules = groups.flatMap((g) => g.rules.map((r) => ({ ...r, group: g.name })));
  if (!rules.length) { root.append(h("div.empty", t("alerts.none"))); return; }
  const counts = { inactive: 0, pending: 0, firing: 0 };
  for (const r of rules) counts[r.state] = (counts[r.state] || 0) + 1;
  let showInactive = true;
  const list = h("div");
  root.append(h("div.controls", [
    h(`span.state.firing`, `${t("alerts.firing")} (${counts.firing})`),
    h(`span.state.pending`, `${t("alerts.pending")} (${counts.pending})`),
    h(`span.state.inactive`, `${t("alerts.inactive")} (${counts.inactive})`),
    h("label", [h("input", { type: "checkbox", checked: true, onchange: (e) => { showInactive = e.target.checked; draw(); } }), " ", t("alerts.showInactive")]),
  ]), list);
  const order = { firing: 0, pending: 1, inactive: 2 };
  function draw() {
    clear(list);
    for (const r of rules.sort((a, b) => order[a.state] - order[b.state])) {
      if (!showInactive && r.state === "inactive") continue;
      list.append(h(`details.card.alert-rule.${r.state}`, { open: r.state !== "inactive" }, [
        h("summary", [h(`span.state.${r.state}`, t(`alerts.${r.state}`)), " ", h("b", r.name), ` (${(r.alerts || []).length})`, h("span.muted", `  ${t("rules.group")}: ${r.group}`)]),
        h("pre.rule", ruleText(r)),
        (r.alerts || []).length ? h("table.data", [
          h("thead", h("tr", [t("alerts.labels"), t("rules.state"), t("alerts.activeSince"), t("alerts.value"), t("alerts.annotations")].map((c) => h("th", c)))),
          h("tbody", r.alerts.map((a) => h("tr", [
            h("td", labelBadges(a.labels)),
            h("td", h(`span.state.${a.state}`, t(`alerts.${a.state}`))),
            h("td", a.activeAt ? new Date(a.activeAt).toISOString() : ""),
            h("td", formatValue(Number(a.value))),
            h("td", Object.entries(a.annotations || {}).map(([k, v]) => h("div", [h("b", `${k}: `), v]))),
          ]))),
        ]) : null,
      ]));
    }
  }
  draw();
}

function kvTable(obj) {
  return h("table.data.kv", h("tbody", Object.entries(obj).map(([k, v]) =>
    h("tr", [h("th", k), h("td", typeof v === "object" ? JSON.stringify(v) : String(v))]))));
}

function countTable(rows, nameKey, valueKey) {
  return h("table.data", [
    h("thead", h("tr", [h("th", nameKey), h("th", valueKey)])),
    h("tbody", (rows || []).map((r) => h("tr", [h("td", r.name), h("td", String(r.value))]))),
  ]);
}

export async function renderStatusPage(root) {
  root.append(h("h1", t("status.title")));
  const sections = [
    ["status.runtime", "status/runtimeinfo", (d) => kvTable(d)],
    ["status.build", "status/buildinfo", (d) => kvTable(d)],
    ["status.tsdb", "status/tsdb", (d) => h("div", [
      h("h3", t("status.headStats")),
      kvTable({
        [t("status.numSeries")]: d.headStats.numSeries,
        [t("status.numChunks")]: d.headStats.chunkCount,
        [t("status.numLabelPairs")]: d.headStats.numLabelPairs,
        [t("status.minTime")]: d.headStats.minTime > 0 ? new Date(d.headStats.minTime).toISOString() : "-",
        [t("status.maxTime")]: d.headStats.maxTime > 0 ? new Date(d.headStats.maxTime).toISOString() : "-",
      }),
      h("h3", t("status.topMetrics")), countTable(d.seriesCountByMetricName, t("status.name"), t("status.count")),
      h("h3", t("status.topLabels")), countTable(d.labelValueCountByLabelName, t("status.name"), t("status.count")),
      h("h3", t("status.topMemory")), countTable(d.memoryInBytesByLabelName, t("status.name"), t("status.bytes")),
      h("h3", t("status.topPairs")), countTable(d.seriesCountByLabelValuePair, t("status.name"), t("status.count")),
    ])],
    ["status.flags", "status/flags", (d) => kvTable(d)],
    ["status.config", "status/config", (d) => h("div", [
      h("button.small", { onclick: () => navigator.clipboard && navigator.clipboard.writeText(d.yaml) }, t("status.copy")),
      h("pre.config", d.yaml)])],
  ];
  for (const [title, path, render] of sections) {
    const card = h("section.card", { id: title.replace(".", "-") }, [h("h2", t(title)), h("div.muted", t("common.loading"))]);
    root.append(card);
    api(path).then((res) => { card.lastChild.remove(); card.append(render(res.data)); })
      .catch((err) => { card.lastChild.remove(); card.append(errorBox(err)); });
  }
}
