"""`kubesvc ingress` end to end over real sockets: routing, errors, headers, bodies, WebSocket, live changes,
slow and malformed clients. Clients: http.client, curl and raw sockets. One router per module (shared_bed)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dataplane import ingress_fixtures
from tests.dataplane.ingress_fixtures import Bed, free_port
from tests.dataplane.test_ingress_routes import DOCS_TABLE, row_id
from tests.support.procs import wait_for

shared_bed = ingress_fixtures.shared_bed  # the fixture


@pytest.fixture(scope="module")
def table_bed(shared_bed: Bed) -> Bed:
    """Every row of the docs table as its own host: row path i goes to svc-a/b/c (p0/p1/p2)."""
    for i, (kind, paths, _, _) in enumerate(DOCS_TABLE):
        svc = {"p0": "svc-a", "p1": "svc-b", "p2": "svc-c"}
        shared_bed.ingress(f"row{i}", [(f"row{i}.table.test", [(p, kind, svc[f"p{j}"]) for j, p in enumerate(paths)])])
    shared_bed.ingress("mixed", [("mixed.table.test", [("/foo", "Prefix", "svc-a"), ("/foo", "Exact", "svc-b")])])
    shared_bed.sync()
    return shared_bed


@pytest.mark.parametrize("i", range(len(DOCS_TABLE)), ids=[row_id(r) for r in DOCS_TABLE])
def test_docs_table_through_the_router(table_bed: Bed, i: int) -> None:
    _, _, path, expected = DOCS_TABLE[i]
    want = {"p0": "a", "p1": "b", "p2": "c", None: "404"}[expected]
    assert table_bed.who(f"row{i}.table.test", path) == want


def test_exact_beats_prefix_through_the_router_with_curl(table_bed: Bed) -> None:
    port = table_bed.http_port
    r = table_bed.curl("--resolve", f"mixed.table.test:{port}:127.0.0.1", f"http://mixed.table.test:{port}/foo")
    assert json.loads(r.stdout)["name"] == "b"
    r = table_bed.curl("--resolve", f"mixed.table.test:{port}:127.0.0.1", f"http://mixed.table.test:{port}/foo/x")
    assert json.loads(r.stdout)["name"] == "a"


def test_wildcard_hosts_and_plain_404(shared_bed: Bed) -> None:
    shared_bed.ingress("wild", [("*.wild.test", [("/", "Prefix", "svc-a")]), ("x.wild.test", [("/", "Prefix", "svc-b")])])
    shared_bed.sync()
    assert shared_bed.who("bar.wild.test", "/") == "a"
    assert shared_bed.who("x.wild.test", "/") == "b"
    assert shared_bed.who("X.Wild.Test:1234", "/") == "b"
    assert shared_bed.who("a.bar.wild.test", "/") == "404"
    assert shared_bed.who("wild.test", "/") == "404"
    status, headers, body = shared_bed.request("GET", "/", host="nobody.test")
    assert status == 404 and b"404 Not Found" in body and headers["content-type"] == "text/html"


def test_path_is_passed_unchanged_with_query(shared_bed: Bed) -> None:
    shared_bed.ingress("pass", [("pass.test", [("/api", "Prefix", "svc-a")])])
    shared_bed.sync()
    status, _, body = shared_bed.request("GET", "/api/v1/x?q=1&r=%20", host="pass.test")
    assert status == 200 and json.loads(body)["path"] == "/api/v1/x?q=1&r=%20"


def test_503_without_ready_endpoints_or_service(shared_bed: Bed) -> None:
    shared_bed.service("empty", [])
    shared_bed.ingress("e503", [("e503.test", [("/empty", "Prefix", "empty"), ("/missing", "Prefix", "no-such-svc")])])
    shared_bed.ingress("e503b", [("e503b.test", [("/", "Prefix", "svc-a")])], port=81)  # no such service port
    shared_bed.sync()
    assert shared_bed.request("GET", "/empty", host="e503.test")[0] == 503
    assert shared_bed.request("GET", "/missing", host="e503.test")[0] == 503
    assert shared_bed.request("GET", "/", host="e503b.test")[0] == 503


def test_502_when_refused_or_broken_and_504_on_timeout(shared_bed: Bed) -> None:
    shared_bed.service("dead", [("127.0.0.1", free_port())])
    shared_bed.ingress("e502", [("e502.test", [("/", "Prefix", "dead")]), ("e50x.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    assert shared_bed.request("GET", "/", host="e502.test")[0] == 502
    assert shared_bed.request("GET", "/close", host="e50x.test")[0] == 502
    assert shared_bed.request("GET", "/sleep/3", host="e50x.test")[0] == 504
    assert shared_bed.request("GET", "/ok", host="e50x.test")[0] == 200  # still serving


def test_round_robin_and_retry_past_a_dead_endpoint(shared_bed: Bed) -> None:
    b1, b2 = shared_bed.backend("rr1"), shared_bed.backend("rr2")
    shared_bed.service("rr", [(b1.host, b1.port), (b2.host, b2.port), ("127.0.0.1", free_port())])
    shared_bed.ingress("rr", [("rr.test", [("/", "Prefix", "rr")])])
    shared_bed.sync()
    seen = [shared_bed.who("rr.test", f"/{i}") for i in range(12)]
    assert set(seen) == {"rr1", "rr2"}  # never a 502: a refused dial moves on to the next endpoint


def test_headers_added_and_hop_by_hop_removed(shared_bed: Bed) -> None:
    shared_bed.ingress("hdr", [("hdr.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    status, _, body = shared_bed.request("GET", "/x", host="hdr.test:8080", headers={
        "Connection": "keep-alive, X-Secret", "X-Secret": "1", "Keep-Alive": "300", "TE": "trailers", "Proxy": "http://evil",
        "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6", "Upgrade": "h2c", "User-Agent": "t/1"})
    h = json.loads(body)["headers"]
    assert status == 200
    for gone in ("x-secret", "keep-alive", "te", "proxy", "upgrade"):
        assert gone not in h, gone
    assert h["host"] == "hdr.test:8080"
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-real-ip"] == "127.0.0.1"
    assert h["x-original-forwarded-for"] == "6.6.6.6"
    assert h["x-forwarded-host"] == "hdr.test:8080"
    assert h["x-forwarded-port"] == str(shared_bed.http_port)
    assert h["x-forwarded-proto"] == "http" and h["x-scheme"] == "http"
    assert len(h["x-request-id"]) == 32 and set(h["x-request-id"]) <= set("0123456789abcdef") and h["user-agent"] == "t/1"
    _, _, body = shared_bed.request("GET", "/x", host="hdr.test", headers={"X-Request-ID": "abc-123"})
    assert json.loads(body)["headers"]["x-request-id"] == "abc-123"
    status, headers, _ = shared_bed.request("GET", "/hop", host="hdr.test")
    assert status == 200 and "x-drop" not in headers and "keep-alive" not in headers and headers["x-keep"] == "1"


def test_keep_alive_head_and_pipelining(shared_bed: Bed) -> None:
    shared_bed.ingress("ka", [("ka.test", [("/", "Prefix", "svc-b")])])
    shared_bed.sync()
    c = shared_bed.conn()
    try:
        socks = set()
        for method in ("GET", "HEAD", "POST", "GET", "HEAD", "DELETE"):
            c.request(method, "/k", body=b"x" * 10 if method == "POST" else None, headers={"Host": "ka.test"})
            r = c.getresponse()
            body = r.read()
            assert r.status == 200 and (body == b"" if method == "HEAD" else json.loads(body)["method"] == method)
            socks.add(id(c.sock))
        assert len(socks) == 1  # one client connection for all of them
    finally:
        c.close()
    req = b"GET /one HTTP/1.1\r\nHost: ka.test\r\n\r\nGET /two HTTP/1.1\r\nHost: ka.test\r\nConnection: close\r\n\r\n"
    out = shared_bed.raw(req)
    assert out.count(b"HTTP/1.1 200") == 2 and out.index(b'"/one"') < out.index(b'"/two"')


def test_body_limit_413_and_header_limits(shared_bed: Bed) -> None:
    shared_bed.ingress("lim", [("lim.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    assert shared_bed.request("POST", "/up", host="lim.test", body=b"x" * (1024 * 1024 + 1))[0] == 413
    out = shared_bed.raw(b"POST /up HTTP/1.1\r\nHost: lim.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 2 + b"0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413")
    status, _, body = shared_bed.request("POST", "/up", host="lim.test", body=b"x" * 1000)
    assert status == 200 and json.loads(body)["body_bytes"] == 1000
    assert shared_bed.request("GET", "/", host="lim.test", headers={"X-Big": "y" * 9000})[0] == 431
    assert shared_bed.request("GET", "/", host="lim.test", headers={f"X-H{i}": "y" * 1000 for i in range(40)})[0] == 431
    assert shared_bed.request("GET", "/" + "a" * 9000, host="lim.test")[0] == 414


@pytest.mark.parametrize("host", [b"mal.test", b"mal.test:80", b"MAL.test.:65535", b"mal.test:", b"[::1]:8080", b"127.0.0.1"])
def test_valid_host_forms_are_routed(shared_bed: Bed, host: bytes) -> None:
    shared_bed.ingress("mal", [("mal.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    out = shared_bed.raw(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
    assert out.split(b" ")[1] in (b"200", b"404"), out[:200]
    assert (out.split(b" ")[1] == b"200") == host.lower().startswith(b"mal.test"), out[:200]


@pytest.mark.parametrize("data,status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
    (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: mal.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: mal.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: mal.test\r\nContent-Length: -1\r\n\r\n", b"400"),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", b"405"),
    (b"GET / HTTP/1.1\r\nHost: mal.test:99999\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: mal.test:0\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: mal.test:8o\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: mal.test:80:80\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: mal.test/x\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: u@mal.test\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: mal..test\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", b"400"),
    (b"GET http://mal.test:99999/ HTTP/1.1\r\nHost: mal.test\r\n\r\n", b"400"),
])
def test_malformed_requests_get_4xx(shared_bed: Bed, data: bytes, status: bytes) -> None:
    shared_bed.ingress("mal", [("mal.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    out = shared_bed.raw(data)
    assert out.split(b" ")[1] == status, out[:200]
    assert shared_bed.request("GET", "/", host="nobody.test")[0] == 404  # the router is still there


def test_chunked_upload_and_streamed_download_of_200_mb(shared_bed: Bed) -> None:
    total = 200 * 1024 * 1024
    shared_bed.ingress("big", [("big.test", [("/", "Prefix", "svc-c")])],
                       annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "0"})
    shared_bed.sync()
    port = shared_bed.http_port
    r = shared_bed.curl("--resolve", f"big.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        f"http://big.test:{port}/stream/{total}", timeout=60)
    assert r.stdout == f"200 {total}", r.stderr
    piece = b"y" * (1024 * 1024)

    def gen() -> Iterator[bytes]:
        for _ in range(200):
            yield piece

    status, _, body = shared_bed.request("POST", "/upload", host="big.test", body=gen(),
                                         headers={"Transfer-Encoding": "chunked"}, timeout=60, chunked=True)
    reply = json.loads(body)
    assert status == 200 and reply["body_bytes"] == total and reply["chunked"] is True
    assert shared_bed.rss_peak_kib() < 150 * 1024  # 400 MB went through; nothing was held whole


def test_websocket_echo(shared_bed: Bed) -> None:
    from websockets.sync.client import connect
    from websockets.sync.server import serve

    def echo(ws: Any) -> None:
        for msg in ws:
            ws.send(msg)

    with serve(echo, "127.0.0.1", 0) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        try:
            port = server.socket.getsockname()[1]
            shared_bed.service("ws", [("127.0.0.1", port)])
            shared_bed.ingress("ws", [("ws.test", [("/", "Prefix", "ws")])])
            shared_bed.sync()
            sock = socket.create_connection(("127.0.0.1", shared_bed.http_port), timeout=5)
            with connect("ws://ws.test/chat", sock=sock, open_timeout=5) as ws:
                for msg in ("hello", "x" * 100_000, b"\x00\x01binary"):
                    ws.send(msg)
                    assert ws.recv(timeout=5) == msg
        finally:
            server.shutdown()
            t.join(5)


def test_live_rule_changes_while_a_client_keeps_sending(shared_bed: Bed) -> None:
    shared_bed.ingress("live", [("live.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    results: list[Any] = []
    stop = threading.Event()

    def client() -> None:
        c = shared_bed.conn()
        try:
            for _ in range(5000):
                if stop.is_set():
                    break
                c.request("GET", "/live", headers={"Host": "live.test"})
                r = c.getresponse()
                body = r.read()
                results.append(json.loads(body)["name"] if r.status == 200 else r.status)
        except (OSError, http.client.HTTPException) as e:
            results.append(repr(e))
        finally:
            c.close()

    t = threading.Thread(target=client)
    t.start()
    try:
        wait_for(lambda: len(results) > 20, timeout=10, what="traffic")
        shared_bed.ingress("live", [("live.test", [("/", "Prefix", "svc-b")])])
        wait_for(lambda: results[-1] == "b", timeout=10, what="new backend")
        shared_bed.ingress("live", [("live.test", [("/", "Prefix", "svc-a"), ("/live", "Exact", "svc-c")])])
        wait_for(lambda: results[-1] == "c", timeout=10, what="new path")
    finally:
        stop.set()
        t.join(15)
    assert set(results) == {"a", "b", "c"}, [r for r in results if r not in ("a", "b", "c")][:5]
    i_b, i_c = results.index("b"), results.index("c")
    assert "a" not in results[i_b:i_c] and set(results[i_c:]) == {"c"}


def test_slowloris_is_cut_off_while_others_are_served(shared_bed: Bed) -> None:
    shared_bed.ingress("slow", [("slow.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    s = socket.create_connection(("127.0.0.1", shared_bed.http_port), timeout=10)
    try:
        head = b"GET / HTTP/1.1\r\nHost: slow.test\r\nX-A: " + b"a" * 200
        closed_after = None
        served = 0
        deadline = time.monotonic() + 15
        for byte in head:
            try:
                s.send(bytes([byte]))
            except OSError:
                closed_after = time.monotonic()
                break
            assert shared_bed.who("slow.test", "/fast") == "a"
            served += 1
            s.settimeout(0.3)
            try:
                got = s.recv(4096)
                closed_after = time.monotonic()
                assert got == b"" or got.startswith(b"HTTP/1.1 408")
                break
            except TimeoutError:
                pass
            assert time.monotonic() < deadline, "slow client never cut off"
        assert closed_after is not None and served > 2
    finally:
        s.close()


def test_access_log_lines(shared_bed: Bed) -> None:
    shared_bed.ingress("log", [("log.test", [("/", "Prefix", "svc-a")])])
    shared_bed.sync()
    shared_bed.request("GET", "/logged?x=1", host="log.test", headers={"User-Agent": "logtest/1", "X-Request-ID": "rid-42"})

    def line() -> str:
        with open(shared_bed.access_log) as f:
            return next((ln for ln in f if "rid-42" in ln), "")

    ln = wait_for(line, timeout=5, what="access log line")
    assert '"GET /logged?x=1 HTTP/1.1" 200 ' in ln and '"logtest/1"' in ln and "[default-svc-a-80]" in ln
    assert ln.startswith("127.0.0.1 - - [")


def test_expect_100_continue_and_http_1_0_clients(shared_bed: Bed, tmp_path: Any) -> None:
    shared_bed.ingress("old", [("old.test", [("/", "Prefix", "svc-c")])], annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "0"})
    shared_bed.sync()
    port = shared_bed.http_port
    body = tmp_path / "2mb"
    body.write_bytes(b"z" * 2_000_000)
    r = shared_bed.curl("-v", "--resolve", f"old.test:{port}:127.0.0.1", "--data-binary", f"@{body}", f"http://old.test:{port}/up")
    assert "HTTP/1.1 100 Continue" in r.stderr and json.loads(r.stdout)["body_bytes"] == 2_000_000
    # HTTP/1.0: a body of unknown length is sent close-delimited (no chunking), then the connection closes
    out = shared_bed.raw(b"GET /stream/300000 HTTP/1.0\r\nHost: old.test\r\n\r\n", timeout=10)
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" not in head.lower() and rest == b"x" * 300000


def test_the_router_s_own_answers_keep_the_connection_alive(shared_bed: Bed) -> None:
    """A 404 (no rule), a 308 (https redirect) or a 503 from the router keeps a kept-alive connection open, as nginx
    does, whether the request head is new (parsed) or a repeat (replayed); a request with a body the router did not
    read still closes it."""
    shared_bed.ingress("own", [("own.test", [("/", "Prefix", "no-such-svc")])])
    shared_bed.sync()
    c = shared_bed.conn()
    try:
        socks = set()
        for i in range(6):  # new heads and repeated ones, both paths
            path = f"/n{i // 2}"
            for host, want in (("nobody-here.test", 404), ("own.test", 503)):
                c.request("GET", path, headers={"Host": host})
                r = c.getresponse()
                r.read()
                assert r.status == want and r.getheader("Connection") != "close", (host, path, r.status, r.getheaders())
                socks.add(id(c.sock))
        assert len(socks) == 1
    finally:
        c.close()
    out = shared_bed.raw(b"POST /x HTTP/1.1\r\nHost: nobody-here.test\r\nContent-Length: 5\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404") and b"Connection: close" in out, out[:300]
