"""Services + Endpoints snapshot -> the listeners the proxy wants, and the diff against what runs.

Rules kept here (spec dataplane.md §1.2, §1.10):
- The unit is the service port ``(namespace, service, port name)``; an unnamed single port is ``""``.
- Not proxied: headless (``clusterIP`` empty or ``None``), ``type: ExternalName``, and Services labelled
  ``service.kubernetes.io/service-proxy-name`` (any value: another proxy owns them, e.g. the cluster DNS) or
  ``service.kubernetes.io/headless`` (any value; kube-proxy's informers select both labels away).
- Traffic policies (virtual-ips.md "Traffic policies"), as kube-proxy's ``CategorizeEndpoints``: an endpoint is
  local when its ``nodeName`` is this proxy's node (``node_name``), or, without a nodeName, when its address is
  local here (kubesvc's relaxation for hand-made 127/8 backends; kube-proxy counts those as remote). ``internalTrafficPolicy: Local`` serves the
  cluster IP from local endpoints only; ``externalTrafficPolicy: Local`` does the same for NodePorts, LB and
  external IPs and the health-check node port reports the local count. No endpoint for an address's policy:
  no socket (refused). Topology hints (``service.kubernetes.io/topology-mode``, or the older
  ``topology-aware-hints``, not empty/disabled; or ``trafficDistribution: PreferClose``): cluster-wide traffic
  goes to the endpoints hinted for this node's zone when every ready endpoint has a hint and one names the zone.
- ``loadBalancerSourceRanges`` apply to the LB addresses only (as kube-proxy's firewall chain).
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
from dataclasses import dataclass, field, replace
from typing import Any

PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TOPOLOGY_ANNOTATIONS = ("service.kubernetes.io/topology-mode", "service.kubernetes.io/topology-aware-hints")
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
    external_endpoints: tuple[Endpoint, ...] | None = None  # NodePort/LB/external IPs; None: the same as endpoints
    local_endpoints: int = 0  # ready endpoints on this node (the health-check node port's localEndpoints)
    health_check_node_port: int = 0  # LoadBalancer + externalTrafficPolicy Local
    source_ranges: tuple[str, ...] = ()  # loadBalancerSourceRanges (LB addresses only)

    def endpoints_for(self, kind: str) -> tuple[Endpoint, ...]:
        if kind != "cluster" and self.external_endpoints is not None:
            return self.external_endpoints
        return self.endpoints


@dataclass
class Plan:
    ports: dict[SPN, ServicePort] = field(default_factory=dict)
    listeners: dict[ListenerKey, SPN] = field(default_factory=dict)
    problems: list[tuple[SPN, str]] = field(default_factory=list)
    # the service ports that may differ from the previous plan's (``Planner.update``); None: any of them
    changed: set[SPN] | None = field(default=None, compare=False, repr=False)


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
    return PROXY_NAME_LABEL in labels or HEADLESS_LABEL in labels


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


def endpoint_nodes(ep: dict[str, Any] | None) -> dict[str, str]:
    """Ready address ip -> its nodeName ("" when none)."""
    out: dict[str, str] = {}
    for subset in (ep or {}).get("subsets") or []:
        for a in subset.get("addresses") or []:
            if a.get("ip"):
                out[a["ip"]] = out.get(a["ip"]) or str(a.get("nodeName") or "")
    return out


def zone_hints(slices: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, frozenset[str]]]:
    """(namespace, Service) -> ready endpoint ip -> the zones of its ``hints.forZones`` (empty: no hint)."""
    out: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get("kubernetes.io/service-name")
        if not svc:
            continue
        by_ip = out.setdefault((str(meta.get("namespace", "default")), str(svc)), {})
        for ep in sl.get("endpoints") or []:
            if not isinstance(ep, dict) or not ep.get("addresses") or (ep.get("conditions") or {}).get("ready") is False:
                continue
            zones = frozenset(str(z.get("name")) for z in ((ep.get("hints") or {}).get("forZones") or [])
                              if isinstance(z, dict) and z.get("name"))
            by_ip[str(ep["addresses"][0])] = zones
    return out


def _uses_topology(svc: dict[str, Any], hints: dict[str, frozenset[str]] | None, zone: str, ips: Iterable[str]) -> bool:
    """kube-proxy's ``canUseTopology``."""
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    mode = next((annotations[a] for a in TOPOLOGY_ANNOTATIONS if annotations.get(a)), "")
    enabled = mode not in ("", "disabled", "Disabled") or (svc.get("spec") or {}).get("trafficDistribution") == "PreferClose"
    if not enabled or not zone or hints is None:
        return False
    found = False
    for ip in ips:
        zones = hints.get(ip)
        if not zones:
            return False
        found = found or zone in zones
    return found


def _is_node_local(ep_node: str, ip: str, node_name: str, is_local: Callable[[str], bool]) -> bool:
    """An endpoint is on this node when its nodeName is ours; one without a nodeName (a hand-made Pod or
    Endpoints) when its address is local here (a 127/8 backend of a single-node kubesvc)."""
    return ep_node == node_name if ep_node else is_local(ip)


@dataclass(frozen=True)
class Wanted:
    """One service port as its Service alone decides it: the ``ServicePort`` with every address it wants (before
    listener conflicts with other service ports are settled), or ``problem``: why it is not proxied (``port`` None)."""

    spn: SPN
    port: ServicePort | None
    problem: str = ""


def service_ports(
    svc: dict[str, Any],
    ep: dict[str, Any] | None,
    node_addresses: tuple[str, ...] = (),
    is_local: Callable[[str], bool] = lambda ip: False,
    node_name: str = "",
    zone: str = "",
    hints: dict[str, frozenset[str]] | None = None,
) -> list[Wanted]:
    """One Service's service ports in spec order (empty when it is not proxied), from it, its merged Endpoints
    ``ep`` and its ``zone_hints`` entry ``hints``: a function of these alone, so a sync recomputes only the Services
    that changed (``Planner``)."""
    if should_skip(svc):
        return []
    meta, spec = svc["metadata"], svc.get("spec") or {}
    ns, name = meta.get("namespace", ""), meta["name"]
    cluster_ip = spec["clusterIP"]
    if ep is not None and HEADLESS_LABEL in ((ep.get("metadata") or {}).get("labels") or {}):
        ep = None
    by_port = endpoints_by_port(ep)
    node_of = endpoint_nodes(ep)
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    external_local = spec.get("externalTrafficPolicy") == "Local"
    topology = _uses_topology(svc, hints, zone, node_of)
    hc_port = int(spec.get("healthCheckNodePort") or 0) if spec.get("type") == "LoadBalancer" and external_local else 0
    ranges = tuple(str(r).strip() for r in spec.get("loadBalancerSourceRanges") or [] if str(r).strip())
    affinity = spec.get("sessionAffinity") == "ClientIP"
    ttl = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")) or DEFAULT_AFFINITY_SECONDS
    lb_ips = [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [] if i.get("ip")]
    ext_ips = [ip for ip in spec.get("externalIPs") or [] if is_local(ip)]
    has_node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    out: list[Wanted] = []
    for p in spec.get("ports") or []:
        pname = p.get("name") or ""
        spn: SPN = (ns, name, pname)
        proto = (p.get("protocol") or "TCP").upper()
        if proto not in ("TCP", "UDP"):
            out.append(Wanted(spn, None, f"{proto} is not supported by the proxy"))
            continue
        port = int(p["port"])
        node_port = int(p.get("nodePort") or 0) if has_node_ports else 0
        addrs: list[tuple[str, int, str]] = [(cluster_ip, port, "cluster")]
        if node_port:
            addrs += [(ip, node_port, "nodePort") for ip in node_addresses]
        addrs += [(ip, port, "loadBalancer") for ip in lb_ips]
        addrs += [(ip, port, "externalIP") for ip in ext_ips]
        ready = by_port.get(pname, ())
        local = tuple(e for e in ready if _is_node_local(node_of.get(e[0], ""), e[0], node_name, is_local))
        cluster = ready
        if topology:
            zoned = hints or {}
            cluster = tuple(e for e in ready if zone in zoned.get(e[0], frozenset()))
        internal = local if internal_local else cluster
        external = local if external_local else cluster
        out.append(Wanted(spn, ServicePort(
            name=spn,
            protocol=proto,
            cluster_ip=cluster_ip,
            port=port,
            node_port=node_port,
            affinity=affinity,
            affinity_seconds=int(ttl),
            endpoints=internal,
            addresses=tuple(addrs),
            external_endpoints=external if external != internal else None,
            local_endpoints=len(local),
            health_check_node_port=hc_port,
            source_ranges=ranges if lb_ips else (),
        )))
    return out


def slim_service(svc: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Service ``service_ports`` reads (and ``should_skip``, topology): what an incremental reader keeps
    between syncs instead of the whole object (managedFields, other annotations: ~70 MiB at 10,000 Services with
    their slices). Keep it in step with ``service_ports``."""
    meta = svc.get("metadata") or {}
    slim: dict[str, Any] = {"metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in TOPOLOGY_ANNOTATIONS}
    if annotations:
        slim["metadata"]["annotations"] = annotations
    if "spec" in svc:
        slim["spec"] = svc["spec"]
    lb = (svc.get("status") or {}).get("loadBalancer")
    if lb:
        slim["status"] = {"loadBalancer": lb}
    return slim


def wanted_keys(wanted: Iterable[Wanted]) -> set[ListenerKey]:
    """Every listener address a Service's service ports ask for."""
    return {(w.port.protocol, ip, port) for w in wanted if w.port is not None for ip, port, _ in w.port.addresses}


def settle(plan: Plan, wanted: Iterable[Wanted]) -> tuple[list[SPN], list[ListenerKey], list[tuple[SPN, str]]]:
    """Add one Service's service ports to ``plan``, after every Service before it in (namespace, name) order: an
    address ``plan.listeners`` already gives to another service port is reported and left out; within the Service,
    the first port wanting an address gets it. Returns what it added: (service ports, listeners, problems)."""
    spns: list[SPN] = []
    owned: dict[ListenerKey, SPN] = {}
    problems: list[tuple[SPN, str]] = []
    for w in wanted:
        spn, sp = w.spn, w.port
        if sp is None:
            problems.append((spn, w.problem))
            continue
        proto = sp.protocol
        kept: list[tuple[str, int, str]] = []
        for ip, lport, kind in sp.addresses:
            key = (proto, ip, lport)
            owner = owned.get(key) or plan.listeners.get(key)
            if owner is not None:
                if owner != spn:
                    problems.append((spn, f"{proto} {ip}:{lport} ({kind}) is already served for {spn_text(owner)}"))
                continue
            owned[key] = spn
            kept.append((ip, lport, kind))
        plan.ports[spn] = sp if len(kept) == len(sp.addresses) else replace(sp, addresses=tuple(kept))
        spns.append(spn)
    plan.listeners.update(owned)
    plan.problems += problems
    return spns, list(owned), problems


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta["name"]


def build(
    services: Iterable[dict[str, Any]],
    endpoints: Iterable[dict[str, Any]],
    node_addresses: Iterable[str] = (),
    is_local: Callable[[str], bool] = lambda ip: False,
    node_name: str = "",
    zone: str = "",
    hints: dict[tuple[str, str], dict[str, frozenset[str]]] | None = None,
) -> Plan:
    """The whole plan at once. ``node_name``/``zone``: this proxy's node and its ``topology.kubernetes.io/zone``
    (traffic policies and topology hints); ``hints``: ``zone_hints`` of the EndpointSlices."""
    eps_index = {_key(e): e for e in endpoints if HEADLESS_LABEL not in ((e.get("metadata") or {}).get("labels") or {})}
    nodes = tuple(node_addresses)
    plan = Plan()
    for svc in sorted(services, key=_key):
        key = _key(svc)
        settle(plan, service_ports(svc, eps_index.get(key), nodes, is_local, node_name, zone, (hints or {}).get(key)))
    return plan


@dataclass
class _Placed:
    """What one Service contributes to the plan: its wanted ports, and what ``settle`` gave them."""

    wanted: list[Wanted]
    keys: set[ListenerKey]
    spns: list[SPN] = field(default_factory=list)
    owned: list[ListenerKey] = field(default_factory=list)
    problems: list[tuple[SPN, str]] = field(default_factory=list)


class Planner:
    """The plan kept up to date one Service at a time, equal to ``build`` over the same objects.

    ``rebuild`` takes every Service; ``update`` only those that changed (a Service, its merged Endpoints or its
    hints), each given as ``(Service or None when gone, Endpoints, hints)``. The only coupling between Services is
    the listener addresses: the first in (namespace, name) order gets an address several want. So an update takes
    out the changed Services and every Service that wants an address they wanted or want (``claims``), and settles
    them again in (namespace, name) order, each after the ones before it: the addresses of the Services left alone
    are owned exactly as before. Each call returns a new ``Plan`` (the dicts copied: the caller keeps the last one)
    whose ``changed`` names the service ports that may differ from the previous plan's (None after a rebuild)."""

    def __init__(self, node_addresses: Iterable[str] = (), is_local: Callable[[str], bool] = lambda ip: False,
                 node_name: str = "", zone: str = "") -> None:
        self.nodes = tuple(node_addresses)
        self.is_local, self.node_name, self.zone = is_local, node_name, zone
        self.plan = Plan()
        self.placed: dict[tuple[str, str], _Placed] = {}
        self.claims: dict[ListenerKey, set[tuple[str, str]]] = {}
        self.with_problems: set[tuple[str, str]] = set()

    def _wanted(self, svc: dict[str, Any], ep: dict[str, Any] | None, hints: dict[str, frozenset[str]] | None) -> list[Wanted]:
        return service_ports(svc, ep, self.nodes, self.is_local, self.node_name, self.zone, hints)

    def rebuild(self, services: Iterable[tuple[dict[str, Any], dict[str, Any] | None, dict[str, frozenset[str]] | None]]) -> Plan:
        self.plan, self.placed, self.claims, self.with_problems = Plan(), {}, {}, set()
        for svc, ep, hints in sorted(services, key=lambda t: _key(t[0])):
            key = _key(svc)
            wanted = self._wanted(svc, ep, hints)
            placed = self.placed[key] = _Placed(wanted, wanted_keys(wanted))
            for k in placed.keys:
                self.claims.setdefault(k, set()).add(key)
            placed.spns, placed.owned, placed.problems = settle(self.plan, wanted)
            if placed.problems:
                self.with_problems.add(key)
        return self._result(None)

    def update(self, changed: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any] | None,
                                                        dict[str, frozenset[str]] | None]]) -> Plan:
        plan = self.plan
        fresh: dict[tuple[str, str], _Placed | None] = {}
        dirty: set[tuple[str, str]] = set()
        for key, (svc, ep, hints) in changed.items():
            old = self.placed.get(key)
            wanted = self._wanted(svc, ep, hints) if svc is not None else []
            new = _Placed(wanted, wanted_keys(wanted)) if svc is not None else None
            if old is not None and new is not None and old.wanted == new.wanted:
                continue  # the same service ports and addresses: nothing of the plan changes
            fresh[key] = new
            dirty.add(key)
            for k in (old.keys if old is not None else set()) | (new.keys if new is not None else set()):
                dirty |= self.claims.get(k, set())
        touched: set[SPN] = set()
        for key in dirty:  # take them all out first: an address they held is free again
            old = self.placed.get(key)
            if old is None:
                continue
            touched.update(old.spns)
            for spn in old.spns:
                plan.ports.pop(spn, None)
            for k in old.owned:
                plan.listeners.pop(k, None)
            if key in fresh:
                for k in old.keys:
                    holders = self.claims[k]
                    holders.discard(key)
                    if not holders:
                        del self.claims[k]
        for key, new in fresh.items():
            self.with_problems.discard(key)
            if new is None:
                self.placed.pop(key, None)
                continue
            self.placed[key] = new
            for k in new.keys:
                self.claims.setdefault(k, set()).add(key)
        for key in sorted(dirty):  # in (namespace, name) order: each after those before it
            placed = self.placed.get(key)
            if placed is None:
                continue
            placed.spns, placed.owned, placed.problems = settle(plan, placed.wanted)
            touched.update(placed.spns)
            if placed.problems:
                self.with_problems.add(key)
            else:
                self.with_problems.discard(key)
        plan.problems = [p for key in sorted(self.with_problems) for p in self.placed[key].problems]
        return self._result(touched)

    def _result(self, changed: set[SPN] | None) -> Plan:
        p = self.plan
        return Plan(dict(p.ports), dict(p.listeners), list(p.problems), changed=changed)


def serving(plan: Plan) -> dict[ListenerKey, SPN]:
    """The listeners to keep open: those of service ports with at least one ready endpoint. A service port
    without one has no socket, so the kernel refuses its connections (TCP RST: ECONNREFUSED) and answers its
    datagrams with ICMP port unreachable, as kube-proxy's REJECT rule does."""
    return {k: spn for k, spn in plan.listeners.items() if plan.ports[spn].endpoints_for(listener_kind(plan, k))}


def listener_kind(plan: Plan, key: ListenerKey) -> str:
    """cluster|nodePort|loadBalancer|externalIP of a listener in the plan."""
    _, ip, port = key
    for aip, aport, kind in plan.ports[plan.listeners[key]].addresses:
        if aip == ip and aport == port:
            return kind
    return "cluster"


def health_checks(plan: Plan) -> dict[int, tuple[str, str, int]]:
    """healthCheckNodePort -> (namespace, Service, local endpoints): kube-proxy's service health server counts
    the Service's local endpoints (the most over its ports)."""
    out: dict[int, tuple[str, str, int]] = {}
    for sp in plan.ports.values():
        if sp.health_check_node_port:
            ns, name, _ = sp.name
            prev = out.get(sp.health_check_node_port)
            if prev is None or (prev[0], prev[1]) == (ns, name):
                out[sp.health_check_node_port] = (ns, name, max(prev[2] if prev else 0, sp.local_endpoints))
    return out


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
