// The UI's entry point: navigation, language switch and a small path router.
import { h, clear } from "./dom.js";
import { t, lang, setLang, LANGUAGES } from "./i18n.js";
import { renderQueryPage } from "./query.js";
import { renderTargetsPage, renderServiceDiscoveryPage, renderRulesPage, renderAlertsPage, renderStatusPage } from "./pages.js";
import { renderDashboardList, renderDashboard } from "./dashboards.js";

const prefix = (window.WK && window.WK.prefix) || "";

const ROUTES = [
  ["/query", "nav.query", (root) => renderQueryPage(root)],
  ["/dashboards", "nav.dashboards", (root) => renderDashboardList(root, navigate)],
  ["/alerts", "nav.alerts", (root) => renderAlertsPage(root)],
  ["/targets", "nav.targets", (root) => renderTargetsPage(root)],
  ["/rules", "nav.rules", (root) => renderRulesPage(root)],
  ["/service-discovery", "nav.sd", (root) => renderServiceDiscoveryPage(root)],
  ["/status", "nav.status", (root) => renderStatusPage(root)],
];

function currentPath() {
  let path = location.pathname.slice(prefix.length) || "/";
  if (path === "/" || path === "/graph") path = "/query";
  if (["/config", "/flags", "/tsdb-status", "/runtimeinfo", "/buildinfo"].includes(path)) path = "/status";
  return path;
}

export function navigate(path) {
  history.pushState(null, "", prefix + path);
  render();
}

function render() {
  const app = document.getElementById("app");
  clear(app);
  document.documentElement.lang = lang();
  const path = currentPath();
  const nav = h("nav.top", [
    h("a.brand", { href: `${prefix}/query`, onclick: (e) => { e.preventDefault(); navigate("/query"); } }, (window.WK && window.WK.title) || "Watchkeeper"),
    ...ROUTES.map(([route, key]) => h(`a${path.startsWith(route) ? ".active" : ""}`, {
      href: prefix + route, onclick: (e) => { e.preventDefault(); navigate(route); },
    }, t(key))),
    h("span.spacer"),
    h("label.lang", [t("nav.language"), " ", h("select", { "aria-label": "language", onchange: (e) => { setLang(e.target.value); render(); } },
      LANGUAGES.map(([code, name]) => h("option", { value: code, selected: code === lang() }, name)))]),
  ]);
  const main = h("main");
  app.append(nav, main);
  const dash = /^\/dashboards\/(.+)$/.exec(path);
  if (dash) { renderDashboard(main, decodeURIComponent(dash[1]), navigate); return; }
  const route = ROUTES.find(([r]) => path.startsWith(r)) || ROUTES[0];
  route[2](main);
}

window.addEventListener("popstate", render);
render();
