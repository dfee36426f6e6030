"""nftables mode: the proxy's plan -> one ``inet`` nftables table, applied as one ``nft -f`` transaction.

Rules kept here (kube-proxy's ``pkg/proxy/nftables/proxier.go`` layout, names and semantics):
- One table (``inet kubesvc`` by default, ``--nft-table``) holds everything: IPv4 and IPv6 in one place, so stop and
  ``down`` remove one object. Base chains (``base_rules``: their rules follow the model): ``nat-prerouting`` and
  ``nat-output`` (type nat, priority -100: dstnat) jump to ``firewall-check`` while some LB address has source
  ranges (``loadBalancerSourceRanges``: DROP from other sources, before DNAT), then to ``services``; ``nat-output``
  first sends a destination that is not local to ``service-endpoints-check`` (REJECT for an address whose service
  port has no endpoint) while there is one; ``nat-prerouting`` first drops 127/8 arriving on another interface;
  ``nat-postrouting`` (priority 100: srcnat) jumps to ``masquerading``. The nat chains see only a connection's first
  packet. The filter chains ``filter-input`` and ``filter-forward`` (priority -110) send new connections to
  ``service-endpoints-check``: a local destination is rejected on input, so that a local UDP client gets
  ECONNREFUSED rather than EPERM from its send. Every packet of the host walks a filter chain, so these two exist
  only while some service port has no endpoints (kube-proxy keeps the firewall and output checks in filter chains
  too, always registered).
- ``services`` looks up ``daddr . l4proto . dport`` in the verdict map ``service-ips`` (``service-ips6``): cluster IPs
  go to the service port's ``service-<hash>-<ns>/<name>/<proto>/<port>`` chain; NodePorts (one element per node
  address, ``--nodeport-addresses``), external IPs and LB IPs to its ``external-...`` chain, which marks traffic that
  did not start on this host for masquerade (``externalTrafficPolicy: Cluster``; ``Local`` keeps the client address
  and uses the node-local endpoints only) and goes to the same endpoint choice.
- The endpoint choice: ``numgen random mod N vmap { 0 : goto endpoint-..., ... }`` over the ready endpoints, one
  slot each (the Endpoints API has no weights: every endpoint weighs one). With ``sessionAffinity: ClientIP``,
  one dynamic set per endpoint (``affinity-<hash>-...``, ``flags dynamic,timeout``, ``timeout`` =
  ``timeoutSeconds``): the endpoint chain ``update``s the client's address into it, and the service chain first
  sends a client found in one of them to that endpoint. Sets survive syncs (never flushed), so affinity does too.
- ``endpoint-...`` chains DNAT to ``ip:port``; a connection from the endpoint to itself (hairpin) is marked for
  masquerade, except for loopback endpoints (127/8, ::1), which reach themselves over ``lo`` without it.
- Every sync is one transaction: ``add`` (idempotent) then ``flush`` of every chain and map, the new rules and
  elements, and ``delete`` of the chains and sets the previous sync made that this one no longer needs. Start-up
  (``fresh=True``) first deletes any table of that name (one left by a killed proxy) in the same transaction.
- Only new connections are translated (nat chains see the first packet); established TCP connections keep their
  mapping in conntrack across syncs, even when their Service goes away. UDP has no connection to end: a client that
  keeps its socket keeps its conntrack entry (each datagram renews it), so after a sync that changed the endpoints of a
  UDP address (cluster IP, NodePort, external or LB IP: an endpoint removed, the first endpoint added, the address
  gone or new), the entries to that address whose reply does not come from one of its endpoints now (a removed
  endpoint, or none: a flow that met the reject) are deleted, as kube-proxy does (``conntrack -D``; the conntrack
  tool, Debian package conntrack). The first sync checks every UDP address (entries a previous proxy left).
Everything above the ``# I/O`` line is pure.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from kubesvc.dataplane.proxy import plan as planning

log = logging.getLogger("kubesvc.proxy")

DEFAULT_TABLE = "kubesvc"
MASQ_BIT = "0x4000"
NFT_TIMEOUT_SECONDS = 60.0

BASE_CHAINS = (
    # name, type, hook, priority (their rules: ``base_rules``, a function of the model)
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
)
# Registered only while some service port has no endpoints (``no-endpoint-services`` holds an element): without one
# they would do nothing, and a base chain costs a call for every packet of the host, cluster traffic or not.
REJECT_CHAINS = ("filter-input", "filter-forward")
# 127/8 arriving on another interface is never a Service's (cluster IPs are 127/8 here, but their clients are local):
# where route_localnet lets it in (``kubesvc up --nodes N --proxy-mode nftables`` sets it in the node namespaces, for
# the masquerade in ``masquerading``), it would reach the node's loopback services: dropped, as kube-proxy's KUBE-FIREWALL
DROP_LOCALNET = 'iif != "lo" ip daddr 127.0.0.0/8 drop'


def base_rules(model: Model) -> dict[str, tuple[str, ...]]:
    """The rules of each base chain the table holds with ``model`` (a chain left out is not registered).

    The nat chains see only a connection's first packet (conntrack keeps the translation for the rest), so what needs
    deciding once per connection lives there: the firewall (drop before DNAT) and, for a destination that is not local,
    the reject of a service port without endpoints; each jump only while its map has an element, so that a connection
    of the host that is no Service's costs a lookup in ``service-ips`` and no more. A filter chain runs for every packet
    of every connection, the host's own included: only the reject for local destinations, which must happen on input (a
    reject on output fails the sender's send() with EPERM; the ICMP port unreachable input sends back reaches a UDP
    client as ECONNREFUSED, as a closed port does), stays in one, registered only while something rejects
    (docs/performance.md, "nftables mode")."""
    rejecting, firewalling = model.rejecting, model.firewalling
    fw = ("jump firewall-check",) if firewalling else ()
    out = {
        "nat-prerouting": (DROP_LOCALNET, *fw, "jump services"),
        "nat-output": (*(("fib daddr type != local jump service-endpoints-check",) if rejecting else ()), *fw, "jump services"),
        "nat-postrouting": ("jump masquerading",),
    }
    if rejecting:
        out["filter-input"] = out["filter-forward"] = ("ct state new jump service-endpoints-check",)
    return out


MAPS = ("service-ips", "no-endpoint-services", "firewall-ips")


class NftError(Exception):
    """nft is missing, not permitted, or refused the ruleset."""


@dataclass
class Model:
    """What a table holds besides its fixed skeleton (base chains, maps, helper chains): the per service port chains
    with their rules, the affinity sets with their declarations, and the map elements. A sync diffs two models."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)  # name -> "{ type ...; }"
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # map -> key -> verdict

    @property
    def rejecting(self) -> bool:
        """Some address rejects (a service port without endpoints): the filter chains are needed."""
        return bool(self.elements.get("no-endpoint-services") or self.elements.get("no-endpoint-services6"))

    @property
    def firewalling(self) -> bool:
        """Some LB address has source ranges: the nat chains jump to ``firewall-check``."""
        return bool(self.elements.get("firewall-ips") or self.elements.get("firewall-ips6"))

    @property
    def skeleton(self) -> frozenset[str]:
        """The fixed chains the table holds with this model."""
        return SKELETON_NAMES if self.rejecting else SKELETON_NAMES - frozenset(REJECT_CHAINS)

    @property
    def rules(self) -> int:
        base = sum(len(lines) for _, lines in SKELETON_CHAINS) + sum(len(r) for r in base_rules(self).values())
        return sum(len(r) for r in self.chains.values()) + sum(len(e) for e in self.elements.values()) + base


@dataclass
class Ruleset:
    text: str  # the nft -f transaction ("" when a partial sync found nothing to change)
    chains: set[str] = field(default_factory=set)  # regular chains made for service ports (deleted when gone)
    sets: set[str] = field(default_factory=set)  # affinity sets
    rules: int = 0  # rules + map elements (the rule-count metric)
    model: Model = field(default_factory=Model)  # what the table holds once ``text`` is applied
    cache: dict[planning.ServicePort, Unit] = field(default_factory=dict, repr=False)  # rendered units, reused by the next sync
    full: bool = True  # a full sync (every chain and map rewritten) or a partial one (changes only)
    units: dict[planning.SPN, tuple[planning.ServicePort, Unit]] = field(default_factory=dict, repr=False)  # by service port
    # UDP addresses whose endpoints this sync changed -> their endpoints now: ``apply`` deletes the conntrack entries
    # to them that reply from anything else
    conntrack: dict[tuple[str, int], frozenset[planning.Endpoint]] = field(default_factory=dict)


@dataclass(frozen=True)
class Unit:
    """One service port's part of the model (pure function of its ``ServicePort``: cached between syncs)."""

    chains: tuple[tuple[str, tuple[str, ...]], ...]
    sets: tuple[tuple[str, str], ...]
    elements: tuple[tuple[str, str, str], ...]  # (map, key, verdict)


def _hash(text: str) -> str:
    """kube-proxy's ``hashAndTruncate``-style 8-character tag that keeps chain names unique."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:5]).decode()  # 5 bytes = the first 8 characters


def _tag(spn: planning.SPN, protocol: str) -> str:
    ns, name, port = spn
    return f"{ns}/{name}/{protocol.lower()}/{port or '-'}"


def _family(ip: str) -> str:
    return "ip6" if ":" in ip else "ip"


def _addr(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _is_loopback(ip: str) -> bool:
    if ip.startswith("127."):
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _map_suffix(ip: str) -> str:
    return "6" if ":" in ip else ""


SKELETON_CHAINS = (
    ("mark-for-masquerade", (f"meta mark set meta mark or {MASQ_BIT}",)),
    # a local client of a 127/8 cluster IP dials from 127.0.0.1; DNATed to an endpoint off lo (a pod's veth, another
    # node), that source needs route_localnet on the way out and a masquerade to be answered (kube-proxy's localhost
    # NodePorts, iptables mode); ``ct status dnat``: our translations only
    ("masquerading", ("ip saddr 127.0.0.0/8 ip daddr != 127.0.0.0/8 ct status dnat masquerade fully-random",
                      f"meta mark & {MASQ_BIT} == 0 return", f"meta mark set meta mark xor {MASQ_BIT}", "masquerade fully-random")),
    ("reject-chain", ("reject",)),
    ("services", ("ip daddr . meta l4proto . th dport vmap @service-ips", "ip6 daddr . meta l4proto . th dport vmap @service-ips6")),
    ("service-endpoints-check", ("ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
                                 "ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services6")),
    ("firewall-check", ("ip daddr . meta l4proto . th dport vmap @firewall-ips", "ip6 daddr . meta l4proto . th dport vmap @firewall-ips6")),
)


def render_unit(sp: planning.ServicePort) -> Unit:
    """The chains, sets and map elements of one service port."""
    chains: dict[str, list[str]] = {}
    sets: dict[str, str] = {}
    elements: list[tuple[str, str, str]] = []
    proto = sp.protocol.lower()
    tag = _tag(sp.name, sp.protocol)

    def endpoint_choice(svc_rules: list[str], eps: tuple[planning.Endpoint, ...]) -> None:
        """Rules of a service/external chain after its own first rules: affinity lookups, then the random choice.
        The choice is a cascade of ``numgen random mod (N - i) == 0 goto endpoint-i`` (each reached rule takes its
        endpoint with probability 1/(N - i): uniform overall, iptables' ``statistic`` cascade) rather than one
        ``numgen random mod N vmap { ... }``: each such vmap is an anonymous set, and the kernel names a new
        anonymous set by scanning every set of the table, so 10,000 of them took ~10 s of kernel time per commit."""
        targets = []
        for ip, port in eps:
            fam = _family(ip)
            ep_tag = f"{tag}__{_addr(ip).replace(':', '.')}/{port}"
            ep_chain = f"endpoint-{_hash(ep_tag)}-{ep_tag}"
            aff = f"affinity-{_hash(ep_tag + f'@{sp.affinity_seconds}')}-{ep_tag}" if sp.affinity else ""
            if ep_chain not in chains:
                ep_rules = chains[ep_chain] = []
                if not _is_loopback(ip):
                    ep_rules.append(f"{fam} saddr {ip} jump mark-for-masquerade")
                if aff:
                    atype = "ipv6_addr" if fam == "ip6" else "ipv4_addr"
                    sets[aff] = f"{{ type {atype}; flags dynamic,timeout; timeout {sp.affinity_seconds}s; }}"
                    ep_rules.append(f"update @{aff} {{ {fam} saddr }}")
                ep_rules.append(f"meta l4proto {proto} dnat {fam} to {_addr(ip)}:{port}")
            if aff:
                svc_rules.append(f"{fam} saddr @{aff} goto {ep_chain}")
            targets.append(ep_chain)
        n = len(targets)
        svc_rules += [f"numgen random mod {n - i} == 0 goto {c}" for i, c in enumerate(targets[:-1])]
        svc_rules.append(f"goto {targets[-1]}")

    internal, external = sp.endpoints_for("cluster"), sp.endpoints_for("external")
    h = _hash(tag)
    svc_chain, ext_chain, fw_chain = f"service-{h}-{tag}", f"external-{h}-{tag}", f"firewall-{h}-{tag}"
    if internal:
        chains[svc_chain] = []
        endpoint_choice(chains[svc_chain], internal)
    externals = [a for a in sp.addresses if a[2] != "cluster"]
    if externals and external:
        ext_rules = chains[ext_chain] = []
        if sp.external_endpoints is None or len(external) != sp.local_endpoints:
            # externalTrafficPolicy Cluster: traffic that did not start on this host is masqueraded
            ext_rules.append("fib saddr type != local jump mark-for-masquerade")
        if sp.external_endpoints is None:
            ext_rules.append(f"goto {svc_chain}")
        else:  # the policies differ (Local on one side): its own choice over its endpoints
            endpoint_choice(ext_rules, external)
    ranges = [r for r in sp.source_ranges if r]
    if ranges and any(kind == "loadBalancer" for _, _, kind in sp.addresses):
        fw_rules = chains[fw_chain] = []
        for fam, want in (("ip", 4), ("ip6", 6)):
            nets = [r for r in ranges if ipaddress.ip_network(r, strict=False).version == want]
            if nets:
                fw_rules.append(f"{fam} saddr != {{ {', '.join(nets)} }} drop")
            else:
                fw_rules.append(f"meta nfproto {'ipv4' if want == 4 else 'ipv6'} drop")
    for ip, port, kind in sp.addresses:
        key = f"{ip} . {proto} . {port}"
        suffix = _map_suffix(ip)
        eps = internal if kind == "cluster" else external
        if not eps:
            elements.append(("no-endpoint-services" + suffix, key, "goto reject-chain"))
        else:
            elements.append(("service-ips" + suffix, key, f"goto {svc_chain if kind == 'cluster' else ext_chain}"))
        if kind == "loadBalancer" and fw_chain in chains:
            elements.append(("firewall-ips" + suffix, key, f"goto {fw_chain}"))
    return Unit(tuple((c, tuple(r)) for c, r in chains.items()), tuple(sets.items()), tuple(elements))


Touched = tuple[set[str], set[str], dict[str, set[str]]]  # chain names, set names, map -> element keys


def build_model(plan: planning.Plan, cache: dict[planning.ServicePort, Unit] | None = None, previous: Ruleset | None = None,
                changed: set[planning.SPN] | None = None
                ) -> tuple[Model, dict[planning.ServicePort, Unit], dict[planning.SPN, tuple[planning.ServicePort, Unit]], Touched | None]:
    """The model of ``plan``, reusing the units of ``cache`` (the previous sync's) for unchanged service ports;
    returns the cache for the next sync (this plan's units only), the units by service port, and (incremental
    only) what was touched. With ``previous`` and ``changed`` (``Plan.changed``: the service ports that may differ
    from the plan ``previous`` was rendered from), incremental: ``previous.model`` with the units of the changed
    service ports taken out and put back, so a sync costs what changed, not what the table holds. Units never share
    a chain, set or map key (names carry the service port; an address belongs to one service port)."""
    if previous is not None and changed is not None:
        return _patch_model(plan, previous, changed)
    model = Model(elements={m + s: {} for m in MAPS for s in ("", "6")})
    old = cache or {}
    new: dict[planning.ServicePort, Unit] = {}
    units: dict[planning.SPN, tuple[planning.ServicePort, Unit]] = {}
    chains, sets, elements = model.chains, model.sets, model.elements
    for spn, sp in plan.ports.items():
        unit = old.get(sp)
        if unit is None:
            unit = render_unit(sp)
        new[sp] = unit
        units[spn] = (sp, unit)
        chains.update(unit.chains)
        sets.update(unit.sets)
        for m, key, verdict in unit.elements:
            elements[m][key] = verdict
    return model, new, units, None


def _patch_model(plan: planning.Plan, previous: Ruleset, changed: set[planning.SPN]
                 ) -> tuple[Model, dict[planning.ServicePort, Unit], dict[planning.SPN, tuple[planning.ServicePort, Unit]], Touched]:
    prev = previous.model
    model = Model(dict(prev.chains), dict(prev.sets), {m: dict(e) for m, e in prev.elements.items()})
    cache, units = dict(previous.cache), dict(previous.units)
    touched: Touched = (set(), set(), {})
    redo = []
    for spn in changed:  # every old unit out first: a map key may move from one service port to another
        was, sp = units.get(spn), plan.ports.get(spn)
        if was is not None and sp is not None and was[0] == sp:
            continue
        redo.append((spn, sp))
        if was is not None:
            del units[spn]
            cache.pop(was[0], None)
            for name, _ in was[1].chains:
                model.chains.pop(name, None)
                touched[0].add(name)
            for name, _ in was[1].sets:
                model.sets.pop(name, None)
                touched[1].add(name)
            for m, key, _ in was[1].elements:
                model.elements[m].pop(key, None)
                touched[2].setdefault(m, set()).add(key)
    for spn, sp in redo:
        if sp is not None:
            unit = render_unit(sp)
            units[spn] = (sp, unit)
            cache[sp] = unit
            for name, rules in unit.chains:
                model.chains[name] = rules
                touched[0].add(name)
            for name, decl in unit.sets:
                model.sets[name] = decl
                touched[1].add(name)
            for m, key, verdict in unit.elements:
                model.elements[m][key] = verdict
                touched[2].setdefault(m, set()).add(key)
    return model, cache, units, touched


def _chain_lines(t: str, name: str, rules: tuple[str, ...], out: list[str]) -> None:
    out += [f"add rule {t} {name} {r}" for r in rules]


def _element_lines(t: str, m: str, items: list[str], out: list[str], verb: str = "add", batch: int = 2000) -> None:
    for i in range(0, len(items), batch):
        out.append(f"{verb} element {t} {m} {{ {', '.join(items[i:i + batch])} }}")


def render(plan: planning.Plan, table: str = DEFAULT_TABLE, previous: Ruleset | None = None, fresh: bool = False,
           partial: bool = False, existing: set[str] | None = None, changed: set[planning.SPN] | None = None) -> Ruleset:
    """The transaction that makes the table match ``plan``.

    Full (the default): ``add`` then ``flush`` of every chain and map, all rules and elements, and ``delete`` of the
    chains and sets ``previous`` made, or ``existing`` names (the kernel's chains and sets found by ``list_objects``:
    a periodic full sync thus also removes what was added behind our back), that are no longer wanted; affinity
    sets are added, never flushed. ``fresh``: delete any existing table of that name first.
    ``partial`` (with ``previous``): only the differences from ``previous.model``, as kube-proxy's partial syncs:
    new chains, changed chains flushed and rewritten, element deletes/adds, gone chains and sets deleted; the text is
    empty when nothing changed. ``changed`` (partial only: ``Plan.changed``, when ``previous`` was rendered from the plan
    before this one): only those service ports are rendered and compared (``build_model``)."""
    t = f"inet {table}"
    incremental = partial and previous is not None and not fresh and changed is not None
    model, cache, units, touched = build_model(plan, previous.cache if previous is not None else None,
                                               previous if incremental else None, changed if incremental else None)
    out: list[str] = []
    if partial and previous is not None and not fresh:
        _partial(t, previous.model, model, out, touched)
    else:
        _full(t, model, out, fresh)
        if not fresh:
            gone_chains = (set(previous.model.chains) if previous is not None else set()) | (existing or set())
            gone_sets = (set(previous.model.sets) if previous is not None else set()) | (existing or set())
            stale_chains = sorted(c for c in gone_chains - model.chains.keys() if _own_chain(c))
            out += [f"flush chain {t} {c}" for c in stale_chains]  # drop their references first (same transaction)
            out += [f"delete chain {t} {c}" for c in stale_chains]
            out += [f"delete set {t} {s}" for s in sorted(gone_sets - model.sets.keys()) if s.startswith("affinity-")]
    text = "\n".join(out) + "\n" if out else ""
    # the first sync (no previous) finds every UDP address new: it checks them all (entries an earlier proxy left)
    scope = changed if incremental else None
    was, now = _udp_targets(previous.units, scope) if previous is not None else {}, _udp_targets(units, scope)
    stale = {a: now.get(a, frozenset()) for a in was.keys() | now.keys() if was.get(a) != now.get(a)}
    return Ruleset(text, set(model.chains), set(model.sets), model.rules, model, cache, full=not partial or previous is None or fresh,
                   units=units, conntrack=stale)


def _udp_targets(units: dict[planning.SPN, tuple[planning.ServicePort, Unit]], scope: set[planning.SPN] | None = None
                 ) -> dict[tuple[str, int], frozenset[planning.Endpoint]]:
    """Each UDP address (ip, port) of the service ports in ``scope`` (all: None) -> the endpoints it DNATs to."""
    out: dict[tuple[str, int], frozenset[planning.Endpoint]] = {}
    for spn in (units if scope is None else scope):
        got = units.get(spn)
        if got is None or got[0].protocol != "UDP":
            continue
        sp = got[0]
        for ip, port, kind in sp.addresses:
            out[(ip, port)] = frozenset(sp.endpoints_for("cluster" if kind == "cluster" else "external"))
    return out


SKELETON_NAMES = frozenset(name for name, *_ in BASE_CHAINS) | frozenset(name for name, _ in SKELETON_CHAINS)


def _own_chain(name: str) -> bool:
    """A per service port chain (the skeleton's chains are rewritten by every full sync, never deleted)."""
    return name.startswith(("service-", "external-", "firewall-", "endpoint-")) and name not in SKELETON_NAMES


def _full(t: str, model: Model, out: list[str], fresh: bool) -> None:
    if fresh:
        out += [f"add table {t}", f"delete table {t}"]
    out.append(f"add table {t} {{ comment \"kubesvc proxy rules\"; }}")
    for name, kind, hook, prio in BASE_CHAINS:
        out.append(f"add chain {t} {name} {{ type {kind} hook {hook} priority {prio}; policy accept; }}")
        out.append(f"flush chain {t} {name}")
    for m in MAPS:
        out.append(f"add map {t} {m} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}")
        out.append(f"add map {t} {m}6 {{ type ipv6_addr . inet_proto . inet_service : verdict; }}")
        out += [f"flush map {t} {m}", f"flush map {t} {m}6"]
    for name, lines in SKELETON_CHAINS:
        out += [f"add chain {t} {name}", f"flush chain {t} {name}"]
        _chain_lines(t, name, lines, out)
    for name, decl in model.sets.items():
        out.append(f"add set {t} {name} {decl}")
    for name in model.chains:
        out += [f"add chain {t} {name}", f"flush chain {t} {name}"]
    for name, rules in model.chains.items():
        _chain_lines(t, name, rules, out)
    for m, els in model.elements.items():
        _element_lines(t, m, [f"{k} : {v}" for k, v in els.items()], out)
    wanted = base_rules(model)
    for base, *_ in BASE_CHAINS:
        if base in wanted:
            _chain_lines(t, base, wanted[base], out)
        else:
            out.append(f"delete chain {t} {base}")  # added and flushed above: the delete cannot miss


def _partial(t: str, old: Model, new: Model, out: list[str], touched: Touched | None = None) -> None:
    """The differences from ``old`` to ``new``; with ``touched``, only among those chains, sets and map keys (the
    rest is the same object in both)."""
    was_base, base = base_rules(old), base_rules(new)
    for name, kind, hook, prio in BASE_CHAINS:  # the jumps follow the maps: the filter chains come with the first
        if name in base and was_base.get(name) != base[name]:  # service port that rejects (and go with the last below)
            out.append(f"add chain {t} {name} {{ type {kind} hook {hook} priority {prio}; policy accept; }}")
            if name in was_base:
                out.append(f"flush chain {t} {name}")
            _chain_lines(t, name, base[name], out)
    set_names = (new.sets.keys() | old.sets.keys()) if touched is None else sorted(touched[1])
    chain_names = new.chains.keys() if touched is None else [c for c in sorted(touched[0]) if c in new.chains]
    for name in [n for n in set_names if n in new.sets and n not in old.sets]:
        out.append(f"add set {t} {name} {new.sets[name]}")
    changed = [c for c in chain_names if old.chains.get(c) != new.chains[c]]
    for name in changed:
        out.append(f"add chain {t} {name}" if name not in old.chains else f"flush chain {t} {name}")
    for name in changed:
        _chain_lines(t, name, new.chains[name], out)
    for m, els in new.elements.items():
        was = old.elements.get(m, {})
        keys = None if touched is None else sorted(touched[2].get(m) or ())
        if touched is not None and not keys:
            continue
        drop = [k for k, v in was.items() if els.get(k) != v] if keys is None else [k for k in keys if k in was and els.get(k) != was[k]]
        if drop:
            _element_lines(t, m, drop, out, "delete")
        add = ([f"{k} : {v}" for k, v in els.items() if was.get(k) != v] if keys is None
               else [f"{k} : {els[k]}" for k in keys if k in els and was.get(k) != els[k]])
        if add:
            _element_lines(t, m, add, out)
    gone = old.chains.keys() - new.chains.keys() if touched is None else {c for c in touched[0] if c in old.chains and c not in new.chains}
    stale = sorted(gone)
    out += [f"flush chain {t} {c}" for c in stale]
    out += [f"delete chain {t} {c}" for c in stale]
    out += [f"delete set {t} {s}" for s in sorted(n for n in set_names if n in old.sets and n not in new.sets)]
    gone_base = [name for name, *_ in BASE_CHAINS if name in was_base and name not in base]  # after the map elements
    out += [f"flush chain {t} {name}" for name in gone_base] + [f"delete chain {t} {name}" for name in gone_base]


# I/O ---------------------------------------------------------------------------------------------------------------


def unavailable() -> str | None:
    """Why nftables mode cannot run here (None: it can). Checked before anything is started."""
    if os.geteuid() != 0:
        return ("--mode nftables: programming nftables needs root (CAP_NET_ADMIN); run as root, "
                "or use --mode userspace (the default), which needs no privilege")
    if shutil.which("nft") is None:
        return "--mode nftables: the nft command was not found; install nftables (apt-get install nftables, or scripts/sysdeps.sh as root)"
    return None


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True, timeout=NFT_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise NftError("the nft command was not found; install nftables") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"nft {' '.join(args)} did not finish in {NFT_TIMEOUT_SECONDS:.0f}s") from None


def apply(ruleset: Ruleset) -> None:
    """Apply one transaction (all or nothing), then delete the stale UDP conntrack entries it leaves (``Ruleset.conntrack``).
    Raises NftError with nft's own message."""
    r = _nft(["-f", "-"], ruleset.text)
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise NftError("nft -f: " + ("; ".join(ln.strip() for ln in msg[:6] if ln.strip()) or f"exit code {r.returncode}"))
    if ruleset.conntrack:
        clear_udp(ruleset.conntrack)


_conntrack_missing_said = False


def _conntrack(args: list[str]) -> subprocess.CompletedProcess[str] | None:
    global _conntrack_missing_said
    try:
        return subprocess.run(["conntrack", *args], capture_output=True, text=True, timeout=NFT_TIMEOUT_SECONDS)
    except FileNotFoundError:
        if not _conntrack_missing_said:
            _conntrack_missing_said = True
            log.warning("conntrack not found: UDP clients may keep sending to removed endpoints until their flow expires "
                        "(install it: apt-get install conntrack, or scripts/sysdeps.sh as root)")
        return None
    except subprocess.TimeoutExpired:
        log.warning("conntrack did not finish", extra={"kv": {"args": " ".join(args), "seconds": NFT_TIMEOUT_SECONDS}})
        return None


def parse_conntrack(text: str) -> list[tuple[tuple[str, str, int, int], tuple[str, int]]]:
    """``conntrack -L`` lines -> ((orig src, orig dst, orig sport, orig dport), (reply src, reply sport)) per entry."""
    out = []
    for line in text.splitlines():
        kv: dict[str, list[str]] = {}
        for tok in line.split():
            k, eq, v = tok.partition("=")
            if eq:
                kv.setdefault(k, []).append(v)
        try:
            src, dst, sport, dport = kv["src"], kv["dst"], kv["sport"], kv["dport"]
            out.append(((src[0], dst[0], int(sport[0]), int(dport[0])), (src[1], int(sport[1]))))
        except (KeyError, IndexError, ValueError):
            continue
    return out


def stale_udp(entries: list[tuple[tuple[str, str, int, int], tuple[str, int]]], targets: dict[tuple[str, int], frozenset[planning.Endpoint]]
              ) -> set[tuple[str, int, str, int]]:
    """The (orig dst, orig dport, reply src, reply sport) groups of ``entries`` to delete: to an address of ``targets``,
    answered by something that is not one of its endpoints now (a removed endpoint, or the address itself: not DNATed)."""
    out = set()
    for (_, dst, _, dport), (rsrc, rsport) in entries:
        eps = targets.get((dst, dport))
        if eps is not None and (rsrc, rsport) not in eps:
            out.add((dst, dport, rsrc, rsport))
    return out


def clear_udp(targets: dict[tuple[str, int], frozenset[planning.Endpoint]]) -> int:
    """Delete the UDP conntrack entries to ``targets``' addresses that do not reply from one of their endpoints now:
    one listing per address family, then one ``conntrack -D`` per (address, stale reply source). Returns how many
    groups were deleted (-1: the conntrack tool is missing)."""
    deleted = 0
    for family, v6 in (("ipv4", False), ("ipv6", True)):
        wanted = {a: eps for a, eps in targets.items() if (":" in a[0]) == v6}
        if not wanted:
            continue
        listed = _conntrack(["-L", "-p", "udp", "-f", family])
        if listed is None:
            return -1
        for dst, dport, rsrc, rsport in sorted(stale_udp(parse_conntrack(listed.stdout), wanted)):
            r = _conntrack(["-D", "-p", "udp", "-f", family, "--orig-dst", dst, "--dport", str(dport),
                            "--reply-src", rsrc, "--reply-port-src", str(rsport)])
            if r is None:
                return -1
            deleted += 1
    return deleted


def delete_table(table: str = DEFAULT_TABLE) -> bool:
    """Remove the table if it exists. True when one was removed."""
    r = _nft(["delete", "table", "inet", table])
    return r.returncode == 0


def list_objects(table: str = DEFAULT_TABLE) -> set[str]:
    """The names of the chains and sets the kernel holds in the table (a periodic full sync deletes those of ours
    that the model does not know: left by a failed sync, or added behind our back). Empty when there is no table."""
    import json

    names: set[str] = set()
    for kind in ("chains", "sets"):
        r = _nft(["-j", "list", kind, "inet"])
        if r.returncode != 0:
            continue
        try:
            items = json.loads(r.stdout).get("nftables", [])
        except ValueError:
            continue
        for item in items:
            obj = item.get("chain") or item.get("set") or {}
            if obj.get("table") == table and obj.get("family") == "inet" and obj.get("name"):
                names.add(obj["name"])
    return names


def table_exists(table: str = DEFAULT_TABLE) -> bool:
    return _nft(["list", "table", "inet", table]).returncode == 0
