"""dns_sd_configs: targets from SRV, A, AAAA, MX and NS records, re-resolved periodically.

Labels are Prometheus's: `__meta_dns_name`, `__meta_dns_srv_record_target`,
`__meta_dns_srv_record_port`, `__meta_dns_mx_record_target`, `__meta_dns_ns_record_target`.
A failed lookup counts `prometheus_sd_dns_lookup_failures_total` and keeps the name's last
groups; a name that does not exist (NXDOMAIN) has no targets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from watchkeeper.discovery.provider import DNSSDConfigLike, SDMetrics, SendGroups
from watchkeeper.discovery.targetgroup import ADDRESS_LABEL, TargetGroup

log = logging.getLogger(__name__)

NAME_LABEL: Final = "__meta_dns_name"
SRV_TARGET_LABEL: Final = "__meta_dns_srv_record_target"
SRV_PORT_LABEL: Final = "__meta_dns_srv_record_port"
MX_TARGET_LABEL: Final = "__meta_dns_mx_record_target"
NS_TARGET_LABEL: Final = "__meta_dns_ns_record_target"


def join_host_port(host: str, port: int) -> str:
    """Joins a host and port as Go's net.JoinHostPort does (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DNSProvider:
    """Resolves the names of one dns_sd_config.

    `nameservers` and `nameserver_port` override /etc/resolv.conf (tests point them at a
    local server); configs never set them.
    """

    def __init__(
        self,
        config: DNSSDConfigLike,
        metrics: SDMetrics,
        *,
        nameservers: list[str] | None = None,
        nameserver_port: int | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            self._resolver.nameservers = list(nameservers)
        if nameserver_port is not None:
            self._resolver.port = nameserver_port
        self._resolver.lifetime = 10.0
        self._groups: dict[str, TargetGroup] = {}

    async def lookup(self, name: str) -> TargetGroup:
        """Resolves one name into its group.

        Raises:
            dns.exception.DNSException: when the lookup fails (other than NXDOMAIN).
        """
        cfg = self._config
        self._metrics.dns_lookups.inc()
        group = TargetGroup(source=name)
        try:
            answer = await self._resolver.resolve(
                name, dns.rdatatype.from_text(cfg.type), search=True
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return group
        for rr in answer:
            labels = {
                NAME_LABEL: name,
                SRV_TARGET_LABEL: "",
                SRV_PORT_LABEL: "",
                MX_TARGET_LABEL: "",
                NS_TARGET_LABEL: "",
            }
            if cfg.type == "SRV":
                host = rr.target.to_text()
                address = join_host_port(host.rstrip("."), int(rr.port))
                labels[SRV_TARGET_LABEL] = host
                labels[SRV_PORT_LABEL] = str(int(rr.port))
            elif cfg.type == "MX":
                host = rr.exchange.to_text()
                address = join_host_port(host.rstrip("."), cfg.port)
                labels[MX_TARGET_LABEL] = host
            elif cfg.type == "NS":
                host = rr.target.to_text()
                address = join_host_port(host.rstrip("."), cfg.port)
                labels[NS_TARGET_LABEL] = host
            else:
                address = join_host_port(rr.address, cfg.port)
            labels[ADDRESS_LABEL] = address
            group.targets.append({k: v for k, v in labels.items() if v})
        return group

    async def refresh(self) -> list[TargetGroup]:
        """Resolves every name; a failing name keeps its previous group."""
        results = await asyncio.gather(
            *(self.lookup(n) for n in self._config.names), return_exceptions=True
        )
        for name, result in zip(self._config.names, results, strict=True):
            if isinstance(result, TargetGroup):
                self._groups[name] = result
            elif isinstance(result, Exception):
                self._metrics.dns_lookup_failures.inc()
                log.error("Error refreshing DNS targets for %s: %s", name, result)
            else:
                raise result
        return [self._groups[n] for n in self._config.names if n in self._groups]

    async def run(self, send: SendGroups) -> None:
        """Refreshes every refresh_interval until cancelled."""
        while True:
            send(await self.refresh())
            await asyncio.sleep(self._config.refresh_interval / 1000)
