"""The fast lane (``kubesvc.dataplane.ingress.lane``): plain exchanges forwarded by the compiled bases of ``ClientConn``
and ``UpstreamConn``, whose state becomes a Python ``Exchange`` the moment Python code reads ``ClientConn.cur``. These
tests drive a real router (with and without an access log: the lane finishes an exchange itself only without one)
through each way an exchange leaves the lane: a read timeout, a pooled connection the backend closed, a pipelined
request, answers the lane does not take (chunked, HEAD), a client too slow to read, a client that goes away, a
graceful stop; and, in process on real sockets, that a plain exchange is in the lane until ``cur`` is read.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from kubesvc.dataplane.ingress import lane, routes
from kubesvc.dataplane.ingress.exchange import HTTPConfig, Shared
from kubesvc.dataplane.ingress.http import ClientConn
from tests.dataplane import ingress_fixtures
from tests.dataplane.ingress_fixtures import FAST_FLAGS, Bed, HeadBackend
from tests.support.procs import wait_for

make_bed = ingress_fixtures.make_bed  # the fixture

PLAIN = b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 8\r\n\r\n"
BIG = 300_000


class LaneBackend(HeadBackend):
    """Answers each bodyless request in one write, by path: ``/hang`` (any query) never; ``/drop-once/T`` closes the connection
    without answering the first time T is seen; ``/slow`` after 0.3 s; ``/chunked`` chunked (``hello``); ``/big``
    ``BIG`` bytes; anything else (and HEAD) ``PLAIN`` with an 8-byte body naming the path."""

    def __init__(self) -> None:
        self.dropped: set[bytes] = set()
        self.woke = 0  # /slow requests whose 0.3 s are over (their answer is being written)
        super().__init__()

    def answer(self, c: socket.socket, head: bytes) -> bool:
        method, path = head.split(b" ", 2)[:2]
        if path.split(b"?")[0] == b"/hang":
            return True
        if path.startswith(b"/drop-once/") and path not in self.dropped:
            self.dropped.add(path)
            return False
        if path == b"/slow":
            time.sleep(0.3)
            self.woke += 1
        if method == b"HEAD":
            c.sendall(PLAIN)
        elif path == b"/chunked":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        elif path == b"/big":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (BIG, b"b" * BIG))
        else:
            c.sendall(PLAIN + path.ljust(8, b".")[:8])
        return True

    def requests(self, path: bytes) -> list[bytes]:
        return [h for h in self.heads if h.split(b" ", 2)[1] == path]

    def wait_request(self, path: bytes, count: int) -> None:
        """Until the ``count``-th request for ``path`` reached the backend (the router sent it upstream)."""
        wait_for(lambda: len(self.requests(path)) >= count, timeout=10, what=f"request {count} for {path!r} upstream")


class Lane:
    """A router with its lane backend; ``logged``: its access log goes to ``router.access_log`` (Python finishes
    the lane's exchanges) rather than off (the lane finishes them)."""

    def __init__(self, router: Bed, backend: LaneBackend, logged: bool) -> None:
        self.router, self.backend, self.logged = router, backend, logged


@pytest.fixture(scope="module", params=["off", "file"])
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    b = Bed(tmp_path_factory.mktemp("lane"), *FAST_FLAGS)
    be = LaneBackend()
    try:
        b.service("lane", [("127.0.0.1", be.port)])
        b.ingress("lane", [("lane.test", [("/", "Prefix", "lane")])])
        b.start(*(["--access-log", "off"] if request.param == "off" else []))
        yield Lane(b, be, request.param == "file")
    finally:
        b.close()
        be.stop()


class Client:
    """A kept-alive client connection that reads answers off one buffer (bytes past an answer are the next one's)."""

    def __init__(self, b: Bed, warm: bool = True) -> None:
        """``warm``: one request first, so that an upstream connection is pooled (a request that has to dial is not
        the lane's) and the next request on this connection can take the lane."""
        self.sock = socket.create_connection(("127.0.0.1", b.http_port), timeout=10)
        self.buf = b""
        if warm:
            head, body = self.get("/warm")
            assert status(head) == 200 and body == b"/warm...", (head, body)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()

    def send(self, method: str, path: str, extra: str = "") -> None:
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: lane.test\r\n{extra}\r\n".encode())

    def _fill(self, what: str) -> None:
        d = self.sock.recv(65536)
        assert d, f"connection closed {what}: {self.buf!r}"
        self.buf += d

    def _take(self, n: int, what: str) -> bytes:
        while len(self.buf) < n:
            self._fill(what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self, head_only: bool = False) -> tuple[bytes, bytes]:
        """One answer: (head, body); the body read by its Content-Length or de-chunked, none when ``head_only``."""
        while b"\r\n\r\n" not in self.buf:
            self._fill("before a whole head")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if head_only:
            return head, b""
        m = re.search(rb"\r\ncontent-length: (\d+)", head, re.I)
        if m is not None:
            return head, self._take(int(m.group(1)), "inside the body")
        assert re.search(rb"\r\ntransfer-encoding: chunked", head, re.I), head
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill("inside the chunks")
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line, 16)
            chunk = self._take(size + 2, "inside a chunk")
            if size == 0:
                return head, body
            body += chunk[:-2]

    def get(self, path: str, extra: str = "") -> tuple[bytes, bytes]:
        self.send("GET", path, extra)
        return self.answer()


def status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def log_line(b: Bed, needle: str) -> str:
    def find() -> str:
        with open(b.access_log) as f:
            return next((ln for ln in f if needle in ln), "")

    return str(wait_for(find, timeout=5, what=f"access log line with {needle}"))


def test_plain_exchanges_answer_as_the_python_path_and_are_logged(bed: Lane) -> None:
    b, be = bed.router, bed.backend
    with Client(b, warm=False) as s:
        heads = [s.get(f"/p{i}") for i in range(4)]  # the first dials (Python), the next ones take the pooled connection
        assert [body for _, body in heads] == [f"/p{i}".encode().ljust(8, b".") for i in range(4)]
        for head, _ in heads:
            assert head == b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 8", head
        head, body = s.get("/given", "X-Request-ID: rid-lane-1\r\nUser-Agent: lane/1\r\n")
        assert status(head) == 200 and body == b"/given.."
    ids = [dict(ln.split(b": ", 1) for ln in be.requests(f"/p{i}".encode())[0].split(b"\r\n")[1:])[b"X-Request-ID"] for i in range(4)]
    assert all(re.fullmatch(rb"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 4, ids
    assert b"X-Request-ID: rid-lane-1" in be.requests(b"/given")[0]
    if bed.logged:
        ln = log_line(b, "rid-lane-1")
        assert '"GET /given HTTP/1.1" 200 8 "-" "lane/1"' in ln and f"127.0.0.1:{be.port} 200 rid-lane-1" in ln, ln


def test_an_upstream_that_does_not_answer_gets_504(bed: Lane) -> None:
    b = bed.router
    with Client(b) as s:
        t0 = time.monotonic()
        head, _ = s.get("/hang", "X-Request-ID: rid-hang\r\n")
        assert status(head) == 504 and 0.5 < time.monotonic() - t0 < 5
    if bed.logged:
        assert '"GET /hang HTTP/1.1" 504 ' in log_line(b, "rid-hang")


def test_a_pooled_connection_the_upstream_closed_is_retried_on_a_fresh_one(bed: Lane) -> None:
    b, be = bed.router, bed.backend
    tag = f"/drop-once/{bed.logged}"
    with Client(b) as s:
        head, body = s.get(tag)
        assert status(head) == 200 and body == tag.encode()[:8]
    assert len(be.requests(tag.encode())) == 2  # dropped once, then answered on a new connection


def test_a_request_pipelined_behind_a_lane_exchange_is_answered_after_it(bed: Lane) -> None:
    b, be = bed.router, bed.backend
    with Client(b) as s:
        slow = len(be.requests(b"/slow")) + 1
        s.send("GET", "/slow")
        be.wait_request(b"/slow", slow)  # in flight: /next comes behind it
        s.send("GET", "/next")
        assert s.answer()[1] == b"/slow..."
        assert s.answer()[1] == b"/next..."
        assert s.get("/after")[1] == b"/after.."


def test_answers_the_lane_does_not_take_chunked_and_head(bed: Lane) -> None:
    b = bed.router
    with Client(b) as s:
        head, body = s.get("/chunked")
        assert status(head) == 200 and body == b"hello" and b"Transfer-Encoding: chunked" in head
        s.send("HEAD", "/h")
        head, _ = s.answer(head_only=True)
        assert status(head) == 200 and b"Content-Length: 8" in head
        assert s.get("/c")[1] == b"/c......"  # nothing of a body after the HEAD answer (it would be read as this one)


def test_a_client_that_reads_late_gets_a_big_answer_whole(bed: Lane) -> None:
    b = bed.router
    with Client(b) as s:
        s.send("GET", "/big")
        time.sleep(0.3)  # the router's writes to this client pause meanwhile
        head, body = s.answer()
        assert status(head) == 200 and body == b"b" * BIG
        assert s.get("/d")[1] == b"/d......"


def test_a_client_gone_mid_exchange_never_gets_its_answer_to_another(bed: Lane) -> None:
    b, be = bed.router, bed.backend
    with Client(b) as s:
        slow, woke = len(be.requests(b"/slow")) + 1, be.woke + 1
        s.send("GET", "/slow")
        be.wait_request(b"/slow", slow)
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closed with a reset: lost
    # the upstream connection answering /slow must not go back to the pool: /f would read /slow's answer
    for i in range(3):
        with Client(b, warm=False) as s:
            assert s.get(f"/f{i}")[1] == f"/f{i}".encode().ljust(8, b".")
    wait_for(lambda: be.woke >= woke, timeout=10, what="the backend answering /slow")
    with Client(b, warm=False) as s:
        assert s.get("/g")[1] == b"/g......"


def test_a_graceful_stop_lets_a_lane_exchange_finish(make_bed: Any) -> None:
    b: Bed = make_bed(*FAST_FLAGS)
    be = LaneBackend()
    try:
        b.service("lane", [("127.0.0.1", be.port)])
        b.ingress("lane", [("lane.test", [("/", "Prefix", "lane")])])
        b.start("--access-log", "off")
        with Client(b) as s:
            s.send("GET", "/slow")
            be.wait_request(b"/slow", 1)  # in flight when the stop comes
            assert b.proc is not None
            b.proc.p.terminate()
            head, body = s.answer()
            assert status(head) == 200 and body == b"/slow..."
        assert b.proc.p.wait(10) == 0
    finally:
        be.stop()


@pytest.mark.skipif(not lane.ENABLED, reason="the compiled _heads module is not built (or KUBESVC_INGRESS_COMPILED=0)")
def test_in_process_a_plain_exchange_stays_in_the_lane_until_cur_is_read() -> None:
    _with_backend(_in_process)


def _with_backend(check: Callable[[tuple[str, int]], Coroutine[Any, Any, None]]) -> None:
    """Run ``check(backend address)`` on a fresh event loop with a ``LaneBackend``, stopped afterwards."""
    be = LaneBackend()
    try:
        asyncio.run(check(("127.0.0.1", be.port)))
    finally:
        be.stop()


async def _until(cond: Callable[[], bool], what: str) -> None:
    """Let the event loop run until ``cond()`` holds (at most 5 s)."""
    deadline = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < deadline, f"not within 5 s: {what}"
        await asyncio.sleep(0.01)


async def _router(backend: tuple[str, int]) -> tuple[Shared, asyncio.Server, int]:
    """The router's objects in this process, on a real listening socket (``server.serve`` without the store)."""
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "lane", "namespace": "default"},
           "spec": {"ingressClassName": "kubesvc", "rules": [{"http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "lane", "port": {"number": 80}}}}]}}]}}
    cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "kubesvc"},
           "spec": {"controller": routes.CONTROLLER}}
    table = routes.build([ing], [cls])
    shared = Shared(HTTPConfig(), None)
    shared.install(table, {key: [backend] for key in table.backends})
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: ClientConn(shared, "http"), "127.0.0.1", 0)
    return shared, srv, srv.sockets[0].getsockname()[1]


async def _in_process(backend: tuple[str, int]) -> None:
    shared, srv, port = await _router(backend)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /warm HTTP/1.1\r\nHost: lane.test\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(8) == b"/warm..."
        (conn,) = shared.conns
        assert not conn.in_lane()  # the first request dialled: the Python path
        (up,) = shared.pool.live
        writer.write(b"GET /again HTTP/1.1\r\nHost: lane.test\r\n\r\n")  # the lane, on that pooled connection
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        assert await reader.readexactly(8) == b"/again.."
        assert shared.pool.live == {up} and shared.pool.idle[backend] == [up] and up.owner is None and conn.cur is None
        writer.write(b"GET /hang?q=1 HTTP/1.1\r\nHost: lane.test\r\nUser-Agent: t/1\r\n\r\n")
        await _until(conn.in_lane, "the request in the lane")  # and nothing read cur yet
        ex = conn.cur  # made now, as the Python path would have left it
        assert not conn.in_lane() and conn.cur is ex
        assert (ex.method, ex.url, ex.host, ex.version, ex.keep_alive) == (b"GET", b"/hang?q=1", b"lane.test", "1.1", True)
        assert ex.special == {b"host": b"lane.test", b"user-agent": b"t/1"} and ex.endpoint == backend and ex.reused
        assert ex.up is not None and ex.up.owner is conn and ex.complete_head and ex.body_done and not ex.head_sent
        assert re.fullmatch(rb"[0-9a-f]{32}", ex.req_id) and ex.route is not None and abs(ex.started - time.time()) < 5
        assert conn.busy()  # what a graceful stop waits for
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()  # a reset: the connection is lost (a FIN alone would still wait for the answer)
        await writer.wait_closed()
        await _until(lambda: not shared.conns, "the connection lost")
        assert ex.up is None  # the client went away: its upstream connection was dropped
    finally:
        srv.close()
        shared.pool.close_all()
        await srv.wait_closed()


@pytest.mark.skipif(not lane.ENABLED, reason="the compiled _heads module is not built (or KUBESVC_INGRESS_COMPILED=0)")
def test_in_process_a_write_that_pauses_the_client_makes_the_exchange_python_s() -> None:
    _with_backend(_paused_write)


async def _paused_write(backend: tuple[str, int]) -> None:
    """The lane's write of a whole answer fills the client's buffers: asyncio calls ``pause_writing`` inside that
    write, which reads ``cur``; the lane goes on as ``replay_response`` does with the made exchange."""
    shared, srv, port = await _router(backend)
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET /warm HTTP/1.1\r\nHost: lane.test\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(8) == b"/warm..."
        (conn,) = shared.conns
        conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer.write(b"GET /hang HTTP/1.1\r\nHost: lane.test\r\n\r\n")
        await _until(conn.in_lane, "the request in the lane")
        (up,) = [u for u in shared.pool.live if u.owner is conn]
        n = 1_000_000
        up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (n, b"y" * n))  # as the loop would, whole
        assert not conn.in_lane() and conn.write_paused and conn.cur is None  # made Python's, then finished
        assert up.owner is None and up in shared.pool.idle[backend]  # back in the pool
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 1000000\r\n" in head
        assert await reader.readexactly(n) == b"y" * n
        writer.write(b"GET /after HTTP/1.1\r\nHost: lane.test\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        assert await reader.readexactly(8) == b"/after.."
        writer.close()
    finally:
        sock.close()
        srv.close()
        shared.pool.close_all()
        await srv.wait_closed()
