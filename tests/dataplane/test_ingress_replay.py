"""The router's head caches (``Shared.request_heads`` and ``Pool.response_heads``, ``upstream.HeadCache``): a request or an answer
whose head was parsed before is replayed without the parser, and must come out byte for byte as the parsed path
makes it. The backend here writes each answer (head and body) in one ``sendall``, as nginx does, so the second
identical answer takes the replay path; its ``/split`` answers send the same head with the body a moment later.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dataplane import ingress_fixtures
from tests.dataplane.ingress_fixtures import Bed

shared_bed = ingress_fixtures.shared_bed  # the fixture

HEAD = (b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n"
        b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n")
CLIENT_HEAD = b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n"  # hop-by-hop gone


class OneWriteBackend(ingress_fixtures.HeadBackend):
    """Answers every request on a kept-alive connection with HEAD + an 8-byte body naming the path, in one write
    (``/split...``: the head, then the body 50 ms later). Records each request head it received."""

    def __init__(self, head: bytes = HEAD) -> None:
        self.head = head
        super().__init__()

    def answer(self, c: socket.socket, head: bytes) -> bool:  # the router sends bodyless GET/HEADs here
        method, path = head.split(b" ", 2)[:2]
        body = path.ljust(8, b".")[:8]
        if method == b"HEAD":
            c.sendall(self.head)
        elif path.startswith(b"/split"):
            c.sendall(self.head)
            time.sleep(0.05)
            c.sendall(body)
        else:
            c.sendall(self.head + body)
        return True

    def headers(self, i: int) -> dict[bytes, bytes]:
        lines = self.heads[i].split(b"\r\n")[1:]
        return {k.lower(): v for k, v in (line.split(b": ", 1) for line in lines)}



@pytest.fixture(scope="module")
def bed(shared_bed: Bed) -> Iterator[tuple[Bed, OneWriteBackend]]:
    be = OneWriteBackend()
    try:
        shared_bed.service("one-write", [("127.0.0.1", be.port)])
        shared_bed.ingress("replay", [("replay.test", [("/", "Prefix", "one-write")])])
        shared_bed.sync()
        yield shared_bed, be
    finally:
        be.stop()


def exchange(s: Any, request: bytes, expect: int) -> bytes:
    """Send one request, read exactly ``expect`` bytes of answer."""
    s.sendall(request)
    out = b""
    while len(out) < expect:
        d = s.recv(65536)
        if not d:
            break
        out += d
    return out


def test_repeated_requests_and_answers_come_out_exactly_as_parsed(bed: tuple[Bed, OneWriteBackend]) -> None:
    router, be = bed
    req = b"GET /same HTTP/1.1\r\nHost: replay.test\r\nUser-Agent: t\r\nConnection: keep-alive\r\n\r\n"
    want = CLIENT_HEAD + b"\r\n/same..."
    first = len(be.heads)
    for source in ("127.0.0.1", "127.0.0.2"):  # a second client address: the cached parse carries no client data
        with socket.create_connection(("127.0.0.1", router.http_port), timeout=5, source_address=(source, 0)) as s:
            for _ in range(3):  # the first is parsed, the others replayed (request and answer)
                assert exchange(s, req, len(want)) == want
    heads = be.heads[first:]
    assert len(heads) == 6
    ids = set()
    for i, head in enumerate(heads):
        h = be.headers(first + i)
        assert head.startswith(b"GET /same HTTP/1.1\r\n")
        assert h[b"host"] == b"replay.test" and h[b"user-agent"] == b"t" and b"connection" not in h
        assert h[b"x-real-ip"] == h[b"x-forwarded-for"] == (b"127.0.0.1" if i < 3 else b"127.0.0.2")
        assert h[b"x-forwarded-host"] == b"replay.test" and h[b"x-forwarded-proto"] == b"http"
        ids.add(h[b"x-request-id"])
    assert len(ids) == 6  # a fresh X-Request-ID for every replayed request


def test_replayed_head_with_other_bodies_head_requests_and_late_bodies(bed: tuple[Bed, OneWriteBackend]) -> None:
    router, _ = bed
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=5) as s:
        for path in (b"/a", b"/b", b"/c"):  # one cached head, three bodies
            want = CLIENT_HEAD + b"\r\n" + path.ljust(8, b".")
            assert exchange(s, b"GET %s HTTP/1.1\r\nHost: replay.test\r\n\r\n" % path, len(want)) == want
        # HEAD gets the head only, although the same head was cached with a body
        want = CLIENT_HEAD + b"\r\n"
        assert exchange(s, b"HEAD /a HTTP/1.1\r\nHost: replay.test\r\n\r\n", len(want)) == want
        # the cached head, with its body in a later segment: the parser path, same bytes out
        for _ in range(2):
            want = CLIENT_HEAD + b"\r\n/split.."
            assert exchange(s, b"GET /split HTTP/1.1\r\nHost: replay.test\r\n\r\n", len(want)) == want
        want = CLIENT_HEAD + b"\r\n/a......"
        assert exchange(s, b"GET /a HTTP/1.1\r\nHost: replay.test\r\n\r\n", len(want)) == want


def test_replayed_answers_follow_the_client_version_and_scheme(bed: tuple[Bed, OneWriteBackend]) -> None:
    router, _ = bed
    warm = CLIENT_HEAD + b"\r\n/v......"
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=5) as s:
        assert exchange(s, b"GET /v HTTP/1.1\r\nHost: replay.test\r\n\r\n", len(warm)) == warm
    for req, end in ((b"GET /v HTTP/1.0\r\nHost: replay.test\r\n\r\n", b"Connection: close\r\n\r\n"),
                     (b"GET /v HTTP/1.0\r\nHost: replay.test\r\nConnection: keep-alive\r\n\r\n", b"Connection: keep-alive\r\n\r\n"),
                     (b"GET /v HTTP/1.1\r\nHost: replay.test\r\nConnection: close\r\n\r\n", b"Connection: close\r\n\r\n")):
        for _ in range(2):
            assert router.raw(req) == CLIENT_HEAD + end + b"/v......"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    want = (b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: text/plain\r\n"
            b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\nContent-Length: 8\r\n\r\n/v......")
    with socket.create_connection(("127.0.0.1", router.https_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="replay.test") as s:
            for _ in range(2):
                assert exchange(s, b"GET /v HTTP/1.1\r\nHost: replay.test\r\n\r\n", len(want)) == want


def test_a_chunk_of_two_requests_is_not_taken_for_one(bed: tuple[Bed, OneWriteBackend]) -> None:
    router, be = bed
    pair = b"GET /p1 HTTP/1.1\r\nHost: replay.test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: replay.test\r\n\r\n"
    one = len(CLIENT_HEAD) + 2 + 8
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=5) as s:
        for _ in range(2):
            out = exchange(s, pair, 2 * one)
            assert out == CLIENT_HEAD + b"\r\n/p1....." + CLIENT_HEAD + b"\r\n/p2....."
    assert [h.split(b" ")[1] for h in be.heads[-4:]] == [b"/p1", b"/p2", b"/p1", b"/p2"]


def test_a_replayed_request_follows_rule_changes(bed: tuple[Bed, OneWriteBackend]) -> None:
    """The cache holds the parse, never the route: after the rule moves, the same bytes reach the new Service."""
    router, _ = bed
    router.ingress("replay-move", [("move.replay.test", [("/", "Prefix", "one-write")])])
    router.sync()
    req = b"GET /m HTTP/1.1\r\nHost: move.replay.test\r\n\r\n"
    want = CLIENT_HEAD + b"\r\n/m......"
    with socket.create_connection(("127.0.0.1", router.http_port), timeout=5) as s:
        for _ in range(2):
            assert exchange(s, req, len(want)) == want
        router.ingress("replay-move", [("move.replay.test", [("/", "Prefix", "svc-c")])])
        router.sync()
        s.sendall(req)
        got = b""
        while b'"name": "c"' not in got:
            d = s.recv(65536)
            assert d, got
            got += d
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")


def test_answers_without_a_server_header_get_one_parsed_and_replayed(shared_bed: Bed) -> None:
    """ingress-controller-conformance features/default_backend.feature: "the response headers must contain" ``Server``
    (ingress-nginx always answers with ``Server: nginx``). A backend's own ``Server`` stays (the tests above:
    ``Server: t``); without one the router adds ``Server: kubesvc-ingress``, on the parsed path, the replayed one
    (head cache) and its own answers."""
    be = OneWriteBackend(HEAD.replace(b"Server: t\r\n", b""))
    try:
        shared_bed.service("no-server", [("127.0.0.1", be.port)])
        shared_bed.ingress("no-server", [("no-server.test", [("/", "Prefix", "no-server")])])
        shared_bed.sync()
        want = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: kubesvc-ingress\r\nContent-Length: 8\r\n"
                b"\r\n/ns.....")
        with socket.create_connection(("127.0.0.1", shared_bed.http_port), timeout=5) as s:
            for _ in range(3):  # parsed, then replayed from the head cache
                assert exchange(s, b"GET /ns HTTP/1.1\r\nHost: no-server.test\r\n\r\n", len(want)) == want
            for _ in range(2):  # the body in a later segment: the parser path, same bytes
                want = want.replace(b"/ns.....", b"/split..")
                assert exchange(s, b"GET /split HTTP/1.1\r\nHost: no-server.test\r\n\r\n", len(want)) == want
        status, headers, _ = shared_bed.request("GET", "/", host="nobody.no-server.test")
        assert status == 404 and headers["server"] == "kubesvc-ingress"
    finally:
        be.stop()
