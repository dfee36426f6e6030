"""Wire format: dnspython renders every answer once; the fast path replays it for the next asker.

Rules kept here:
- ``render`` is the one place an ``Answer`` becomes a reply (dnspython ``make_response``): QR, AA for our own
  zone, RD copied, no RA; EDNS echoed with payload 1232 and no options; over UDP the reply is cut to 512
  bytes (1232 with EDNS, or less if the client says so) with TC set, so the client retries over TCP.
- ``prepare`` renders the answer for the canonical question (lower-case name, ID 0, RD clear, no EDNS) and
  keeps the header flags, the section counts and the bytes after the question. Names in those bytes point
  back into the question at fixed offsets (dnspython compresses case-insensitively), so the same bytes
  are right for any spelling of the name.
- ``parse_simple`` accepts only the common shape: one question with plain labels, no other records but an
  optional EDNS0 OPT (version 0, no options except COOKIE), a query (QR=0, opcode QUERY, TC=0, AA=0).
  Anything else goes the dnspython way. Records keep the table's order (dnspython's shuffle is off), so both
  ways give the same bytes. ``splice`` then copies the ID, RD and the question as asked into the
  prepared reply, appending the same OPT record dnspython would have written. Its walk over the name stops
  by ``NAME_STOP`` (a name is at most 255 octets), so a query's cost there does not grow with its size; at most
  one option is looked at.
- ``bounded`` is checked before dnspython parses anything (dnspython collects every label before it checks a
  name's length, and every EDNS option: a 40 KB name of one-byte labels costs it ~18 ms, 16,000 empty options
  ~0.9 s). A query passes when it has one question, no answer or authority records, at most one additional
  record and that an OPT with the root name and at most ``MAX_EDNS_OPTIONS`` options (CoreDNS rejects more
  than 2 additional records the same way, before parsing), and its question name is at most 255 octets with
  labels of at most 63 (RFC 1035 §2.3.4), compression pointers followed backwards at most ``MAX_POINTERS``
  times. The walk reads at most a few hundred bytes whatever the packet's size; a failing query gets FORMERR.
A test renders every name of a snapshot both ways and compares the bytes (tests/dataplane/test_dns_wire.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset

from kubesvc.dataplane.dns.records import IN, Answer

EDNS_PAYLOAD = 1232
PLAIN_UDP_LIMIT = 512
TCP_LIMIT = 65535
# The OPT record dnspython writes for make_response(query with EDNS, our_payload=1232): root, type 41,
# class = payload, TTL 0 (extended rcode 0, version 0, flags 0), no RDATA.
OPT_RECORD = b"\x00\x00\x29" + struct.pack("!H", EDNS_PAYLOAD) + b"\x00\x00\x00\x00\x00\x00"
COOKIE = 10
OPT = 41
MAX_NAME = 255  # octets of a name on the wire, root label included (RFC 1035 §2.3.4)
MAX_LABEL = 63
MAX_POINTERS = 126  # compression pointers in one name (as miekg/dns, CoreDNS's parser)
MAX_EDNS_OPTIONS = 16
NAME_STOP = 12 + MAX_NAME  # the fast path's label walk ends by here (header + longest name)


@dataclass(frozen=True)
class Prepared:
    answer: Answer
    flags: int  # reply flags with RD clear (RD is copied from each query)
    counts: tuple[int, int, int]  # ANCOUNT, NSCOUNT, ARCOUNT without OPT
    tail: bytes  # everything after the question


def udp_limit(payload: int | None) -> int:
    """Reply size limit over UDP: 512 without EDNS, else the client's payload capped at 1232."""
    if payload is None:
        return PLAIN_UDP_LIMIT
    return max(PLAIN_UDP_LIMIT, min(payload, EDNS_PAYLOAD))


def render(query: dns.message.Message, answer: Answer) -> dns.message.Message:
    r = dns.message.make_response(query, our_payload=EDNS_PAYLOAD)
    if answer.authoritative:
        r.flags |= dns.flags.AA
    r.set_rcode(answer.rcode)  # type: ignore[arg-type]  # dnspython takes the int (IntEnum)
    for section, rrsets in ((r.answer, answer.answer), (r.authority, answer.authority), (r.additional, answer.additional)):
        for owner, rdtype, ttl, rdatas in rrsets:
            rrset = dns.rrset.RRset(owner, IN, rdtype)  # type: ignore[arg-type]
            for rd in rdatas:
                rrset.add(rd, ttl)
            section.append(rrset)
    return r


def to_wire(msg: dns.message.Message, limit: int) -> bytes:
    return msg.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


def canonical_query(qname: dns.name.Name, qtype: int) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, IN)  # type: ignore[arg-type]
    q.id = 0
    q.flags = 0
    return q


def prepare(qname: dns.name.Name, qtype: int, answer: Answer) -> Prepared:
    wire = render(canonical_query(qname, qtype), answer).to_wire(want_shuffle=False)
    qlen = len(qname.to_wire() or b"") + 4
    flags, _, an, ns, ar = struct.unpack("!HHHHH", wire[2:12])
    return Prepared(answer, flags, (an, ns, ar), wire[12 + qlen :])


def parse_simple(q: bytes) -> tuple[bytes, int, int | None] | None:
    """(key, end of question, EDNS payload or None) for a query of the common shape, else None.

    The key is the question's wire bytes with the name lower-cased: (qname, qtype, qclass)."""
    n = len(q)
    if n < 17 or q[2] & 0xFE or q[4:10] != b"\x00\x01\x00\x00\x00\x00":
        return None  # QR, opcode, AA, TC must be clear (RD may be set); QD=1, AN=NS=0
    stop = n if n < NAME_STOP else NAME_STOP  # the root label of a 255-octet name is at 266: never walk past it
    i = 12
    while True:
        if i >= stop:
            return None
        ln = q[i]
        if ln == 0:
            break
        if ln > 63:  # compression pointers and extended label types go the slow way
            return None
        i += ln + 1
    end = i + 5
    if end > n:
        return None
    key = q[12 : i + 1].lower() + q[i + 1 : end]  # lengths are < 0x41, so lower() only touches letters
    arcount = q[10] << 8 | q[11]
    if arcount == 0:
        return (key, end, None) if end == n else None
    if arcount != 1 or n < end + 11 or q[end : end + 3] != b"\x00\x00\x29" or q[end + 6] != 0:
        return None  # not an OPT record, or EDNS version > 0
    payload = q[end + 3] << 8 | q[end + 4]
    rdlen = q[end + 9] << 8 | q[end + 10]
    j = end + 11
    if j + rdlen != n:
        return None
    if j < n:  # one option at most: a COOKIE, which we ignore as dnspython does
        if j + 4 > n:
            return None
        code, olen = q[j] << 8 | q[j + 1], q[j + 2] << 8 | q[j + 3]
        if code != COOKIE or j + 4 + olen != n:
            return None
    return key, end, payload


def name_end(q: bytes, i: int) -> int:
    """The offset just after the name at ``i`` (after its first compression pointer, if any), or -1 when the
    name is malformed, longer than ``MAX_NAME`` octets, has a label over 63 octets or more than ``MAX_POINTERS``
    pointers. Pointers must point backwards, each before the last (as dnspython requires). Reads at most
    ``MAX_NAME + 2 * MAX_POINTERS`` bytes, whatever the size of ``q``."""
    n = len(q)
    length = 1  # the root label
    end = -1
    lowest = i
    pointers = 0
    while i < n:
        ln = q[i]
        if ln == 0:
            return end if end >= 0 else i + 1
        if ln <= MAX_LABEL:
            length += ln + 1
            if length > MAX_NAME:
                return -1
            i += ln + 1
        elif ln >= 0xC0 and i + 1 < n:
            target = (ln & 0x3F) << 8 | q[i + 1]
            pointers += 1
            if target >= lowest or pointers > MAX_POINTERS:
                return -1
            if end < 0:
                end = i + 2
            lowest = i = target
        else:
            return -1  # extended label types (0x40, 0x80) or a cut pointer
    return -1


def bounded(q: bytes) -> bool:
    """Whether dnspython may parse query ``q`` (see the module's rules): its work then stays bounded."""
    n = len(q)
    if n < 12 or q[4:11] != b"\x00\x01\x00\x00\x00\x00\x00" or q[11] > 1:
        return False  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1
    i = name_end(q, 12)
    if i < 0:
        return False
    if q[11] == 0:
        return True  # whatever follows the question is dnspython's to refuse (trailing junk), cheaply
    i += 4  # QTYPE, QCLASS
    if q[i : i + 3] != b"\x00\x00\x29" or i + 11 > n:
        return False  # the additional record is not an OPT with the root name
    j, stop = i + 11, min(n, i + 11 + (q[i + 9] << 8 | q[i + 10]))
    for _ in range(MAX_EDNS_OPTIONS):
        if j + 4 > stop:
            return True  # all options seen (a cut one is dnspython's to refuse, after at most this many)
        j += 4 + (q[j + 2] << 8 | q[j + 3])
    return j >= stop  # else more than MAX_EDNS_OPTIONS options


def splice(q: bytes, end: int, p: Prepared, payload: int | None, limit: int) -> bytes | None:
    """The prepared reply with this query's ID, RD and question; None if it would not fit in ``limit``."""
    an, ns, ar = p.counts
    opt = b""
    if payload is not None:
        opt, ar = OPT_RECORD, ar + 1
    size = end + len(p.tail) + len(opt)
    if size > limit:
        return None
    flags = p.flags | (q[2] & 0x01) << 8
    return q[:2] + struct.pack("!HHHHH", flags, 1, an, ns, ar) + q[12:end] + p.tail + opt
