"""The Ingress test bed: HTTP backends on loopback, objects written through the real Registry, a real
`kubesvc ingress` subprocess on ephemeral ports, and small HTTP clients (http.client, curl, raw sockets).

HTTP backend paths (any method):
- ``/stream/N``: N bytes of ``x``, chunked, in 256 KiB pieces.
- ``/sleep/S``: answer after S seconds.
- ``/close``: drop the connection without answering.
- ``/status/N``: answer status N.
- ``/hop``: an answer carrying hop-by-hop headers (``Connection: X-Drop``, ``X-Drop``, ``Keep-Alive``).
- anything else: JSON ``{name, method, path, headers, body_bytes, chunked}``, the body read whole (counted only).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import Proc, ready_fields, wait_for

PIECE = 256 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _read_body(self) -> tuple[int, bool]:
        n = 0
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return n, True
                left = size
                while left:
                    got = len(self.rfile.read(min(left, PIECE)))
                    if not got:
                        raise ConnectionError("short chunk")
                    left -= got
                n += size
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            got = len(self.rfile.read(min(left, PIECE)))
            if not got:
                raise ConnectionError("short body")
            left -= got
            n += got
        return n, False

    def _any(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        path = self.path
        if path == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        n, chunked = self._read_body()
        if path.startswith("/sleep/"):
            time.sleep(float(path.split("/")[2]))
        if path.startswith("/stream/"):
            total = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"x" * PIECE
            while total > 0:
                piece = block[: min(total, PIECE)]
                self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                total -= len(piece)
            self.wfile.write(b"0\r\n\r\n")
            return
        status = int(path.split("/")[2]) if path.startswith("/status/") else 200
        body = json.dumps({"name": self.server.name, "method": self.command, "path": path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}, "body_bytes": n,
                           "chunked": chunked}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if path == "/hop":
            self.send_header("Connection", "X-Drop")
            self.send_header("X-Drop", "1")
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("X-Keep", "1")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients (the router) that go away mid-answer are part of the tests

    def __init__(self, name: str, host: str) -> None:
        self.name = name
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        super().__init__((host, 0), _Handler)


class HTTPBackend:
    """A threaded HTTP/1.1 keep-alive backend on ``host``:ephemeral; ``stop()`` closes it."""

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.srv = _Server(name, host)
        self.name = name
        self.host, self.port = self.srv.server_address[0], self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str]]]:
        return self.srv.seen

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(5)


def free_port() -> int:
    """A port nobody listens on (bound, then closed): connecting to it is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


class Bed:
    def __init__(self, tmp: Path, *flags: str) -> None:
        self.tmp = tmp
        self.store_path = str(tmp / "store.db")
        self.store = Store(self.store_path)
        self.reg = Registry(self.store)
        self.flags = flags
        self.proc: Proc | None = None
        self.fields: dict[str, str] = {}
        self.backends: list[HTTPBackend] = []
        self.access_log = str(tmp / "access.log")
        self._sync = 0

    # -- backends and objects
    def backend(self, name: str, host: str = "127.0.0.1") -> HTTPBackend:
        b = HTTPBackend(name, host)
        self.backends.append(b)
        return b

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.reg.apply(obj).object

    def service(self, name: str, endpoints: list[tuple[str, int]], port: int = 80, port_name: str = "http",
                ns: str = "default") -> None:
        self.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                    "spec": {"ports": [{"name": port_name, "port": port, "targetPort": 8080}]}})
        subsets = [{"addresses": [{"ip": ip}], "ports": [{"name": port_name, "port": p}]} for ip, p in endpoints]
        self.apply({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}, "subsets": subsets})

    def ingress(self, name: str, rules: list[tuple[str | None, list[tuple[str, str, str]]]] | None = None,
                default: str | None = None, tls: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None,
                cls: str | None = "kubesvc", port: int | str = 80, ns: str = "default") -> dict[str, Any]:
        def backend(svc: str) -> dict[str, Any]:
            return {"service": {"name": svc, "port": {"name": port} if isinstance(port, str) else {"number": port}}}

        spec: dict[str, Any] = {}
        if cls:
            spec["ingressClassName"] = cls
        if default:
            spec["defaultBackend"] = backend(default)
        if rules:
            spec["rules"] = []
            for host, paths in rules:
                rule: dict[str, Any] = {"http": {"paths": [{"path": p, "pathType": t, "backend": backend(s)} for p, t, s in paths]}}
                if host:
                    rule["host"] = host
                spec["rules"].append(rule)
        if tls:
            spec["tls"] = tls
        meta: dict[str, Any] = {"name": name, "namespace": ns}
        if annotations:
            meta["annotations"] = annotations
        return self.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec})

    # -- the router
    def start(self, *extra: str) -> dict[str, str]:
        self.proc = Proc(self.store_path, "ingress", "--http-address", "127.0.0.1:0", "--https-address", "127.0.0.1:0",
                         "--access-log", self.access_log, *self.flags, *extra)
        self.fields = ready_fields(self.proc.wait_line("kubesvc ingress ready"))
        return self.fields

    @property
    def http_port(self) -> int:
        return int(self.fields["http"].rsplit(":", 1)[1])

    @property
    def https_port(self) -> int:
        return int(self.fields["https"].rsplit(":", 1)[1])

    def sync(self) -> None:
        """Wait until the router serves everything written so far (a fresh sentinel Ingress answers)."""
        self._sync += 1
        host = f"sync-{self._sync}.sentinel.test"
        if not any(b.name == "sentinel" for b in self.backends):
            b = self.backend("sentinel")
            self.service("sentinel", [(b.host, b.port)])
        self.ingress(f"sentinel-{self._sync}", [(host, [("/", "Prefix", "sentinel")])])
        wait_for(lambda: self.request("GET", "/", host=host)[0] == 200, timeout=10, what=f"router serving {host}")

    # -- clients
    def conn(self, timeout: float = 10) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)

    def request(self, method: str, path: str, host: str | None = None, headers: dict[str, str] | None = None,
                body: Any = None, timeout: float = 10, chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
        c = self.conn(timeout)
        try:
            h = dict(headers or {})
            if host is not None:
                h["Host"] = host
            c.request(method, path, body=body, headers=h, encode_chunked=chunked)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def who(self, host: str, path: str) -> str:
        """The backend name answering, or the status code as text when it is not 200."""
        status, _, body = self.request("GET", path, host=host)
        return json.loads(body)["name"] if status == 200 else str(status)

    def curl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args], capture_output=True, text=True, timeout=timeout + 5)

    def raw(self, data: bytes, timeout: float = 5) -> bytes:
        """Send bytes on a fresh connection, half-close, read until the router closes."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            try:
                s.shutdown(socket.SHUT_WR)
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    out += d
            except (TimeoutError, ConnectionResetError):
                pass
            return out

    def rss_peak_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.p.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        try:
            if self.proc is not None:
                self.proc.stop()
        finally:
            for b in self.backends:
                b.stop()
            self.store.close()


def three(bed: Bed) -> None:
    """Services svc-a, svc-b, svc-c, each one backend of that name; port name http, port 80."""
    for n in "abc":
        b = bed.backend(n)
        bed.service(f"svc-{n}", [(b.host, b.port)])


@pytest.fixture
def make_bed(tmp_path: Path) -> Iterator[Any]:
    beds: list[Bed] = []

    def make(*flags: str) -> Bed:
        d = tmp_path / f"bed{len(beds)}"
        d.mkdir()
        b = Bed(d, *flags)
        beds.append(b)
        return b

    try:
        yield make
    finally:
        for b in beds:
            b.close()


def random_loopback() -> str:
    return f"127.{random.randint(150, 199)}.{random.randint(0, 255)}."


# Short timeouts so the timeout tests stay quick; the limits keep their defaults (1m body, 32k head).
FAST_FLAGS = ("--proxy-read-timeout", "1s", "--proxy-connect-timeout", "1s", "--client-header-timeout", "2s",
              "--client-body-timeout", "2s")


@pytest.fixture(scope="module")
def shared_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """One router per test module (start-up is the slow part); tests use their own host names."""
    bed = Bed(tmp_path_factory.mktemp("ingress"), *FAST_FLAGS)
    try:
        three(bed)
        bed.start()
        yield bed
    finally:
        bed.close()


class HeadBackend:
    """A raw backend on 127.0.0.1 for bodyless requests: one thread per connection reads each request head, keeps
    it in ``heads`` and calls ``answer(conn, head)``, which writes the answer and returns False to close the
    connection. ``stop`` closes the listener and every connection."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.heads: list[bytes] = []
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def answer(self, c: socket.socket, head: bytes) -> bool:
        raise NotImplementedError

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                if not self.answer(c, head):
                    return
        except (OSError, ValueError, IndexError):
            pass
        finally:
            c.close()

    def stop(self) -> None:
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the thread (close alone does not)
        except OSError:
            pass
        self.srv.close()
        for c in self.conns:
            c.close()
        self.thread.join(5)
