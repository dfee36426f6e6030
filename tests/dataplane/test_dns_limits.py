"""What keeps `kubesvc dns` cheap to deny: bounded names before any parsing, receive buffers sized for bursts, and
TCP connections that are limited and time out without locking new clients out.

Work is shown bounded by counting (the bytes of the packet the handler reads), never by timing."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Iterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from kubesvc.dataplane.dns import records, wire
from kubesvc.dataplane.dns.config import ForwardConfig
from kubesvc.dataplane.dns.handler import Handler
from tests.dataplane.dns_fixtures import Cluster, Running, dig, dns_server, write_resolv_conf
from tests.support.procs import ready_fields

ZONE_NAME = "kube-dns.kube-system.svc.cluster.local"
VALID = dns.message.make_query(ZONE_NAME, "A").to_wire()
HEADER = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"  # ID 0x1234, RD, one question


def question(name_wire: bytes, ident: bytes = b"\x12\x34") -> bytes:
    return ident + HEADER[2:] + name_wire + b"\x00\x01\x00\x01"


def labels(*parts: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in parts) + b"\x00"


def with_options(q: bytes, n: int) -> bytes:
    """``q`` (no additional records) with an OPT record of ``n`` empty padding options."""
    return (q[:10] + b"\x00\x01" + q[12:] + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00"
            + struct.pack("!H", 4 * n) + b"\x00\x0c\x00\x00" * n)


ONE_BYTE_LABELS = b"\x01a" * 20_000 + b"\x00"  # 40 KB: 20,000 one-byte labels
DNS_VERSION = dns.message.make_query("dns-version.cluster.local", "TXT").to_wire()  # answered without a Service


class Counting(bytes):
    """A packet that counts how often the code under test reads from it (index or slice)."""

    reads = 0

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        Counting.reads += 1
        return bytes.__getitem__(self, key)


def handler() -> Handler:
    return Handler(records.build({}, records.Options(reverse_cidrs=("10.96.0.0/12",)), 1), ForwardConfig())


def reads(h: Handler, packet: bytes, tcp: bool = False) -> tuple[object, int]:
    Counting.reads = 0
    out = h.udp_fast(Counting(packet)) if not tcp else None
    if out is None:
        out = h.handle(Counting(packet), tcp)
    return out, Counting.reads


def is_formerr(reply: object, ident: bytes = b"\x12\x34") -> bool:
    return isinstance(reply, bytes) and len(reply) == 12 and reply[:2] == ident and reply[2] & 0x80 != 0 \
        and reply[3] & 0x0F == dns.rcode.FORMERR and reply[4:] == b"\x00" * 8


# ------------------------------------------------------------------------------------------ names, in-process


@pytest.mark.parametrize("tcp", [False, True])
def test_a_huge_name_is_refused_after_reading_a_bounded_part_of_it(tcp: bool) -> None:
    h = handler()
    small, n_small = reads(h, question(ONE_BYTE_LABELS))
    bigger, n_bigger = reads(h, question(b"\x01a" * 30_000 + b"\x00"), tcp)
    assert is_formerr(small) and is_formerr(bigger)
    # dnspython reads every label before it checks the length (20,000+ reads); the pre-check reads each byte of at
    # most 255 octets of name once, whatever the packet's size
    assert n_small <= 600 and n_bigger <= 600, (n_small, n_bigger)


def test_many_edns_options_are_refused_after_reading_a_bounded_part() -> None:
    many = with_options(DNS_VERSION, 16_000)  # dnspython parses them all: ~0.9 s of CPU
    reply, n = reads(handler(), many)
    assert is_formerr(reply, many[:2]) and n <= 600, n
    assert is_formerr(handler().handle(with_options(DNS_VERSION, wire.MAX_EDNS_OPTIONS + 1), False), many[:2])
    ok = handler().handle(with_options(DNS_VERSION, wire.MAX_EDNS_OPTIONS), False)  # up to the limit: answered
    assert isinstance(ok, bytes) and dns.message.from_wire(ok).rcode() == dns.rcode.NOERROR


def test_name_and_label_limits_are_rfc_1035s() -> None:
    h = handler()
    longest = labels("a" * 63, "b" * 63, "c" * 63, "d" * 47, "cluster", "local")  # 255 octets, 253 characters
    assert len(longest) == 255
    r = h.handle(question(longest), False)
    assert isinstance(r, bytes) and dns.message.from_wire(r).rcode() == dns.rcode.NXDOMAIN
    too_long = labels("a" * 63, "b" * 63, "c" * 63, "d" * 48, "cluster", "local")  # 256 octets
    assert is_formerr(h.handle(question(too_long), False))
    assert is_formerr(h.handle(question(labels("a" * 64, "cluster", "local")), False))
    assert wire.name_end(question(longest), 12) == 12 + 255
    assert wire.name_end(question(too_long), 12) == -1


def test_only_one_opt_record_may_follow_the_question() -> None:
    h = handler()
    q = dns.message.make_query("dns-version.cluster.local", "TXT")
    q.additional.append(dns.rrset.from_text("x.", 5, "IN", "A", "127.0.0.1"))
    w = q.to_wire()
    assert is_formerr(h.handle(w, False), w[:2])
    edns = dns.message.make_query("dns-version.cluster.local", "TXT", use_edns=0).to_wire()
    r = h.handle(edns, False)
    assert isinstance(r, bytes) and dns.message.from_wire(r).rcode() == dns.rcode.NOERROR
