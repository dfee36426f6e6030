"""The fast path against the dnspython path: same bytes for every name of a snapshot, and the handler's rules
for odd packets (sans-IO; the socket-level versions are in test_dns_server.py and test_dns_fuzz.py)."""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesvc.dataplane.dns import config, records, wire
from kubesvc.dataplane.dns.handler import Forward, Handler
from tests.dataplane.test_dns_records import SNAPSHOT

TYPES = ["A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "NS", "SOA", "MX", "ANY"]


def handler() -> Handler:
    t = records.build(SNAPSHOT, records.Options(reverse_cidrs=("127.96.0.0/12", "127.244.0.0/16")), 3)
    return Handler(t, config.ForwardConfig(), (("127.53.0.1", 53),))


def every_name(h: Handler) -> list[dns.name.Name]:
    extra = ["nope.default.svc.cluster.local", "x.cluster.local", "9.9.96.127.in-addr.arpa", "10-9-8-7.other.pod.cluster.local"]
    return sorted(h.table.names) + [dns.name.from_text(n) for n in extra]


def spelled(name: dns.name.Name, rng: random.Random) -> dns.name.Name:
    text = name.to_text()
    return dns.name.from_text("".join(c.upper() if rng.random() < 0.5 else c for c in text))


def dnspython_reply(h: Handler, q: bytes, tcp: bool) -> bytes:
    """What the dnspython path answers (fast path bypassed)."""
    msg = dns.message.from_wire(q)
    limit = wire.TCP_LIMIT if tcp else wire.udp_limit(msg.payload if msg.edns >= 0 else None)
    answer = h.table.lookup(msg.question[0].name, msg.question[0].rdtype)
    return wire.to_wire(wire.render(msg, answer), limit)


@pytest.mark.parametrize("edns", [False, True])
def test_fast_path_bytes_equal_dnspython_for_every_name(edns: bool) -> None:
    h = handler()
    rng = random.Random(7)
    checked = 0
    for name in every_name(h):
        for rdtype in TYPES:
            q = dns.message.make_query(spelled(name, rng), rdtype, use_edns=0 if edns else None, payload=4096)
            q.id = rng.randrange(65536)
            if rng.random() < 0.5:
                q.flags &= ~dns.flags.RD
            if edns and rng.random() < 0.5:
                q.use_edns(0, 0, 4096, options=[dns.edns.CookieOption(b"\x01" * 8, b"")])
            wire_q = q.to_wire()
            expected = dnspython_reply(h, wire_q, tcp=False)
            first = h.handle(wire_q, False)  # may fill the prepared table
            if isinstance(first, Forward):  # ExternalName chased upstream: never prepared
                assert first.prefix is not None and h.fast(wire_q, False) is None
                continue
            assert first == expected, (name, rdtype)
            fast = h.fast(wire_q, False)
            if rdtype != "ANY":
                assert fast is not None, (name, rdtype)
            if fast is not None:
                assert fast == expected, (name, rdtype)
                checked += 1
    assert checked > 300


def test_prepared_replies_follow_table_changes() -> None:
    h = handler()
    q = dns.message.make_query("web.default.svc.cluster.local", "A").to_wire()
    assert "127.96.1.1" in dns.message.from_wire(h.fast(q, False) or b"").to_text()
    snap = {**SNAPSHOT, "Service": [s for s in SNAPSHOT["Service"] if s["metadata"]["name"] != "web"]}
    h.update(records.build(snap, records.Options(), 4), config.ForwardConfig())
    reply = h.handle(q, False)
    assert isinstance(reply, bytes) and dns.message.from_wire(reply).rcode() == dns.rcode.NXDOMAIN


def test_unusual_shapes_skip_the_fast_path() -> None:
    h = handler()
    base = dns.message.make_query("web.default.svc.cluster.local", "A")
    assert h.fast(base.to_wire(), False) is not None
    padded = dns.message.make_query("web.default.svc.cluster.local", "A", use_edns=0, pad=128)
    assert h.fast(padded.to_wire(), False) is None
    assert h.fast(base.to_wire() + b"\x00", False) is None  # trailing garbage
    compressed = bytearray(base.to_wire())
    assert wire.parse_simple(bytes(compressed[:20])) is None


def test_big_answers_truncate_over_udp_and_fit_over_tcp() -> None:
    subsets = [{"addresses": [{"ip": f"127.1.0.{i}"} for i in range(1, 61)], "ports": [{"port": 80}]}]
    snap = {"Service": [{"metadata": {"name": "big", "namespace": "default"}, "spec": {"clusterIP": "None"}}],
            "Endpoints": [{"metadata": {"name": "big", "namespace": "default"}, "subsets": subsets}]}
    h = Handler(records.build(snap, records.Options(), 1), config.ForwardConfig())
    q = dns.message.make_query("big.default.svc.cluster.local", "A").to_wire()
    udp = dns.message.from_wire(h.handle(q, False))  # type: ignore[arg-type]
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.message.from_wire(h.handle(q, True))  # type: ignore[arg-type]
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 60


def rcode_of(reply: object) -> int:
    assert isinstance(reply, bytes)
    return (reply[3] & 0x0F)


def test_odd_packets() -> None:
    h = handler()
    q = dns.message.make_query("web.default.svc.cluster.local", "A")
    assert h.handle(b"\x12", False) is None  # shorter than a header: dropped
    resp = dns.message.make_response(q).to_wire()
    assert h.handle(resp, False) is None  # responses are never answered
    notify = q.to_wire()
    notify = notify[:2] + bytes([notify[2] & 0x87 | (dns.opcode.NOTIFY << 3)]) + notify[3:]
    assert rcode_of(h.handle(notify, False)) == dns.rcode.NOTIMP
    two = bytearray(q.to_wire())
    two[5] = 2
    assert rcode_of(h.handle(bytes(two), False)) == dns.rcode.FORMERR
    huge = q.to_wire()[:12] + b"\x50" + b"a" * 80 + b"\x00\x00\x01\x00\x01"
    reply = h.handle(huge, False)
    assert rcode_of(reply) == dns.rcode.FORMERR and len(reply) == 12  # type: ignore[arg-type]
    chaos = dns.message.make_query("version.bind", "TXT", "CH").to_wire()
    assert rcode_of(h.handle(chaos, False)) == dns.rcode.REFUSED
    axfr = dns.message.make_query("cluster.local", "AXFR").to_wire()
    assert rcode_of(h.handle(axfr, False)) == dns.rcode.REFUSED
    v1 = dns.message.make_query("web.default.svc.cluster.local", "A", use_edns=1).to_wire()
    assert dns.message.from_wire(h.handle(v1, False)).rcode() == dns.rcode.BADVERS  # type: ignore[arg-type]
    out = h.handle(dns.message.make_query("example.com", "A").to_wire(), False)
    assert isinstance(out, Forward) and out.servers == (("127.53.0.1", 53),)
    assert h.relay(out, None)[3] & 0x0F == dns.rcode.SERVFAIL


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=600),
    st.tuples(st.integers(0, 599), st.binary(min_size=1, max_size=8)),
))
def test_handler_never_raises(data: object) -> None:
    h = HANDLER
    if isinstance(data, tuple):  # a valid query with some bytes overwritten
        base = bytearray(BASE)
        pos, patch = data
        pos %= len(base)
        base[pos : pos + len(patch)] = patch
        packet = bytes(base)
    else:
        packet = data  # type: ignore[assignment]
    for tcp in (False, True):
        out = h.handle(packet, tcp)
        if isinstance(out, bytes):
            assert out[:2] == packet[:2] and out[2] & 0x80
            if not tcp:
                assert len(out) <= max(512, len(packet) + 1232)


HANDLER = handler()
BASE = dns.message.make_query("_http._tcp.web.default.svc.cluster.local", "SRV", use_edns=0).to_wire()
assert struct.unpack("!H", BASE[4:6])[0] == 1


def test_only_loopback_clients_unless_allowed() -> None:
    from ipaddress import ip_network

    from kubesvc.dataplane.dns.handler import client_allowed

    assert client_allowed("127.0.0.1", ()) and client_allowed("127.9.8.7", ()) and client_allowed("::1", ())
    assert client_allowed("::ffff:127.0.0.1", ())
    assert not client_allowed("10.1.2.3", ()) and not client_allowed("fe80::1%eth0", ())
    assert client_allowed("10.1.2.3", (ip_network("10.0.0.0/8"),)) and not client_allowed("11.0.0.1", (ip_network("10.0.0.0/8"),))
