"""Sans-IO query handling: bytes in, a reply (or a forwarding job, or nothing) out.

Rules kept here:
- Never answer a response (QR=1) or a packet shorter than a header: drop it (no reflection loops).
- Opcodes other than QUERY: NOTIMP. Unparseable queries, QDCOUNT != 1, answer or authority records, additional
  records other than one OPT, more than ``wire.MAX_EDNS_OPTIONS`` EDNS options, names over 255 octets, labels over
  63: FORMERR with the query's ID and no sections (never longer than what was sent). ``wire.bounded`` decides
  all but the first before dnspython sees the packet, reading at most a few hundred bytes of it. EDNS version > 0: BADVERS. Class other than IN,
  AXFR/IXFR and other meta types except ANY: REFUSED.
- Cluster answers come from the prepared-reply table when the query has the common shape, else from
  dnspython; every reply dnspython builds from the record table is prepared for the next asker
  (bounded by ``MAX_PREPARED``). Forwarded and ExternalName-chased answers are never prepared.
- ``update`` swaps in a new record table: prepared replies whose answer is unchanged are kept, the rest
  are dropped, then every positive answer of the new table is prepared.
- Over UDP a fast-path reply is also remembered by the query's bytes after its ID (``udp_fast``): the same
  question asked again costs a dict lookup and a concatenation. ``install`` empties it with every new table.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from kubesvc.dataplane.dns import wire
from kubesvc.dataplane.dns.config import ForwardConfig, Server
from kubesvc.dataplane.dns.records import IN, SOA, Answer, Table

MAX_PREPARED = 100_000
MAX_REPLIES = 10_000  # remembered UDP replies (udp_fast), emptied when full
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_allowed(host: str, extra: Iterable[Network]) -> bool:
    """Loopback clients always; others only inside an ``--allow-from`` network."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in (*LOOPBACK, *extra) if net.version == addr.version)


@dataclass(frozen=True)
class Forward:
    """Ask ``servers`` and relay the reply (``prefix``: CNAME records to put before the upstream's answer)."""

    query: dns.message.Message
    qname: dns.name.Name
    qtype: int
    servers: tuple[Server, ...]
    limit: int
    prefix: Answer | None = None


def header_reply(q: bytes, rcode: int) -> bytes:
    """A header-only reply: same ID, opcode and RD, QR set, this rcode, all counts zero."""
    flags = 0x8000 | (q[2] & 0x79) << 8 | (rcode & 0x0F)
    return q[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)


class Handler:
    def __init__(self, table: Table, forward: ForwardConfig, fallback: tuple[Server, ...] = ()) -> None:
        self.table = table
        self.forward = forward
        self.fallback = fallback
        self.prepared: dict[bytes, wire.Prepared] = prepare_all(table, {})
        self.replies: dict[bytes, bytes] = {}  # UDP query less its ID -> fast-path reply less its ID (``udp_fast``)

    # ------------------------------------------------------------------------------ table changes

    def update(self, table: Table, forward: ForwardConfig) -> None:
        self.install(table, forward, prepare_all(table, self.prepared), self.fallback)

    def install(self, table: Table, forward: ForwardConfig, prepared: dict[bytes, wire.Prepared],
                fallback: tuple[Server, ...]) -> None:
        """Swap in a new table and its prepared replies (on the loop); remembered replies go with the old ones."""
        self.table, self.forward, self.prepared, self.fallback = table, forward, prepared, fallback
        self.replies = {}

    # ------------------------------------------------------------------------------ queries

    def fast(self, q: bytes, tcp: bool) -> bytes | None:
        parsed = wire.parse_simple(q)
        if parsed is None:
            return None
        key, end, payload = parsed
        p = self.prepared.get(key)
        if p is None:
            return None
        return wire.splice(q, end, p, payload, wire.TCP_LIMIT if tcp else wire.udp_limit(payload))

    def udp_fast(self, q: bytes) -> bytes | None:
        """``fast`` over UDP, remembered by the query's bytes after its ID: a reply depends on nothing else (the
        ID is copied, the rest follows from the question as asked, its flags and EDNS), so a resolver asking
        the same question again gets the same bytes behind its new ID without parsing. Emptied by ``install``."""
        tail = self.replies.get(q[2:])
        if tail is not None:
            return q[:2] + tail
        reply = self.fast(q, False)
        if reply is not None:
            if len(self.replies) >= MAX_REPLIES:
                self.replies.clear()
            self.replies[q[2:]] = reply[2:]
        return reply

    def handle(self, q: bytes, tcp: bool) -> bytes | Forward | None:
        """The reply bytes, a forwarding job, or None to drop the packet."""
        reply = self.fast(q, tcp)
        if reply is not None:
            return reply
        return self.slow(q, tcp)

    def slow(self, q: bytes, tcp: bool) -> bytes | Forward | None:
        if len(q) < 12 or q[2] & 0x80:
            return None
        if (q[2] >> 3) & 0x0F != dns.opcode.QUERY:
            return header_reply(q, dns.rcode.NOTIMP)
        if not wire.bounded(q):  # before dnspython, whose parsing cost grows with the packet (wire.bounded)
            return header_reply(q, dns.rcode.FORMERR)
        try:
            msg = dns.message.from_wire(q)
        except (dns.exception.DNSException, ValueError, UnicodeError, IndexError, struct.error):
            return header_reply(q, dns.rcode.FORMERR)
        if len(msg.question) != 1 or msg.answer or msg.authority:
            return header_reply(q, dns.rcode.FORMERR)
        limit = wire.TCP_LIMIT if tcp else wire.udp_limit(msg.payload if msg.edns >= 0 else None)
        if msg.edns > 0:
            r = dns.message.make_response(msg, our_payload=wire.EDNS_PAYLOAD)
            r.set_rcode(dns.rcode.BADVERS)
            return wire.to_wire(r, limit)
        question = msg.question[0]
        qname, qtype = question.name, question.rdtype
        if question.rdclass != IN or (dns.rdatatype.is_metatype(qtype) and qtype != dns.rdatatype.ANY):
            r = dns.message.make_response(msg, our_payload=wire.EDNS_PAYLOAD)
            r.set_rcode(dns.rcode.REFUSED)
            return wire.to_wire(r, limit)
        answer = self.table.lookup(qname, qtype)
        if answer.forward:
            return Forward(msg, qname, qtype, self.forward.route(qname, self.fallback), limit)
        if answer.chase is not None:
            target = answer.chase
            return Forward(msg, target, qtype, self.forward.route(target, self.fallback), limit, prefix=answer)
        if len(self.prepared) < MAX_PREPARED:
            key = _key(qname, qtype)
            if key not in self.prepared:
                canonical = dns.name.from_text(qname.to_text().lower())
                self.prepared[key] = wire.prepare(canonical, qtype, self.table.lookup(canonical, qtype))
        return wire.to_wire(wire.render(msg, answer), limit)

    def relay(self, job: Forward, upstream: dns.message.Message | None) -> bytes:
        """The client's reply from the upstream's reply (None: nobody answered -> SERVFAIL)."""
        msg = job.query
        if job.prefix is not None:  # ExternalName: our CNAME chain, then whatever the upstream resolved
            r = wire.render(msg, job.prefix)
            if upstream is not None and upstream.rcode() == dns.rcode.NOERROR:
                r.answer.extend(upstream.answer)
            return wire.to_wire(r, job.limit)
        r = dns.message.make_response(msg, our_payload=wire.EDNS_PAYLOAD, recursion_available=True)
        if upstream is None:
            r.set_rcode(dns.rcode.SERVFAIL)
            return wire.to_wire(r, job.limit)
        r.set_rcode(upstream.rcode())
        r.flags |= upstream.flags & (dns.flags.AD | dns.flags.CD)
        r.answer, r.authority = list(upstream.answer), list(upstream.authority)
        r.additional = [rr for rr in upstream.additional]
        return wire.to_wire(r, job.limit)


def prepare_all(table: Table, old: dict[bytes, wire.Prepared]) -> dict[bytes, wire.Prepared]:
    """Prepared replies for ``table``: the still-true ones from ``old`` plus every positive answer."""
    fresh: dict[bytes, wire.Prepared] = {}
    for key, p in old.items():
        qname, qtype = _key_question(key)
        if table.lookup(qname, qtype) == p.answer:
            fresh[key] = p
    for name, node in table.names.items():
        for rdtype in node:
            if len(fresh) >= MAX_PREPARED:
                return fresh
            key = _key(name, rdtype)
            if rdtype != SOA and key not in fresh:
                answer = table.lookup(name, rdtype)
                if answer.chase is None and not answer.forward:
                    fresh[key] = wire.prepare(name, rdtype, answer)
    return fresh


def _key(name: dns.name.Name, rdtype: int) -> bytes:
    return (name.to_wire() or b"").lower() + struct.pack("!HH", rdtype, IN)


def _key_question(key: bytes) -> tuple[dns.name.Name, int]:
    name = dns.name.from_wire(key, 0)[0]
    rdtype = struct.unpack("!H", key[-4:-2])[0]
    return name, rdtype
