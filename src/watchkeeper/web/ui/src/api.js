// Calls the Prometheus-compatible HTTP API of the server the UI is served by.
const prefix = () => (window.WK && window.WK.prefix) || "";

export class ApiError extends Error {
  constructor(message, type, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

export async function api(path, params = null, { method = "GET", body = null } = {}) {
  let url = `${prefix()}/api/v1/${path}`;
  const init = { method, headers: {} };
  if (params && method === "GET") {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      for (const item of [].concat(v)) if (item !== undefined && item !== null) search.append(k, item);
    }
    url += `?${search}`;
  } else if (params) {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      for (const item of [].concat(v)) if (item !== undefined && item !== null) form.append(k, item);
    }
    init.body = form;
  }
  if (body !== null) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(String(err), "network", 0);
  }
  let payload;
  try {
    payload = await response.json();
  } catch (err) {
    throw new ApiError(`${response.status} ${response.statusText}`, "internal", response.status);
  }
  if (payload.status !== "success") {
    throw new ApiError(payload.error || "unknown error", payload.errorType, response.status);
  }
  return payload;
}

export async function query(expr, time) {
  return api("query", { query: expr, time, stats: "all" }, { method: "POST" });
}

export async function queryRange(expr, start, end, step) {
  return api("query_range", { query: expr, start, end, step, stats: "all" }, { method: "POST" });
}
