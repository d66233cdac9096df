"""HTTP self-metrics under Prometheus's names (prometheus_http_*), labelled by route.

The `handler` label is the route's pattern as Prometheus writes it ("/api/v1/query",
"/api/v1/label/:name/values"), never the raw path, so label values stay few. Requests that
match no route are not counted. As Prometheus does, every GET route's request counter exists
at zero (code "200") from start-up on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from watchkeeper.instrument.metrics import Counter, Histogram, Registry

REQUEST_DURATION_BUCKETS = (0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0)
"""Prometheus's buckets for prometheus_http_request_duration_seconds."""

RESPONSE_SIZE_BUCKETS = tuple(100.0 * 10.0**i for i in range(8))
"""Prometheus's buckets for prometheus_http_response_size_bytes (100 B to 1 GB)."""

_CATCH_ALL = re.compile(r"\{(\w+):\.[*+]\}")
_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def handler_label(canonical: str) -> str:
    """Turns an aiohttp route pattern into Prometheus's form.

    Example:
        >>> handler_label("/api/v1/label/{name}/values"), handler_label("/static/{path:.*}")
        ('/api/v1/label/:name/values', '/static/*path')
    """
    return _PLACEHOLDER.sub(r":\1", _CATCH_ALL.sub(r"*\1", canonical))


def _response_size(response: web.StreamResponse) -> int:
    if response.prepared:
        return response.body_length
    if isinstance(response, web.Response) and isinstance(response.body, bytes | bytearray):
        return len(response.body)
    return response.content_length or 0


def instrument_app(app: web.Application, registry: Registry) -> None:
    """Counts and times every routed request of `app` on `registry` (call before start-up).

    Several apps on one registry share the metrics.
    """
    requests = registry.get("prometheus_http_requests_total")
    durations = registry.get("prometheus_http_request_duration_seconds")
    sizes = registry.get("prometheus_http_response_size_bytes")
    if not (
        isinstance(requests, Counter)
        and isinstance(durations, Histogram)
        and isinstance(sizes, Histogram)
    ):
        requests = registry.counter(
            "prometheus_http_requests_total", "Counter of HTTP requests.", ("code", "handler")
        )
        durations = registry.histogram(
            "prometheus_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            ("handler",),
            buckets=REQUEST_DURATION_BUCKETS,
        )
        sizes = registry.histogram(
            "prometheus_http_response_size_bytes",
            "Histogram of response size for HTTP requests.",
            ("handler",),
            buckets=RESPONSE_SIZE_BUCKETS,
        )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is None:
            return await handler(request)
        label = handler_label(resource.canonical)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            requests.labels(str(exc.status), label).inc()
            durations.labels(label).observe(time.perf_counter() - started)
            raise
        except Exception:
            requests.labels("500", label).inc()
            durations.labels(label).observe(time.perf_counter() - started)
            raise
        requests.labels(str(response.status), label).inc()
        durations.labels(label).observe(time.perf_counter() - started)
        sizes.labels(label).observe(_response_size(response))
        return response

    async def init_counters(app: web.Application) -> None:
        for resource in app.router.resources():
            if any(route.method in ("GET", "*") for route in resource):
                requests.labels("200", handler_label(resource.canonical))

    app.middlewares.insert(0, middleware)
    app.on_startup.append(init_counters)


def federation_errors(registry: Registry) -> Counter:
    """Registers the federation counters; returns the errors one (federation has no warnings).

    Watchkeeper's /federate reads local storage only, which reports no warnings, so the
    warnings counter is exported for dashboards and stays at zero.
    """
    existing = registry.get("prometheus_web_federation_errors_total")
    if isinstance(existing, Counter):
        return existing
    registry.counter(
        "prometheus_web_federation_warnings_total",
        "Total number of warnings that occurred while sending federation responses.",
    )
    return registry.counter(
        "prometheus_web_federation_errors_total",
        "Total number of errors that occurred while sending federation responses.",
    )


__all__ = ["federation_errors", "handler_label", "instrument_app"]
