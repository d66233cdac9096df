from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.config.sd import DNSSDConfig
from watchkeeper.discovery.dns import DNSProvider
from watchkeeper.discovery.provider import CounterLike, SDMetrics
from watchkeeper.discovery.targetgroup import TargetGroup
from watchkeeper.instrument.metrics import Counter, Registry
from watchkeeper.scrape.metrics import sd_metrics


def value(counter: CounterLike) -> float:
    assert isinstance(counter, Counter)
    return counter.value


NAMED = Path("/usr/sbin/named")

ZONE = """$TTL 60
@       IN SOA  ns.wk.test. admin.wk.test. 1 60 60 600 60
@       IN NS   ns.wk.test.
ns      IN A    127.0.0.1
web     IN A    10.0.0.1
web     IN A    10.0.0.2
web6    IN AAAA 2001:db8::1
alias   IN CNAME web
_prom._tcp IN SRV 10 5 9100 node1.wk.test.
_prom._tcp IN SRV 10 5 9200 node2.wk.test.
@       IN MX   10 mail.wk.test.
"""


def free_udp_tcp_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not NAMED.exists():
        pytest.skip("bind9's named is not installed at /usr/sbin/named")
    d = tmp_path_factory.mktemp("named")
    port = free_udp_tcp_port()
    (d / "wk.test.zone").write_text(ZONE)
    (d / "named.conf").write_text(
        f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
zone "wk.test" {{ type primary; file "{d}/wk.test.zone"; }};
"""
    )
    proc = subprocess.Popen(
        [str(NAMED), "-g", "-c", str(d / "named.conf"), "-n", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.skip(f"named did not start: {out[-500:]}")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def provider(server_port: int, **cfg: object) -> tuple[DNSProvider, SDMetrics]:
    metrics = sd_metrics(Registry())
    config = DNSSDConfig.model_validate(cfg)
    return DNSProvider(
        config, metrics, nameservers=["127.0.0.1"], nameserver_port=server_port
    ), metrics


def targets(groups: list[TargetGroup]) -> list[dict[str, str]]:
    return sorted((t for g in groups for t in g.targets), key=lambda t: t["__address__"])


pytestmark = pytest.mark.integration


async def test_srv_records_give_host_port_targets_with_meta_labels(dns_server: int) -> None:
    p, _ = provider(dns_server, names=["_prom._tcp.wk.test"])
    groups = await p.refresh()
    assert [g.source for g in groups] == ["_prom._tcp.wk.test"]
    assert targets(groups) == [
        {
            "__address__": "node1.wk.test:9100",
            "__meta_dns_name": "_prom._tcp.wk.test",
            "__meta_dns_srv_record_target": "node1.wk.test.",
            "__meta_dns_srv_record_port": "9100",
        },
        {
            "__address__": "node2.wk.test:9200",
            "__meta_dns_name": "_prom._tcp.wk.test",
            "__meta_dns_srv_record_target": "node2.wk.test.",
            "__meta_dns_srv_record_port": "9200",
        },
    ]


async def test_a_records_use_the_configured_port(dns_server: int) -> None:
    p, _ = provider(dns_server, names=["web.wk.test", "alias.wk.test"], type="A", port=9100)
    groups = await p.refresh()
    assert [g.source for g in groups] == ["web.wk.test", "alias.wk.test"]
    addresses = [t["__address__"] for t in targets(groups)]
    assert addresses == ["10.0.0.1:9100", "10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.2:9100"]


async def test_aaaa_records_are_bracketed(dns_server: int) -> None:
    p, _ = provider(dns_server, names=["web6.wk.test"], type="AAAA", port=80)
    assert targets(await p.refresh()) == [
        {"__address__": "[2001:db8::1]:80", "__meta_dns_name": "web6.wk.test"}
    ]


async def test_mx_records_name_the_exchange(dns_server: int) -> None:
    p, _ = provider(dns_server, names=["wk.test"], type="MX", port=25)
    assert targets(await p.refresh()) == [
        {
            "__address__": "mail.wk.test:25",
            "__meta_dns_name": "wk.test",
            "__meta_dns_mx_record_target": "mail.wk.test.",
        }
    ]


async def test_a_missing_name_has_no_targets(dns_server: int) -> None:
    p, metrics = provider(dns_server, names=["nope.wk.test"], type="A", port=1)
    groups = await p.refresh()
    assert groups == [TargetGroup(source="nope.wk.test")]
    assert value(metrics.dns_lookup_failures) == 0
    assert value(metrics.dns_lookups) == 1


async def test_a_failing_server_counts_a_failure_and_keeps_old_groups(dns_server: int) -> None:
    p, metrics = provider(dns_server, names=["web.wk.test"], type="A", port=1)
    first = await p.refresh()
    p._resolver.port = free_udp_tcp_port()
    p._resolver.lifetime = 0.5
    again = await p.refresh()
    assert again == first
    assert value(metrics.dns_lookup_failures) == 1


async def test_the_provider_sends_groups_from_run(dns_server: int) -> None:
    p, _ = provider(dns_server, names=["web.wk.test"], type="A", port=1)
    got: list[list[TargetGroup]] = []
    task = asyncio.create_task(p.run(got.append))
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert len(targets(got[0])) == 2
