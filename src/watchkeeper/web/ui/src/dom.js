// A tiny DOM builder: h("div.card", {onclick}, [children]) so pages stay declarative.
export function h(tag, attrs = {}, children = []) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (Array.isArray(attrs) || typeof attrs === "string" || attrs instanceof Node) {
    children = attrs;
    attrs = {};
  }
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function formatLabels(metric) {
  const name = metric.__name__ || "";
  const pairs = Object.entries(metric)
    .filter(([k]) => k !== "__name__")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`);
  return pairs.length || !name ? `${name}{${pairs.join(", ")}}` : name;
}

export function labelBadges(labels) {
  return h("span.badges", Object.entries(labels || {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => h("span.badge", `${k}="${v}"`)));
}

export function humanDuration(seconds) {
  if (!isFinite(seconds)) return "-";
  if (seconds < 1) return `${(seconds * 1000).toFixed(1)}ms`;
  if (seconds < 60) return `${seconds.toFixed(3)}s`;
  const parts = [];
  let rest = Math.floor(seconds);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (rest >= size) { parts.push(`${Math.floor(rest / size)}${unit}`); rest %= size; }
  }
  return parts.join("");
}

export function since(isoTime) {
  if (!isoTime || isoTime.startsWith("0001-")) return null;
  return Math.max(0, (Date.now() - Date.parse(isoTime)) / 1000);
}

// Parses "1h", "30m", "2d", "1w" into seconds (the UI's range inputs).
export function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$/.exec(String(text).trim());
  if (!m) return null;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 }[m[2]];
  return Number(m[1]) * unit;
}

export function formatDurationShort(seconds) {
  for (const [unit, size] of [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
