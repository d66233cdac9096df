"""The web UI in a real browser (Debian's chromium driven by playwright) against a real server.

Each test also takes a screenshot of its page; with WATCHKEEPER_UPDATE_SCREENSHOTS=1 they
replace the ones in docs/screenshots/ that the docs show (otherwise a test run leaves the
working tree as it found it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from watchkeeper.testing.process import ServerProcess, free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOC_SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
DIST = Path(__file__).resolve().parents[3] / "src/watchkeeper/web/ui/dist/app.js"

RULES = """
groups:
  - name: browser-test
    rules:
      - alert: AlwaysFiring
        expr: vector(42) > 0
        labels: {severity: page}
        annotations: {summary: "The answer is {{ $value }}"}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    if not DIST.exists():
        pytest.skip("the web UI is not built: npm was not available (run make ui)")
    tmp = tmp_path_factory.mktemp("ui")
    port, down_port = free_port(), free_port()
    (tmp / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: watchkeeper
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: broken-service
    static_configs: [{{targets: ["127.0.0.1:{down_port}"]}}]
""")
    (tmp / "rules.yml").write_text(RULES)
    proc = ServerProcess(
        [
            "server",
            "--config.file=prometheus.yml",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp,
    ).start()
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}/-/ready")
        base = f"http://127.0.0.1:{port}"
        import json
        import urllib.request

        def has_data() -> bool:
            url = f"{base}/api/v1/query?query=count_over_time(up%5B1m%5D)"
            with urllib.request.urlopen(url, timeout=5) as resp:
                result = json.loads(resp.read())["data"]["result"]
            return any(float(r["value"][1]) >= 4 for r in result)

        assert wait_until(has_data, 30), proc.log()
        yield base
    finally:
        proc.stop()


@pytest.fixture
def page(server: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert not errors, errors


def _shot(page: Page, name: str) -> None:
    if os.environ.get("WATCHKEEPER_UPDATE_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_SCREENSHOTS / f"{name}.png"))
    else:
        assert page.screenshot(), f"no screenshot of {name}"


def test_typing_a_query_draws_a_graph_with_points(page: Page, server: str) -> None:
    pg = page
    pg.goto(f"{server}/query")
    box = pg.locator("textarea.expr")
    box.fill("rate(prometheus_http_requests_total[1m])")
    pg.get_by_role("button", name="Graph").click()
    pg.locator("input[aria-label=range]").fill("1m")
    pg.locator("textarea.expr").fill("up")
    pg.get_by_role("button", name="Execute").click()
    pg.locator(".graph canvas").wait_for(timeout=15000)
    # Hovering over the plot shows the values under the cursor: the graph has points.
    plot = pg.locator(".graph .u-over").first
    area = plot.bounding_box()
    assert area is not None
    # NB: on a busy machine the newest scrape may not have landed yet: try a few places.
    hover = pg.locator(".hover b").first
    for x in (0.97, 0.9, 0.75, 0.5, 0.25) * 3:
        pg.mouse.move(area["x"] + area["width"] * x, area["y"] + area["height"] / 2)
        try:
            hover.wait_for(timeout=1000)
            break
        except PlaywrightTimeoutError:
            continue
    hover.wait_for(timeout=2000)
    legend = pg.locator(".legend-item")
    legend.first.wait_for(timeout=15000)
    assert 'job="watchkeeper"' in " ".join(legend.all_inner_texts())
    assert "g0.expr=up" in pg.url
    assert "g0.range_input=1m" in pg.url
    _shot(pg, "query-graph")


def test_a_table_query_lists_series_and_autocompletes_metric_names(page: Page, server: str) -> None:
    pg = page
    pg.goto(f"{server}/query?g0.expr=up&g0.tab=table")
    pg.locator("table.data td.series").first.wait_for(timeout=15000)
    rows = pg.locator("table.data td.series").all_inner_texts()
    assert any('job="broken-service"' in r for r in rows)
    box = pg.locator("textarea.expr")
    box.fill("")
    box.type("prometheus_tsdb_head_ser")
    pg.locator("ul.suggest li").first.wait_for(timeout=10000)
    suggestions = pg.locator("ul.suggest li").all_inner_texts()
    assert "prometheus_tsdb_head_series" in suggestions
    _shot(pg, "query-table")


def test_a_down_target_shows_its_error(page: Page, server: str) -> None:
    pg = page
    pg.goto(f"{server}/targets")
    row = pg.locator("tr[data-health=down]").first
    row.wait_for(timeout=15000)
    text = row.inner_text()
    assert "DOWN" in text
    assert "connect" in text.lower() or "refused" in text.lower()
    _shot(pg, "targets")


def test_a_firing_alert_appears_with_its_annotations(page: Page, server: str) -> None:
    pg = page
    pg.goto(f"{server}/alerts")
    card = pg.locator("details.alert-rule.firing").first
    card.wait_for(timeout=20000)
    text = card.inner_text()
    assert "AlwaysFiring" in text
    assert "The answer is 42" in text
    _shot(pg, "alerts")


def test_a_dashboard_renders_its_panels(page: Page, server: str) -> None:
    pg = page
    pg.goto(f"{server}/dashboards/watchkeeper")
    pg.locator(".dash-panel .graph canvas").first.wait_for(timeout=20000)
    pg.locator(".panel-stat .stat").first.wait_for(timeout=20000)
    assert pg.locator(".dash-panel").count() >= 8
    _shot(pg, "dashboard")


def test_status_rules_and_chinese_translation(page: Page, server: str) -> None:
    pg = page
    pg.goto(f"{server}/rules")
    pg.locator("section.card h2").first.wait_for(timeout=15000)
    _shot(pg, "rules")
    pg.goto(f"{server}/status")
    pg.locator("#status-tsdb table").first.wait_for(timeout=15000)
    _shot(pg, "status")
    pg.select_option("select[aria-label=language]", "zh-CN")
    pg.locator("nav.top a", has_text="查询").wait_for(timeout=5000)
    assert pg.evaluate("document.documentElement.lang") == "zh-CN"
    _shot(pg, "status-zh")
