"""Where names outside the cluster zone go: the kube-dns ConfigMap and the host's resolv.conf.

Rules kept here (kube-dns ``pkg/dns/config``, dataplane.md §2.9):
- ``kube-system/kube-dns`` ``data.stubDomains``: JSON object domain -> list of servers; ``data.upstreamNameservers``:
  JSON list of at most 3 servers. A server is ``IP`` or ``IP:port`` (``[v6]:port``); DNS names are dropped
  (CoreDNS drops them too). A stub domain equal to (or inside) the cluster zone is ignored.
- A bad key is reported (one line) and ignored; the other key still applies.
- Routing: the longest matching stub domain, else the upstreams, else the resolv.conf servers.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name

Server = tuple[str, int]
MAX_UPSTREAMS = 3


@dataclass(frozen=True)
class ForwardConfig:
    stub_domains: tuple[tuple[dns.name.Name, tuple[Server, ...]], ...] = ()
    upstreams: tuple[Server, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def route(self, qname: dns.name.Name, fallback: tuple[Server, ...]) -> tuple[Server, ...]:
        best: tuple[int, tuple[Server, ...]] | None = None
        for domain, servers in self.stub_domains:
            if qname.is_subdomain(domain) and (best is None or len(domain) > best[0]):
                best = (len(domain), servers)
        if best is not None:
            return best[1]
        return self.upstreams or fallback


def parse_server(text: str) -> Server | None:
    """``IP``, ``IP:port`` or ``[IPv6]:port`` -> (ip, port); None for names or bad ports."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    return (str(ip), port)


def from_configmap(cm: dict[str, Any] | None, zone: str) -> ForwardConfig:
    if not cm:
        return ForwardConfig()
    data = cm.get("data") or {}
    warnings: list[str] = []
    stubs: list[tuple[dns.name.Name, tuple[Server, ...]]] = []
    zone_name = dns.name.from_text(zone)
    raw = data.get("stubDomains")
    if raw:
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            warnings.append(f"kube-dns ConfigMap: ignoring stubDomains: invalid JSON object ({e})")
            parsed = {}
        for domain, servers in parsed.items():
            try:
                dname = dns.name.from_text(str(domain))
            except dns.exception.DNSException:
                warnings.append(f"kube-dns ConfigMap: ignoring stub domain {domain!r}: not a domain name")
                continue
            if dname.is_subdomain(zone_name):
                warnings.append(f"kube-dns ConfigMap: ignoring stub domain {domain!r}: inside the cluster domain")
                continue
            good = _servers(servers if isinstance(servers, list) else [], f"stub domain {domain!r}", warnings)
            if good:
                stubs.append((dname, good))
    upstreams: tuple[Server, ...] = ()
    raw = data.get("upstreamNameservers")
    if raw:
        try:
            parsed_up = json.loads(raw)
            if not isinstance(parsed_up, list):
                raise ValueError("not a JSON list")
        except ValueError as e:
            warnings.append(f"kube-dns ConfigMap: ignoring upstreamNameservers: invalid JSON list ({e})")
            parsed_up = []
        if len(parsed_up) > MAX_UPSTREAMS:
            warnings.append(f"kube-dns ConfigMap: upstreamNameservers: using the first {MAX_UPSTREAMS} of {len(parsed_up)}")
            parsed_up = parsed_up[:MAX_UPSTREAMS]
        upstreams = _servers(parsed_up, "upstreamNameservers", warnings)
    return ForwardConfig(tuple(stubs), upstreams, tuple(warnings))


def _servers(items: list[Any], what: str, warnings: list[str]) -> tuple[Server, ...]:
    out: list[Server] = []
    for item in items:
        s = parse_server(str(item))
        if s is None:
            warnings.append(f"kube-dns ConfigMap: {what}: ignoring {item!r} (want IP or IP:port)")
        else:
            out.append(s)
    return tuple(out)


def resolv_conf_servers(path: str) -> tuple[Server, ...]:
    """The ``nameserver`` lines of a resolv.conf (missing file: none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ()
    out: list[Server] = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            host = parts[1].split("%", 1)[0]
            try:
                out.append((str(ipaddress.ip_address(host)), 53))
            except ValueError:
                continue
    return tuple(out)


def pod_resolv_conf(nameserver: str, namespace: str, zone: str) -> str:
    """What a ``dnsPolicy: ClusterFirst`` pod in ``namespace`` gets as /etc/resolv.conf."""
    zone = zone.rstrip(".")
    return f"nameserver {nameserver}\nsearch {namespace}.svc.{zone} svc.{zone} {zone}\noptions ndots:5\n"
