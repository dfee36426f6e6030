"""The API server's transport under hostile clients, over raw sockets on loopback: body framing and the body limit
for every transfer coding, authentication before the body, header/idle timeouts, the connection, watch and header
limits, no thread per connection, watches woken by one store probe, a future resourceVersion. Every refusal is a
``kind: Status``; refusals with a body pending close the connection without reading the body.

The servers run in-process (``ApiServer.start()``) so the tests can count threads and the watch hub's store reads.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kubesvc.apiserver.server import ApiServer, Limits
from kubesvc.errors import ClientError
from kubesvc.store.db import Store

# ------------------------------------------------------------------------------------------------ helpers


@contextmanager
def serving(tmp_path: Path, **kw: Any) -> Iterator[ApiServer]:
    """An in-process API server on 127.0.0.1:<free port>, stopped on exit."""
    if "token" not in kw and "ssl_context" not in kw:
        kw.setdefault("insecure", True)
    srv = ApiServer(str(tmp_path / "store.db"), port=0, **kw).start()
    try:
        yield srv
    finally:
        srv.stop()


def port_of(srv: ApiServer) -> int:
    return int(srv.address.rsplit(":", 1)[1])


class Conn:
    """A raw HTTP/1.1 client connection with its own read buffer."""

    def __init__(self, srv: ApiServer, timeout: float = 10, sock: socket.socket | None = None) -> None:
        self.host = srv.address
        self.sock = sock or socket.create_connection(("127.0.0.1", port_of(srv)), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                host: str | None = None) -> None:
        hdrs = {"Host": host or self.host, **(headers or {})}
        if body is not None and "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.send(head.encode() + (body or b""))

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed inside a line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("closed inside a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self) -> tuple[int, dict[str, str]]:
        status = self._line()
        headers = {}
        while (line := self._line()) != b"":
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(status.split()[1]), headers

    def chunk(self) -> bytes | None:
        """The next chunk of a chunked body; None at the last chunk."""
        size = int(self._line(), 16)
        if size == 0:
            self._line()
            return None
        data = self._exactly(size)
        self._line()
        return data

    def response(self) -> tuple[int, dict[str, str], Any]:
        code, headers = self.head()
        if headers.get("transfer-encoding") == "chunked":
            parts = []
            while (c := self.chunk()) is not None:
                parts.append(c)
            raw = b"".join(parts)
        else:
            raw = self._exactly(int(headers.get("content-length", "0")))
        try:
            return code, headers, json.loads(raw)
        except ValueError:
            return code, headers, raw

    def closed_by_server(self) -> bool:
        """True when the server closed the connection (EOF or reset); a hang fails on the socket timeout."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def assert_status(resp: tuple[int, dict[str, str], Any], code: int, reason: str) -> dict[str, Any]:
    got, headers, body = resp
    assert isinstance(body, dict), body
    assert (got, body.get("kind"), body.get("code"), body.get("reason")) == (code, "Status", code, reason), body
    assert headers["content-type"] == "application/json"
    return body


def svc_body(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                       "spec": {"ports": [{"port": 80}]}}).encode()


def revision(srv: ApiServer) -> int:
    with Store(srv.store_path) as s:
        return s.revision()


SVC = "/api/v1/namespaces/default/services"
JSON_CT = {"Content-Type": "application/json"}

# ---------------------------------------------------------------------------------------- body framing

BAD_FRAMING = [
    ("chunk size -1", {"Transfer-Encoding": "chunked"}, b"-1\r\n", 400, "BadRequest"),
    ("chunk size 0x10", {"Transfer-Encoding": "chunked"}, b"0x10\r\n", 400, "BadRequest"),
    ("chunk size with underscore", {"Transfer-Encoding": "chunked"}, b"1_0\r\n", 400, "BadRequest"),
    ("chunk size with a sign", {"Transfer-Encoding": "chunked"}, b"+5\r\n", 400, "BadRequest"),
    ("non-hex chunk size", {"Transfer-Encoding": "chunked"}, b"zz\r\n", 400, "BadRequest"),
    ("empty chunk size", {"Transfer-Encoding": "chunked"}, b"\r\n", 400, "BadRequest"),
    ("chunk over the limit", {"Transfer-Encoding": "chunked"}, b"FFFFFFFF\r\n", 413, "RequestEntityTooLarge"),
    ("chunk without CRLF", {"Transfer-Encoding": "chunked"}, b"2\r\n{}XX", 400, "BadRequest"),
    ("Content-Length abc", {"Content-Length": "abc"}, b"", 400, "BadRequest"),
    ("negative Content-Length", {"Content-Length": "-5"}, b"", 400, "BadRequest"),
    ("Content-Length with a sign", {"Content-Length": "+5"}, b"", 400, "BadRequest"),
    ("Content-Length over the limit", {"Content-Length": str(4 * 1024 * 1024)}, b"", 413, "RequestEntityTooLarge"),
    ("Content-Length and Transfer-Encoding", {"Content-Length": "2", "Transfer-Encoding": "chunked"}, b"{}", 400,
     "BadRequest"),
    ("Transfer-Encoding gzip", {"Transfer-Encoding": "gzip, chunked"}, b"", 400, "BadRequest"),
]


@pytest.mark.parametrize("what,headers,data,code,reason", BAD_FRAMING, ids=[b[0] for b in BAD_FRAMING])
def test_bad_framing_is_refused_and_the_connection_closed(tmp_path: Path, what: str, headers: dict[str, str],
                                                          data: bytes, code: int, reason: str) -> None:
    with serving(tmp_path) as srv, Conn(srv) as c:
        before = revision(srv)
        c.request("POST", SVC, data, {**JSON_CT, **headers})
        assert_status(c.response(), code, reason)
        assert c.closed_by_server()
        assert revision(srv) == before


def test_duplicate_content_lengths(tmp_path: Path) -> None:
    body = svc_body("dup")
    with serving(tmp_path) as srv:
        with Conn(srv) as c:  # differing: refused
            c.send(f"POST {SVC} HTTP/1.1\r\nHost: {c.host}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nContent-Length: {len(body) + 1}\r\n\r\n".encode() + body)
            assert_status(c.response(), 400, "BadRequest")
            assert c.closed_by_server()
        with Conn(srv) as c:  # identical: one length, as Go reads it
            c.send(f"POST {SVC} HTTP/1.1\r\nHost: {c.host}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            assert c.response()[0] == 201


def test_chunked_sizes_summing_past_the_limit_are_refused_before_the_chunk_is_read(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(max_body_bytes=64 * 1024)) as srv, Conn(srv) as c:
        before = revision(srv)
        c.request("POST", SVC, None, {**JSON_CT, "Transfer-Encoding": "chunked"})
        c.send(b"8000\r\n" + b" " * 0x8000 + b"\r\n")  # 32 KiB: within the limit
        c.send(b"8001\r\n")  # 32 KiB + 1 more: over it, answered from the size line alone
        assert_status(c.response(), 413, "RequestEntityTooLarge")
        assert c.closed_by_server()
        assert revision(srv) == before


def test_a_valid_chunked_body_with_extensions_and_trailers(tmp_path: Path) -> None:
    body = svc_body("chunky")
    with serving(tmp_path) as srv, Conn(srv) as c:
        c.request("POST", SVC, None, {**JSON_CT, "Transfer-Encoding": "chunked"})
        c.send(b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]))
        code, _, obj = c.response()
        assert code == 201 and obj["metadata"]["name"] == "chunky"
        c.request("GET", "/version")  # the connection is still in step
        assert c.response()[0] == 200


def test_a_refused_body_is_never_read_to_its_end(tmp_path: Path) -> None:
    """After a refusal the server reads at most a bounded amount more, then closes: a client still sending
    runs into a closed connection long before its 64 MiB are out."""
    with serving(tmp_path) as srv, Conn(srv) as c:
        c.request("POST", SVC, None, {**JSON_CT, "Transfer-Encoding": "chunked"})
        c.send(b"-1\r\n")
        assert_status(c.response(), 400, "BadRequest")
        block = b"x" * (1024 * 1024)
        sent = 0
        with pytest.raises(OSError):
            while sent < 64 * len(block):
                c.send(block)
                sent += len(block)
        assert sent < 64 * len(block)


def test_status_for_a_malformed_head(tmp_path: Path) -> None:
    with serving(tmp_path) as srv:
        for raw in (b"GET /version HTTP/1.1\r\nHost : x\r\n\r\n",  # space before the colon
                    b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n folded\r\n\r\n",  # obs-fold
                    b"GET /version HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
                    b"GET http://127.0.0.1/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
            with Conn(srv) as c:
                c.send(raw)
                assert_status(c.response(), 400, "BadRequest")
                assert c.closed_by_server()

# -------------------------------------------------------------------------------- authentication first


def test_the_token_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    with serving(tmp_path, token="s3cret") as srv:
        with Conn(srv) as c:  # a 1 MiB body announced, none sent: the 401 comes from the head alone
            c.request("POST", SVC, None, {**JSON_CT, "Content-Length": str(1024 * 1024)})
            body = assert_status(c.response(), 401, "Unauthorized")
            assert body["message"] == "Unauthorized"
            assert c.closed_by_server()
        with Conn(srv) as c:
            c.request("POST", SVC, None, {**JSON_CT, "Transfer-Encoding": "chunked", "Authorization": "Bearer nope"})
            assert_status(c.response(), 401, "Unauthorized")
            assert c.closed_by_server()
        with Conn(srv) as c:  # no body pending: the connection stays open
            c.request("GET", "/version")
            assert_status(c.response(), 401, "Unauthorized")
            c.request("GET", "/version", headers={"Authorization": "Bearer s3cret"})
            assert c.response()[0] == 200
            c.request("POST", SVC, svc_body("tok"), {**JSON_CT, "Authorization": "Bearer s3cret"})
            assert c.response()[0] == 201


def test_no_credential_needs_the_explicit_insecure_opt_out(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="without authentication"):
        ApiServer(str(tmp_path / "store.db"), port=0)
    with pytest.raises(ClientError, match="non-loopback"):
        ApiServer(str(tmp_path / "store.db"), host="0.0.0.0", port=0, insecure=True)
    with pytest.raises(ClientError, match="header-timeout"):
        Limits(header_timeout=0)

# ------------------------------------------------------------------------------------------ content type


def test_a_body_needs_a_content_type_without_a_credential(tmp_path: Path) -> None:
    with serving(tmp_path) as srv, Conn(srv) as c:  # --insecure-plain-http: no credential
        before = revision(srv)
        c.request("POST", SVC, svc_body("noct"))
        assert_status(c.response(), 415, "UnsupportedMediaType")
        assert c.closed_by_server()
        assert revision(srv) == before
    with serving(tmp_path, token="t") as srv:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            with Conn(srv) as c:
                c.request("POST", SVC, svc_body("form"), {"Content-Type": ctype, "Authorization": "Bearer t"})
                assert_status(c.response(), 415, "UnsupportedMediaType")
        with Conn(srv) as c:  # with a credential a body without Content-Type is JSON (the Python client's way)
            c.request("POST", SVC, svc_body("json"), {"Authorization": "Bearer t"})
            assert c.response()[0] == 201
            c.request("PUT", SVC + "/json", b"{}", {"Authorization": "Bearer t", "Content-Type": "application/json"})
            assert c.response()[0] == 400  # the body is read and judged by the handler, not the transport

# ------------------------------------------------------------------------------------------ head limits


def test_header_size_and_count_limits(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(max_header_bytes=4096, max_headers=20)) as srv:
        with Conn(srv) as c:
            c.request("GET", "/version", headers={"X-Big": "a" * 5000})
            assert_status(c.response(), 431, "RequestHeaderFieldsTooLarge")
            assert c.closed_by_server()
        with Conn(srv) as c:
            c.request("GET", "/version", headers={f"X-H{i}": "1" for i in range(21)})
            assert_status(c.response(), 431, "RequestHeaderFieldsTooLarge")
            assert c.closed_by_server()
        with Conn(srv) as c:
            c.request("GET", "/version", headers={f"X-H{i}": "1" for i in range(19)})
            assert c.response()[0] == 200

# --------------------------------------------------------------------------------------------- timeouts


def test_a_half_sent_head_is_dropped_after_the_header_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(header_timeout=0.3)) as srv:
        conns = [Conn(srv) for _ in range(20)]
        try:
            for c in conns:
                c.send(f"GET /version HTTP/1.1\r\nHost: {c.host}\r\nX-Slow: ".encode())
            for c in conns:
                assert_status(c.response(), 408, "Timeout")
                assert c.closed_by_server()
        finally:
            for c in conns:
                c.close()
        with Conn(srv) as c:  # a slow head after a first request is held to the header timeout too
            c.request("GET", "/version")
            assert c.response()[0] == 200
            c.send(b"GET /version HTTP/1.1\r\n")
            assert_status(c.response(), 408, "Timeout")
            assert c.closed_by_server()
        with Conn(srv) as c:  # a connection that never says a word is just closed
            assert c.closed_by_server()


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(idle_timeout=0.3, header_timeout=5)) as srv, Conn(srv) as c:
        c.request("GET", "/version")
        assert c.response()[0] == 200
        assert c.closed_by_server()
        assert srv.counters.connections == 0 or _eventually(lambda: srv.counters.connections == 0)


def test_a_slow_body_is_dropped_with_a_status(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(body_timeout=0.3)) as srv, Conn(srv) as c:
        c.request("POST", SVC, None, {**JSON_CT, "Content-Length": "100"})
        c.send(b"{")
        assert_status(c.response(), 408, "Timeout")
        assert c.closed_by_server()


def _eventually(cond: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False

# ---------------------------------------------------------------------------------------- count limits


def test_connection_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(max_connections=5)) as srv:
        conns = [Conn(srv) for _ in range(5)]
        try:
            for c in conns:  # each one served, so each one counted
                c.request("GET", "/version")
                assert c.response()[0] == 200
            with Conn(srv) as extra:
                code, headers, body = extra.response()
                assert_status((code, headers, body), 429, "TooManyRequests")
                assert headers["retry-after"] == "1" and body["details"]["retryAfterSeconds"] == 1
                assert extra.closed_by_server()
        finally:
            for c in conns:
                c.close()
        assert _eventually(lambda: srv.counters.connections == 0)
        with Conn(srv) as c:  # room again
            c.request("GET", "/version")
            assert c.response()[0] == 200


def _open_watch(srv: ApiServer, path: str = SVC + "?watch=true&timeoutSeconds=600") -> Conn:
    c = Conn(srv, timeout=20)
    c.request("GET", path)
    code, headers = c.head()
    assert code == 200 and headers["transfer-encoding"] == "chunked"
    return c


def test_watch_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    with serving(tmp_path, limits=Limits(max_watches=2)) as srv:
        watches = [_open_watch(srv) for _ in range(2)]
        try:
            with Conn(srv) as c:
                c.request("GET", SVC + "?watch=true")
                code, headers, body = c.response()
                assert_status((code, headers, body), 429, "TooManyRequests")
                assert headers["retry-after"] == "1"
                c.request("GET", SVC)  # lists are not watches
                assert c.response()[0] == 200
        finally:
            for w in watches:
                w.close()
        assert _eventually(lambda: srv.counters.watches == 0)
        _open_watch(srv).close()

# ------------------------------------------------------------------------------- threads and watches


def test_500_idle_connections_do_not_mean_500_threads(tmp_path: Path) -> None:
    workers = 4
    with serving(tmp_path, limits=Limits(workers=workers)) as srv:
        base = threading.active_count()
        conns = []
        try:
            for _ in range(500):
                c = Conn(srv)
                c.request("GET", "/healthz")
                assert c.response()[0] == 200
                conns.append(c)
            assert srv.counters.connections == 500
            assert threading.active_count() <= base + workers
            with Conn(srv) as c:  # still serving
                c.request("GET", "/version")
                assert c.response()[0] == 200
        finally:
            for c in conns:
                c.close()


def test_idle_watches_cost_no_store_reads_and_one_read_serves_them_all(tmp_path: Path) -> None:
    n = 200
    with serving(tmp_path) as srv:
        watches = [_open_watch(srv) for _ in range(n)]
        try:
            hub = srv.hub
            assert _eventually(lambda: len(hub.watchers) == n)
            fetches, wakeups, probes = hub.fetches, hub.wakeups, hub.probes
            assert _eventually(lambda: hub.probes >= probes + 20)  # the probe ran (one per server), nothing else
            assert (hub.fetches, hub.wakeups) == (fetches, wakeups)
            with Conn(srv) as c:
                c.request("POST", SVC, svc_body("wake"), JSON_CT)
                assert c.response()[0] == 201
            for w in watches:
                event = json.loads(w.chunk() or b"null")
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "wake")
            assert hub.fetches - fetches == 1  # one change-log read for all n watches
            assert hub.wakeups - wakeups == n  # each woken once
        finally:
            for w in watches:
                w.close()


def test_watch_from_a_future_resource_version_ends_with_a_504(tmp_path: Path) -> None:
    with serving(tmp_path) as srv:
        rv = revision(srv)
        w = _open_watch(srv, f"{SVC}?watch=true&resourceVersion={rv + 1000}")
        try:
            event = json.loads(w.chunk() or b"null")
            assert event["type"] == "ERROR"
            st = event["object"]
            assert (st["kind"], st["code"], st["reason"]) == ("Status", 504, "Timeout")
            assert st["message"] == f"Timeout: Too large resource version: {rv + 1000}, current: {rv}"
            assert st["details"]["causes"] == [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
            assert w.chunk() is None  # the stream ends
            w.request("GET", "/version")  # and the connection is reusable
            assert w.response()[0] == 200
        finally:
            w.close()


def test_watch_from_a_near_future_version_follows_once_the_store_gets_there(tmp_path: Path) -> None:
    with serving(tmp_path) as srv:
        rv = revision(srv)
        w = _open_watch(srv, f"{SVC}?watch=true&resourceVersion={rv + 1}&timeoutSeconds=30")
        try:
            with Conn(srv) as c:
                for name in ("first", "second"):
                    c.request("POST", SVC, svc_body(name), JSON_CT)
                    assert c.response()[0] == 201
            event = json.loads(w.chunk() or b"null")  # changes after rv + 1 only
            assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "second")
        finally:
            w.close()


def test_stop_ends_open_watches_and_idle_connections(tmp_path: Path) -> None:
    with serving(tmp_path) as srv:
        w = _open_watch(srv)
        idle = Conn(srv)
        idle.request("GET", "/version")
        assert idle.response()[0] == 200
        srv.stop()
        assert w.chunk() is None  # the chunked stream was ended properly
        assert idle.closed_by_server()
        w.close()
        idle.close()


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_the_cli_server_holds_500_connections_on_a_few_threads(tmp_path: Path) -> None:
    """`kubesvc apiserver` as a subprocess with the limit flags: 500 open connections, thread count bounded, and the
    501st beyond --max-connections gets the 429 Status."""
    from tests.support.procs import Proc, ready_fields

    proc = Proc(str(tmp_path / "store.db"), "apiserver", "--insecure-plain-http", "--port", "0",
                "--max-connections", "500", "--header-timeout", "30")
    conns: list[Conn] = []
    try:
        fields = ready_fields(proc.wait_line("kubesvc apiserver ready", timeout=20))
        host, port = fields["address"].rsplit(":", 1)
        base = _threads(proc.p.pid)

        class _Srv:  # what Conn needs of a server
            address = fields["address"]

        for _ in range(500):
            c = Conn(_Srv, sock=socket.create_connection((host, int(port)), timeout=10))  # type: ignore[arg-type]
            c.request("GET", "/healthz")
            assert c.response()[0] == 200
            conns.append(c)
        assert _threads(proc.p.pid) <= base + 8  # the handler pool at most, not one per connection
        with Conn(_Srv, sock=socket.create_connection((host, int(port)), timeout=10)) as extra:  # type: ignore[arg-type]
            assert_status(extra.response(), 429, "TooManyRequests")
    finally:
        for c in conns:
            c.close()
        assert proc.stop() == 0


def test_requests_in_flight_limit_answers_429(tmp_path: Path) -> None:
    """One write held on the store's lock fills --max-requests-inflight 1; the next request gets the 429 at once,
    and the held write completes once the lock goes."""
    with serving(tmp_path, limits=Limits(max_requests_inflight=1, workers=2)) as srv:
        locker = Store(srv.store_path)
        locker.conn.execute("BEGIN IMMEDIATE")
        held = Conn(srv, timeout=60)
        try:
            held.request("POST", SVC, svc_body("held"), JSON_CT)
            assert _eventually(lambda: srv.counters.inflight == 1)
            with Conn(srv) as c:
                c.request("GET", "/version")
                code, headers, body = c.response()
                assert_status((code, headers, body), 429, "TooManyRequests")
                assert headers["retry-after"] == "1"
                w = _open_watch(srv)  # watches are counted apart
                w.close()
        finally:
            locker.conn.execute("ROLLBACK")
            locker.close()
        assert held.response()[0] == 201
        held.close()


_PIECES = [b"GET", b"POST", b" ", b"/version", b"/api/v1/namespaces/default/services", b"?watch=1", b"HTTP/1.1",
           b"HTTP/1.0", b"\r\n", b"\n", b"\r", b":", b"Host", b"Content-Length", b"Transfer-Encoding", b"chunked",
           b"Content-Type", b"application/json", b"Origin", b"127.0.0.1", b"-1", b"0", b"ffffffff", b"{}", b"\x00",
           b"\xff", b"\t", b",", b"Expect", b"100-continue", b"Connection", b"close"]


def test_random_heads_get_a_status_or_a_close_never_a_500_or_a_hang(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    with serving(tmp_path, limits=Limits(header_timeout=0.5, body_timeout=0.5)) as srv:
        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.sampled_from(_PIECES) | st.binary(max_size=8), max_size=40))
        def run(pieces: list[bytes]) -> None:
            with Conn(srv, timeout=10) as c:
                c.send(b"".join(pieces) + b"\r\n\r\n")
                try:
                    c.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                try:
                    code, _, body = c.response()
                except ConnectionError:
                    return  # closed without an answer: an incomplete request from a client that left
                assert code < 500, body
                if code >= 400:
                    assert isinstance(body, dict) and body["kind"] == "Status", body

        run()
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []  # no transport bug logged


def test_a_store_failure_ends_watches_with_an_error_event_and_the_next_watch_works(tmp_path: Path) -> None:
    from kubesvc.errors import StoreUnavailable

    with serving(tmp_path) as srv:
        w = _open_watch(srv, SVC + "?watch=true&timeoutSeconds=60")
        try:
            hub = srv.hub
            assert _eventually(lambda: len(hub.watchers) == 1 and hub.probes > 0)  # attached, and the hub follows
            broken = hub._fetch_sync

            def fail() -> Any:
                raise StoreUnavailable("cannot read the store: disk I/O error")

            hub._fetch_sync = fail  # the next read of the change log fails
            with Conn(srv) as c:
                c.request("POST", SVC, svc_body("trigger"), JSON_CT)
                assert c.response()[0] == 201
            event = json.loads(w.chunk() or b"null")
            assert event["type"] == "ERROR"
            assert (event["object"]["kind"], event["object"]["code"], event["object"]["reason"]) == (
                "Status", 503, "ServiceUnavailable")
            assert w.chunk() is None
            hub._fetch_sync = broken
        finally:
            w.close()
        w = _open_watch(srv, SVC + "?watch=true&timeoutSeconds=60")  # the hub starts afresh for the next watch
        try:
            with Conn(srv) as c:
                c.request("POST", SVC, svc_body("after"), JSON_CT)
                assert c.response()[0] == 201
            events = []
            while not events or events[-1]["object"]["metadata"]["name"] != "after":
                events.append(json.loads(w.chunk() or b"null"))
            assert [e["type"] for e in events][-1] == "ADDED"
        finally:
            w.close()
