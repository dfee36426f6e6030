"""Malformed queries against a running `kubesvc dns`: random bytes, truncated packets, wrong opcodes, huge labels.

Each packet goes from one socket; a valid probe from a second socket follows it, so the server's answer to the
packet (if any) has been sent by the time the probe's answer arrives. Every reply must be a reply to that packet
(same ID, QR set) and no bigger than 512 bytes; the probe must always be answered (the server never dies)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.opcode
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dataplane.dns_fixtures import Cluster, Running, configmap, dns_server, upstream, write_resolv_conf

VALID = dns.message.make_query("kube-dns.kube-system.svc.cluster.local", "A").to_wire()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, socket.socket, socket.socket]]:
    tmp: Path = tmp_path_factory.mktemp("dnsfuzz")
    c = Cluster(str(tmp / "store.db"))
    fuzz = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with upstream() as up:  # out-of-zone names go to this loopback upstream (NXDOMAIN for all)
            c.apply(configmap({"upstreamNameservers": f'["{up.addr}"]'}))
            with dns_server(c.path, write_resolv_conf(tmp), "--upstream-timeout", "0.2") as s:
                fuzz.connect((s.host, s.port))
                probe.connect((s.host, s.port))
                probe.settimeout(5)
                yield s, fuzz, probe
    finally:
        fuzz.close()
        probe.close()
        c.close()


def exchange(target: tuple[Running, socket.socket, socket.socket], packet: bytes) -> list[bytes]:
    s, fuzz, probe = target
    fuzz.setblocking(False)
    while True:  # drain late (forwarded) replies from earlier packets
        try:
            fuzz.recv(65535)
        except BlockingIOError:
            break
    fuzz.send(packet)
    pid = struct.pack("!H", exchange.counter % 65536)  # type: ignore[attr-defined]
    exchange.counter += 1  # type: ignore[attr-defined]
    probe.send(pid + VALID[2:])
    while True:
        got = probe.recv(65535)  # raises on timeout: the server stopped answering
        if got[:2] == pid:
            break
    assert dns.message.from_wire(got).rcode() == dns.rcode.NOERROR
    replies = []
    while True:
        try:
            replies.append(fuzz.recv(65535))
        except BlockingIOError:
            return replies


exchange.counter = 1  # type: ignore[attr-defined]


SENT_IDS: set[bytes] = set()


def check(packet: bytes, replies: list[bytes]) -> None:
    SENT_IDS.add(packet[:2])
    for r in replies:  # forwarded names answer late: the ID may be an earlier packet's
        assert len(r) >= 12 and r[:2] in SENT_IDS and r[2] & 0x80, (packet, r)
        assert len(r) <= 512


def with_opcode(q: bytes, opcode: int) -> bytes:
    return q[:2] + bytes([q[2] & 0x87 | opcode << 3]) + q[3:]


def test_specific_malformed_packets(target: tuple[Running, socket.socket, socket.socket]) -> None:
    cases = {
        "empty": b"",
        "short": VALID[:5],
        "truncated question": VALID[:20],
        "huge label": VALID[:12] + b"\x3f" + b"a" * 63 + b"\x40" + b"b" * 64 + b"\x00\x00\x01\x00\x01",
        "long name": VALID[:12] + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01",
        "pointer loop": VALID[:12] + b"\xc0\x0c\x00\x01\x00\x01",
        "notify": with_opcode(VALID, dns.opcode.NOTIFY),
        "update": with_opcode(VALID, dns.opcode.UPDATE),
        "opcode 15": with_opcode(VALID, 15),
        "response": VALID[:2] + bytes([VALID[2] | 0x80]) + VALID[3:],
    }
    expected = {"empty": None, "short": None, "response": None, "truncated question": dns.rcode.FORMERR,
                "huge label": dns.rcode.FORMERR, "long name": dns.rcode.FORMERR, "pointer loop": dns.rcode.FORMERR,
                "notify": dns.rcode.NOTIMP, "update": dns.rcode.NOTIMP, "opcode 15": dns.rcode.NOTIMP}
    for name, packet in cases.items():
        replies = exchange(target, packet)
        check(packet, replies)
        assert all(r[:2] == packet[:2] for r in replies)
        want = expected[name]
        assert [r[3] & 0x0F for r in replies] == ([] if want is None else [want]), name


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.tuples(st.integers(0, 200), st.binary(min_size=1, max_size=6)).map(
        lambda t: (VALID[: t[0] % len(VALID)] + t[1] + VALID[t[0] % len(VALID) + len(t[1]) :])),
    st.binary(min_size=1, max_size=len(VALID)).map(lambda b: VALID[: len(b)]),
))
def test_fuzz_never_kills_the_server(target: tuple[Running, socket.socket, socket.socket], packet: bytes) -> None:
    check(packet, exchange(target, packet))
