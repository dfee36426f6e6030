"""Services + Endpoints snapshot -> the listeners the proxy wants, and the diff against what runs.

Rules kept here (spec dataplane.md §1.2, §1.10):
- The unit is the service port ``(namespace, service, port name)``; an unnamed single port is ``""``.
- Not proxied: headless (``clusterIP`` empty or ``None``), ``type: ExternalName``, and Services labelled
  ``service.kubernetes.io/service-proxy-name`` (any value: another proxy owns them, e.g. the cluster DNS).
- Backends are the *ready* addresses (``subsets[].addresses``) joined with ``subsets[].ports[]`` by port
  name; the endpoints controller already resolved named target ports. The Endpoints given here are the
  merged view of each Service's EndpointSlices (``controllers.endpointslices.merged_endpoints``: one subset
  per slice, ``ready`` unset counts as ready), so hand-written slices of a selector-less Service and mirrored
  hand-written Endpoints are no different.
- Listening addresses of a service port: ``clusterIP:port``; ``nodeAddr:nodePort`` for each node address
  (NodePort and LoadBalancer types); ``ip:port`` for each ``status.loadBalancer.ingress[].ip``; and
  ``externalIP:port`` for each ``spec.externalIPs`` entry that is a local address.
- TCP and UDP only; SCTP is reported, as kube-proxy's userspace mode did.
- Two service ports wanting the same ``(protocol, ip, port)``: the first in (namespace, name) order wins,
  the other is reported.
Everything here is pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
DEFAULT_AFFINITY_SECONDS = 10800

SPN = tuple[str, str, str]  # (namespace, service, port name)
ListenerKey = tuple[str, str, int]  # (protocol, ip, port)
Endpoint = tuple[str, int]


@dataclass(frozen=True)
class ServicePort:
    name: SPN
    protocol: str
    cluster_ip: str
    port: int
    node_port: int
    affinity: bool
    affinity_seconds: int
    endpoints: tuple[Endpoint, ...]
    addresses: tuple[tuple[str, int, str], ...]  # (ip, port, kind) kind: cluster|nodePort|loadBalancer|externalIP


@dataclass
class Plan:
    ports: dict[SPN, ServicePort] = field(default_factory=dict)
    listeners: dict[ListenerKey, SPN] = field(default_factory=dict)
    problems: list[tuple[SPN, str]] = field(default_factory=list)


def spn_text(spn: SPN) -> str:
    ns, name, port = spn
    return f"{ns}/{name}:{port}" if port else f"{ns}/{name}"


def should_skip(svc: dict[str, Any]) -> bool:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return True
    ip = spec.get("clusterIP") or ""
    if ip in ("", "None"):
        return True
    labels = (svc.get("metadata") or {}).get("labels") or {}
    return PROXY_NAME_LABEL in labels


def endpoints_by_port(ep: dict[str, Any] | None) -> dict[str, tuple[Endpoint, ...]]:
    """Port name -> sorted ready (ip, port) pairs from one Endpoints object."""
    out: dict[str, set[Endpoint]] = {}
    if not ep:
        return {}
    for subset in ep.get("subsets") or []:
        addrs = [a.get("ip") for a in subset.get("addresses") or [] if a.get("ip")]
        for p in subset.get("ports") or []:
            port = p.get("port")
            if not isinstance(port, int):
                continue
            bucket = out.setdefault(p.get("name") or "", set())
            for ip in addrs:
                bucket.add((ip, port))
    return {k: tuple(sorted(v)) for k, v in out.items()}


def build(
    services: Iterable[dict[str, Any]],
    endpoints: Iterable[dict[str, Any]],
    node_addresses: Iterable[str] = (),
    is_local: Callable[[str], bool] = lambda ip: False,
) -> Plan:
    eps_index = {((e.get("metadata") or {}).get("namespace", ""), e["metadata"]["name"]): e for e in endpoints}
    nodes = tuple(node_addresses)
    plan = Plan()
    for svc in sorted(services, key=lambda s: (s["metadata"].get("namespace", ""), s["metadata"]["name"])):
        if should_skip(svc):
            continue
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ns, name = meta.get("namespace", ""), meta["name"]
        cluster_ip = spec["clusterIP"]
        by_port = endpoints_by_port(eps_index.get((ns, name)))
        affinity = spec.get("sessionAffinity") == "ClientIP"
        ttl = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")) or DEFAULT_AFFINITY_SECONDS
        lb_ips = [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [] if i.get("ip")]
        ext_ips = [ip for ip in spec.get("externalIPs") or [] if is_local(ip)]
        has_node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
        for p in spec.get("ports") or []:
            pname = p.get("name") or ""
            spn: SPN = (ns, name, pname)
            proto = (p.get("protocol") or "TCP").upper()
            if proto not in ("TCP", "UDP"):
                plan.problems.append((spn, f"{proto} is not supported by the proxy"))
                continue
            port = int(p["port"])
            node_port = int(p.get("nodePort") or 0) if has_node_ports else 0
            addrs: list[tuple[str, int, str]] = [(cluster_ip, port, "cluster")]
            if node_port:
                addrs += [(ip, node_port, "nodePort") for ip in nodes]
            addrs += [(ip, port, "loadBalancer") for ip in lb_ips]
            addrs += [(ip, port, "externalIP") for ip in ext_ips]
            kept: list[tuple[str, int, str]] = []
            for ip, lport, kind in addrs:
                key = (proto, ip, lport)
                owner = plan.listeners.get(key)
                if owner is not None:
                    if owner != spn:
                        plan.problems.append((spn, f"{proto} {ip}:{lport} ({kind}) is already served for {spn_text(owner)}"))
                    continue
                plan.listeners[key] = spn
                kept.append((ip, lport, kind))
            plan.ports[spn] = ServicePort(
                name=spn,
                protocol=proto,
                cluster_ip=cluster_ip,
                port=port,
                node_port=node_port,
                affinity=affinity,
                affinity_seconds=int(ttl),
                endpoints=by_port.get(pname, ()),
                addresses=tuple(kept),
            )
    return plan


def serving(plan: Plan) -> dict[ListenerKey, SPN]:
    """The listeners to keep open: those of service ports with at least one ready endpoint. A service port
    without one has no socket, so the kernel refuses its connections (TCP RST: ECONNREFUSED) and answers its
    datagrams with ICMP port unreachable, as kube-proxy's REJECT rule does."""
    return {k: spn for k, spn in plan.listeners.items() if plan.ports[spn].endpoints}


def diff(running: Iterable[ListenerKey], plan: Plan, want: Iterable[ListenerKey] | None = None) -> tuple[list[ListenerKey], list[ListenerKey]]:
    """(to open, to close) of ``want`` (default: every listener of the plan): listeners are keyed by address
    only, so a service port that moves onto an address another one held keeps the socket and is simply
    re-targeted by the caller."""
    have = set(running)
    want = set(plan.listeners.keys() if want is None else want)
    return sorted(k for k in want if k not in have), sorted(k for k in have if k not in want)


def node_addresses(cidrs: Iterable[str], local_addresses: Iterable[str]) -> list[str]:
    """Resolve ``--nodeport-addresses``: each CIDR selects the local addresses inside it; a /32 names
    one address (any 127/8 address is local on Linux); ``127.0.0.0/8`` alone means 127.0.0.1."""
    import ipaddress

    local = [ipaddress.ip_address(a) for a in local_addresses]
    out: list[str] = []
    for text in cidrs:
        net = ipaddress.ip_network(text, strict=False)
        if net.num_addresses == 1:
            cands = [net.network_address]
        else:
            cands = [a for a in local if a in net]
            if not cands and net.version == 4 and ipaddress.ip_address("127.0.0.1") in net:
                cands = [ipaddress.ip_address("127.0.0.1")]
        for a in cands:
            if str(a) not in out:
                out.append(str(a))
    return out
