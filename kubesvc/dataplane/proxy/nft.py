"""nftables mode: the proxy's plan -> one ``inet`` nftables table, applied as one ``nft -f`` transaction.

Rules kept here (kube-proxy's ``pkg/proxy/nftables/proxier.go`` layout, names and semantics):
- One table (``inet kubesvc`` by default, ``--nft-table``) holds everything: IPv4 and IPv6 in one place, so stop and
  ``down`` remove one object. Base chains: ``nat-prerouting`` and ``nat-output`` (type nat, priority -100: dstnat)
  jump to ``services``; ``nat-postrouting`` (priority 100: srcnat) to ``masquerading``; ``filter-prerouting``,
  ``filter-output``, ``filter-input`` and ``filter-forward`` (type filter, priority -110, before DNAT) send new
  connections to ``service-endpoints-check`` (REJECT for an address whose service port has no endpoint; for a local
  destination on input, so that a local UDP client gets ECONNREFUSED rather than EPERM from its send) and
  ``firewall-check`` (``loadBalancerSourceRanges``: DROP from other sources on LB addresses).
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
- Only new connections are translated (nat chains see the first packet); established ones keep their mapping in
  conntrack across syncs, even when their Service goes away.
Everything above the ``# I/O`` line is pure.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from kubesvc.dataplane.proxy import plan as planning

DEFAULT_TABLE = "kubesvc"
MASQ_BIT = "0x4000"
NFT_TIMEOUT_SECONDS = 60.0

BASE_CHAINS = (
    # name, type, hook, priority, jumps
    ("nat-prerouting", "nat", "prerouting", -100, ("jump services",)),
    ("nat-output", "nat", "output", -100, ("jump services",)),
    ("nat-postrouting", "nat", "postrouting", 100, ("jump masquerading",)),
    ("filter-prerouting", "filter", "prerouting", -110, ("ct state new jump firewall-check",)),
    # a local destination is rejected on input instead: a reject on output fails the sender's send() with EPERM,
    # while the ICMP port unreachable that input sends back reaches a UDP client as ECONNREFUSED, as a closed port does
    ("filter-output", "filter", "output", -110, ("ct state new fib daddr type != local jump service-endpoints-check",
                                                  "ct state new jump firewall-check")),
    ("filter-input", "filter", "input", -110, ("ct state new jump service-endpoints-check",)),
    ("filter-forward", "filter", "forward", -110, ("ct state new jump service-endpoints-check",)),
)
MAPS = ("service-ips", "no-endpoint-services", "firewall-ips")


class NftError(Exception):
    """nft is missing, not permitted, or refused the ruleset."""


@dataclass
class Ruleset:
    text: str  # the nft -f transaction
    chains: set[str] = field(default_factory=set)  # regular chains made for service ports (deleted when gone)
    sets: set[str] = field(default_factory=set)  # affinity sets
    rules: int = 0  # rules + map elements (the rule-count metric)


def _hash(text: str) -> str:
    """kube-proxy's ``hashAndTruncate``-style 8-character tag that keeps chain names unique."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def _tag(spn: planning.SPN, protocol: str) -> str:
    ns, name, port = spn
    return f"{ns}/{name}/{protocol.lower()}/{port or '-'}"


def _family(ip: str) -> str:
    return "ip6" if ":" in ip else "ip"


def _addr(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _map_suffix(ip: str) -> str:
    return "6" if ":" in ip else ""


def render(plan: planning.Plan, table: str = DEFAULT_TABLE, previous: Ruleset | None = None, fresh: bool = False) -> Ruleset:
    """The transaction that makes the table match ``plan``. ``previous``: what the last sync made (its chains and sets
    that are no longer wanted are deleted). ``fresh``: delete any existing table of that name first."""
    t = f"inet {table}"
    out: list[str] = []
    rules = 0
    chains: set[str] = set()
    sets: set[str] = set()
    elements: dict[str, list[str]] = {m + s: [] for m in MAPS for s in ("", "6")}
    body: list[str] = []  # per service port chains, rules and sets

    def chain(name: str) -> None:
        chains.add(name)
        body.append(f"add chain {t} {name}")
        body.append(f"flush chain {t} {name}")

    def rule(name: str, text: str) -> None:
        nonlocal rules
        rules += 1
        body.append(f"add rule {t} {name} {text}")

    if fresh:
        out += [f"add table {t}", f"delete table {t}"]
    out.append(f"add table {t} {{ comment \"kubesvc proxy rules\"; }}")
    for name, kind, hook, prio, _ in BASE_CHAINS:
        out.append(f"add chain {t} {name} {{ type {kind} hook {hook} priority {prio}; policy accept; }}")
        out.append(f"flush chain {t} {name}")
    for m in MAPS:
        out.append(f"add map {t} {m} {{ type ipv4_addr . inet_proto . inet_service : verdict; }}")
        out.append(f"add map {t} {m}6 {{ type ipv6_addr . inet_proto . inet_service : verdict; }}")
        out += [f"flush map {t} {m}", f"flush map {t} {m}6"]
    for name, lines in (
        ("mark-for-masquerade", (f"meta mark set meta mark or {MASQ_BIT}",)),
        ("masquerading", (f"meta mark & {MASQ_BIT} == 0 return", f"meta mark set meta mark xor {MASQ_BIT}", "masquerade fully-random")),
        ("reject-chain", ("reject",)),
        ("services", ("ip daddr . meta l4proto . th dport vmap @service-ips", "ip6 daddr . meta l4proto . th dport vmap @service-ips6")),
        ("service-endpoints-check", ("ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
                                     "ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services6")),
        ("firewall-check", ("ip daddr . meta l4proto . th dport vmap @firewall-ips", "ip6 daddr . meta l4proto . th dport vmap @firewall-ips6")),
    ):
        out += [f"add chain {t} {name}", f"flush chain {t} {name}"]
        out += [f"add rule {t} {name} {line}" for line in lines]
        rules += len(lines)

    def endpoint_choice(svc_chain: str, eps: tuple[planning.Endpoint, ...], sp: planning.ServicePort, tag: str) -> None:
        """Rules of a service/external chain after its own first rules: affinity lookups, then numgen."""
        targets = []
        proto = sp.protocol.lower()
        for ip, port in eps:
            fam = _family(ip)
            ep_tag = f"{tag}__{_addr(ip).replace(':', '.')}/{port}"
            ep_chain = f"endpoint-{_hash(ep_tag)}-{ep_tag}"
            aff = f"affinity-{_hash(ep_tag + f'@{sp.affinity_seconds}')}-{ep_tag}" if sp.affinity else ""
            if ep_chain not in chains:
                chain(ep_chain)
                if not _is_loopback(ip):
                    rule(ep_chain, f"{fam} saddr {ip} jump mark-for-masquerade")
                if aff:
                    sets.add(aff)
                    atype = "ipv6_addr" if fam == "ip6" else "ipv4_addr"
                    body.append(f"add set {t} {aff} {{ type {atype}; flags dynamic,timeout; timeout {sp.affinity_seconds}s; }}")
                    rule(ep_chain, f"update @{aff} {{ {fam} saddr }}")
                rule(ep_chain, f"meta l4proto {proto} dnat {fam} to {_addr(ip)}:{port}")
            if aff:
                rule(svc_chain, f"{fam} saddr @{aff} goto {ep_chain}")
            targets.append(ep_chain)
        vmap = ", ".join(f"{i} : goto {c}" for i, c in enumerate(targets))
        rule(svc_chain, f"numgen random mod {len(targets)} vmap {{ {vmap} }}")

    for spn, sp in plan.ports.items():
        proto = sp.protocol.lower()
        tag = _tag(spn, sp.protocol)
        internal, external = sp.endpoints_for("cluster"), sp.endpoints_for("external")
        svc_chain = f"service-{_hash(tag)}-{tag}"
        ext_chain = f"external-{_hash(tag)}-{tag}"
        fw_chain = f"firewall-{_hash(tag)}-{tag}"
        if internal:
            chain(svc_chain)
            endpoint_choice(svc_chain, internal, sp, tag)
        externals = [(ip, port, kind) for ip, port, kind in sp.addresses if kind != "cluster"]
        if externals and external:
            chain(ext_chain)
            if sp.external_endpoints is None or len(external) != sp.local_endpoints:
                # externalTrafficPolicy Cluster: traffic that did not start on this host is masqueraded
                rule(ext_chain, "fib saddr type != local jump mark-for-masquerade")
            if sp.external_endpoints is None:
                rule(ext_chain, f"goto {svc_chain}")
            else:  # the policies differ (Local on one side): its own choice over its endpoints
                endpoint_choice(ext_chain, external, sp, tag)
        ranges = [r for r in sp.source_ranges if r]
        if ranges and any(kind == "loadBalancer" for _, _, kind in sp.addresses):
            chain(fw_chain)
            for fam, want in (("ip", 4), ("ip6", 6)):
                nets = [r for r in ranges if ipaddress.ip_network(r, strict=False).version == want]
                if nets:
                    rule(fw_chain, f"{fam} saddr != {{ {', '.join(nets)} }} drop")
                else:
                    rule(fw_chain, f"meta nfproto {'ipv4' if want == 4 else 'ipv6'} drop")
        for ip, port, kind in sp.addresses:
            key = f"{ip} . {proto} . {port}"
            suffix = _map_suffix(ip)
            eps = internal if kind == "cluster" else external
            if not eps:
                elements["no-endpoint-services" + suffix].append(f"{key} : goto reject-chain")
            else:
                elements["service-ips" + suffix].append(f"{key} : goto {svc_chain if kind == 'cluster' else ext_chain}")
            if kind == "loadBalancer" and fw_chain in chains:
                elements["firewall-ips" + suffix].append(f"{key} : goto {fw_chain}")
    out += body
    for m, els in elements.items():
        if els:
            rules += len(els)
            out.append(f"add element {t} {m} {{ {', '.join(els)} }}")
    for base, _, _, _, jumps in BASE_CHAINS:
        out += [f"add rule {t} {base} {j}" for j in jumps]
        rules += len(jumps)
    if previous is not None and not fresh:
        stale_chains = sorted(previous.chains - chains)
        out += [f"flush chain {t} {c}" for c in stale_chains]  # drop their references first (same transaction)
        out += [f"delete chain {t} {c}" for c in stale_chains]
        out += [f"delete set {t} {s}" for s in sorted(previous.sets - sets)]
    return Ruleset("\n".join(out) + "\n", chains, sets, rules)


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
    """Apply one transaction (all or nothing). Raises NftError with nft's own message."""
    r = _nft(["-f", "-"], ruleset.text)
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise NftError("nft -f: " + ("; ".join(ln.strip() for ln in msg[:6] if ln.strip()) or f"exit code {r.returncode}"))


def delete_table(table: str = DEFAULT_TABLE) -> bool:
    """Remove the table if it exists. True when one was removed."""
    r = _nft(["delete", "table", "inet", table])
    return r.returncode == 0


def table_exists(table: str = DEFAULT_TABLE) -> bool:
    return _nft(["list", "table", "inet", table]).returncode == 0
