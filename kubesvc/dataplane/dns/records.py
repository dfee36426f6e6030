"""Store snapshot -> DNS answers, per the Kubernetes DNS-based service discovery spec (1.1.0) as CoreDNS serves it.

Pure: no sockets, no store. ``build(snapshot, options, serial)`` gives a ``Table``; ``Table.lookup(qname, qtype)``
gives an ``Answer`` (data, compared by value, so a rebuild can tell which prepared replies still hold).

Rules kept here (docs/concepts/dns.md, spec dataplane.md §2):
- Endpoints are the merged view of each Service's EndpointSlices (``controllers.endpointslices``), so
  hand-written slices of a selector-less headless Service answer like any other.
- Names compare case-insensitively (dnspython ``Name`` does); answers carry the owner name as asked.
- ``<svc>.<ns>.svc.<zone>``: A/AAAA = cluster IPs; headless = one RR per ready endpoint (no ready endpoint:
  the name does not exist); ExternalName = CNAME (IP literals serve nothing).
- ``<ep>.<svc>.<ns>.svc.<zone>``: the endpoint's hostname, else its IP with dashes.
- SRV ``_<port>._<proto>.<svc>...`` per named port (and one per port at the bare service name):
  priority 0, weight max(1, 100 // N); cluster IP -> service port and service name as target; headless ->
  endpoint port and endpoint name as target; targets' addresses go to ADDITIONAL.
- PTR for cluster IPs and headless endpoint IPs; unknown reverse names inside the service or pod range are
  NXDOMAIN, other reverse names are forwarded (CoreDNS ``fallthrough in-addr.arpa ip6.arpa``).
- Pod A ``a-b-c-d.<ns>.pod.<zone>``: ``insecure`` (any well-formed IPv4, existing namespace), ``verified``
  (a pod with that IP in that namespace) or ``disabled``.
- ``dns-version.<zone>`` TXT "1.1.0" (TTL 28800); apex SOA/NS; ``ns.dns.<zone>`` = kube-dns cluster IP.
- A name that exists (including empty non-terminals such as ``svc.<zone>`` or ``<ns>.svc.<zone>``) without
  the asked type is NODATA; any other name in the zone is NXDOMAIN; both carry the SOA (TTL min(ttl, 300)).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename

A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT = (
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME, dns.rdatatype.NS,
    dns.rdatatype.PTR, dns.rdatatype.SOA, dns.rdatatype.SRV, dns.rdatatype.TXT,
)
ANY = dns.rdatatype.ANY
IN = dns.rdataclass.IN
SCHEMA_VERSION = "1.1.0"
VERSION_TTL = 28800
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
REVERSE_V4 = dns.name.from_text("in-addr.arpa.")
REVERSE_V6 = dns.name.from_text("ip6.arpa.")
MAX_CNAME_CHAIN = 8

# (owner, rdtype, ttl, rdatas): one RRset as data.
RRSet = tuple[dns.name.Name, int, int, tuple[dns.rdata.Rdata, ...]]


@dataclass(frozen=True)
class Options:
    zone: str = "cluster.local"
    ttl: int = 5
    pods: str = "insecure"  # disabled | insecure | verified
    reverse_cidrs: tuple[str, ...] = ()  # reverse names inside these are ours (NXDOMAIN when unknown)


@dataclass(frozen=True)
class Answer:
    rcode: int = dns.rcode.NOERROR
    answer: tuple[RRSet, ...] = ()
    authority: tuple[RRSet, ...] = ()
    additional: tuple[RRSet, ...] = ()
    authoritative: bool = True
    chase: dns.name.Name | None = None  # out-of-zone CNAME target to resolve upstream (A/AAAA)
    forward: bool = False  # not our zone: ask the upstream servers


FORWARD = Answer(forward=True, authoritative=False)


def _rd(rdtype: int, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(IN, rdtype, text)  # type: ignore[arg-type]  # dnspython takes the int (IntEnum)


def _addr_rd(ip: str) -> tuple[int, dns.rdata.Rdata] | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return (A, _rd(A, str(addr))) if addr.version == 4 else (AAAA, _rd(AAAA, str(addr)))


def endpoint_label(address: dict[str, Any]) -> str:
    """The endpoint's hostname, else its IP with dashes (CoreDNS ``endpointHostname``)."""
    if address.get("hostname"):
        return str(address["hostname"])
    ip = str(address.get("ip", ""))
    if ":" in ip:
        label = ip.replace(":", "-")
        return label + "0" if label.endswith("-") else label
    return ip.replace(".", "-")


@dataclass
class Table:
    """Every name of the zone (and known reverse names) with its RRsets, plus what the zone needs to answer."""

    zone: dns.name.Name
    ttl: int
    serial: int
    pods: str
    names: dict[dns.name.Name, dict[int, tuple[int, tuple[dns.rdata.Rdata, ...]]]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    reverse_nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    # ------------------------------------------------------------------------------ building

    def add(self, owner: dns.name.Name, rdtype: int, rdata: dns.rdata.Rdata, ttl: int | None = None) -> None:
        node = self.names.setdefault(owner, {})
        old_ttl, rds = node.get(rdtype, (self.ttl if ttl is None else ttl, ()))
        if rdata not in rds:
            node[rdtype] = (old_ttl, rds + (rdata,))
        self.touch(owner)

    def touch(self, owner: dns.name.Name) -> None:
        """Make ``owner`` and its ancestors up to the zone exist (empty non-terminals answer NODATA)."""
        self.names.setdefault(owner, {})
        if owner.is_subdomain(self.zone):
            while owner != self.zone:
                owner = owner.parent()
                self.names.setdefault(owner, {})

    def soa(self, owner: dns.name.Name | None = None) -> RRSet:
        z = self.zone
        mname, rname = dns.name.from_text("ns.dns", z), dns.name.from_text("hostmaster", z)
        text = f"{mname} {rname} {self.serial} 7200 1800 86400 {self.ttl}"
        return (owner or z, SOA, min(self.ttl, 300), (_rd(SOA, text),))

    # ------------------------------------------------------------------------------ answering

    def lookup(self, qname: dns.name.Name, qtype: int) -> Answer:
        if qname.is_subdomain(self.zone):
            return self._zone_lookup(qname, qtype)
        if qname.is_subdomain(REVERSE_V4) or qname.is_subdomain(REVERSE_V6):
            return self._reverse_lookup(qname, qtype)
        return FORWARD

    def _negative(self, rcode: int, owner: dns.name.Name | None = None) -> Answer:
        return Answer(rcode=rcode, authority=(self.soa(owner),))

    def _zone_lookup(self, qname: dns.name.Name, qtype: int) -> Answer:
        node = self.names.get(qname)
        if node is None:
            node = self._synthesized_pod(qname)
            if node is None:
                return self._negative(dns.rcode.NXDOMAIN)
        if CNAME in node and qtype != CNAME:
            if qtype == SRV:  # ExternalName services have no SRV records
                return self._negative(dns.rcode.NOERROR)
            return self._follow_cname(qname, qtype, node)
        if qtype == ANY:
            return Answer(answer=tuple((qname, t, ttl, rds) for t, (ttl, rds) in sorted(node.items())))
        if qtype not in node:
            return self._negative(dns.rcode.NOERROR)
        ttl, rds = node[qtype]
        if qtype == SRV:
            weight = max(1, 100 // len(rds))
            rds = tuple(_rd(SRV, f"0 {weight} {r.port} {r.target}") for r in rds)  # type: ignore[attr-defined]
            return Answer(answer=((qname, SRV, ttl, rds),), additional=self._srv_additional(rds))
        return Answer(answer=((qname, qtype, ttl, rds),))

    def _srv_additional(self, rds: tuple[dns.rdata.Rdata, ...]) -> tuple[RRSet, ...]:
        out: list[RRSet] = []
        seen: set[dns.name.Name] = set()
        for r in rds:
            target = r.target  # type: ignore[attr-defined]
            if target in seen:
                continue
            seen.add(target)
            for t in (A, AAAA):
                got = self.names.get(target, {}).get(t)
                if got:
                    out.append((target, t, got[0], got[1]))
        return tuple(out)

    def _follow_cname(self, qname: dns.name.Name, qtype: int, node: dict[int, Any]) -> Answer:
        chain: list[RRSet] = []
        owner = qname
        for _ in range(MAX_CNAME_CHAIN):
            ttl, rds = node[CNAME]
            chain.append((owner, CNAME, ttl, rds))
            target = rds[0].target  # type: ignore[attr-defined]
            if not target.is_subdomain(self.zone):
                chase = target if qtype in (A, AAAA) else None
                return Answer(answer=tuple(chain), chase=chase)
            nxt = self.names.get(target)
            if nxt is None:
                return Answer(answer=tuple(chain))
            if CNAME not in nxt:
                if qtype in nxt:
                    ttl2, rds2 = nxt[qtype]
                    chain.append((target, qtype, ttl2, rds2))
                return Answer(answer=tuple(chain))
            if target == owner:
                break
            owner, node = target, nxt
        return Answer(answer=tuple(chain))

    def _synthesized_pod(self, qname: dns.name.Name) -> dict[int, Any] | None:
        """``pods insecure``: any well-formed IPv4 under an existing namespace's pod subdomain."""
        if self.pods != "insecure":
            return None
        rel = qname.relativize(self.zone).labels
        if len(rel) != 3 or rel[2].lower() != b"pod" or rel[1].decode("ascii", "replace").lower() not in self.namespaces:
            return None
        text = rel[0].decode("ascii", "replace").replace("-", ".")
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            return None
        if str(addr) != text:  # no leading zeros or other spellings
            return None
        return {A: (self.ttl, (_rd(A, text),))}

    def _reverse_lookup(self, qname: dns.name.Name, qtype: int) -> Answer:
        node = self.names.get(qname)
        origin = REVERSE_V4 if qname.is_subdomain(REVERSE_V4) else REVERSE_V6
        if node is not None:
            if qtype in node:
                ttl, rds = node[qtype]
                return Answer(answer=((qname, qtype, ttl, rds),))
            return self._negative(dns.rcode.NOERROR, origin)
        try:
            addr = ipaddress.ip_address(dns.reversename.to_address(qname))
        except (dns.exception.SyntaxError, ValueError):
            return FORWARD
        if any(addr in net for net in self.reverse_nets):
            return self._negative(dns.rcode.NXDOMAIN, origin)
        return FORWARD


# ---------------------------------------------------------------------------------------------- build


def build(snapshot: dict[str, list[dict[str, Any]]], options: Options, serial: int) -> Table:
    zone = dns.name.from_text(options.zone)
    nets = []
    for cidr in options.reverse_cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            pass
    t = Table(zone=zone, ttl=options.ttl, serial=serial, pods=options.pods, reverse_nets=tuple(nets))
    t.names[zone] = {}
    soa = t.soa()
    t.names[zone][SOA] = (soa[2], soa[3])
    ns_name = dns.name.from_text("ns.dns", zone)
    t.add(zone, NS, _rd(NS, ns_name.to_text()))
    t.add(dns.name.from_text("dns-version", zone), TXT, _rd(TXT, f'"{SCHEMA_VERSION}"'), VERSION_TTL)
    for key in ("svc", "pod"):
        t.touch(dns.name.from_text(key, zone))

    t.namespaces = {o["metadata"]["name"].lower() for o in snapshot.get("Namespace", [])}
    services = snapshot.get("Service", [])
    t.namespaces |= {(s["metadata"].get("namespace") or "default").lower() for s in services}
    for ns in t.namespaces:
        for key in ("svc", "pod"):
            try:
                t.touch(dns.name.from_text(f"{ns}.{key}", zone))
            except dns.exception.DNSException:
                pass
    endpoints = {(e["metadata"].get("namespace", "default"), e["metadata"]["name"]): e for e in snapshot.get("Endpoints", [])}
    for svc in services:
        meta = svc["metadata"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        try:
            owner = dns.name.from_text(f"{name}.{ns}.svc", zone)
        except dns.exception.DNSException:
            continue
        if ns == "kube-system" and name == "kube-dns":
            for ip in (svc.get("spec") or {}).get("clusterIPs") or []:
                got = _addr_rd(ip)
                if got:
                    t.add(ns_name, got[0], got[1])
        _add_service(t, svc, owner, endpoints.get((ns, name)))
    if options.pods != "disabled":
        for pod in snapshot.get("Pod", []):
            ns = pod["metadata"].get("namespace", "default")
            for entry in (pod.get("status") or {}).get("podIPs") or [{"ip": (pod.get("status") or {}).get("podIP")}]:
                ip = entry.get("ip") if isinstance(entry, dict) else None
                if ip and ":" not in ip and _addr_rd(ip):
                    t.add(dns.name.from_text(f"{ip.replace('.', '-')}.{ns}.pod", zone), A, _rd(A, ip))
    return t


def _add_service(t: Table, svc: dict[str, Any], owner: dns.name.Name, ep: dict[str, Any] | None) -> None:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        ext = str(spec.get("externalName") or "").rstrip(".")
        if not ext:
            return
        try:
            ipaddress.ip_address(ext)
            return  # an IP literal in externalName serves nothing (CoreDNS)
        except ValueError:
            pass
        try:
            t.add(owner, CNAME, _rd(CNAME, ext + "."))
        except dns.exception.DNSException:
            pass
        return
    ports = spec.get("ports") or []
    annotations = svc["metadata"].get("annotations") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses")) or annotations.get(TOLERATE_UNREADY) == "true"
    subsets = (ep or {}).get("subsets") or []
    headless = spec.get("clusterIP") == "None"
    if not headless:
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            got = _addr_rd(ip)
            if got:
                t.add(owner, got[0], got[1])
                t.add(dns.reversename.from_address(ip), PTR, _rd(PTR, owner.to_text()))
        for p in ports:
            srv = _rd(SRV, f"0 100 {p['port']} {owner}")
            t.add(owner, SRV, srv)
            if p.get("name"):
                t.add(_srv_name(p, owner), SRV, srv)
    for subset in subsets:
        addrs = list(subset.get("addresses") or [])
        if tolerate:
            addrs += subset.get("notReadyAddresses") or []
        for addr in addrs:
            got = _addr_rd(str(addr.get("ip", "")))
            if not got:
                continue
            try:
                ep_name = dns.name.from_text(endpoint_label(addr), owner)
            except dns.exception.DNSException:
                continue
            t.add(ep_name, got[0], got[1])
            if not headless:
                continue
            t.add(owner, got[0], got[1])
            t.add(dns.reversename.from_address(addr["ip"]), PTR, _rd(PTR, ep_name.to_text()))
            for p in subset.get("ports") or []:
                srv = _rd(SRV, f"0 100 {p['port']} {ep_name}")
                t.add(owner, SRV, srv)
                if p.get("name"):
                    t.add(_srv_name(p, owner), SRV, srv)


def _srv_name(port: dict[str, Any], owner: dns.name.Name) -> dns.name.Name:
    proto = str(port.get("protocol") or "TCP").lower()
    return dns.name.from_text(f"_{str(port['name']).lower()}._{proto}", owner)
