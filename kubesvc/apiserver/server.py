"""The HTTP server: stdlib ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive), one Store connection per
connection thread, chunked streaming for watches.

Rules kept here:
- Binds loopback by default; a non-loopback address is refused unless a bearer token is required
  (``token``), and then every request must carry ``Authorization: Bearer <token>`` (401 otherwise).
- Request bodies are capped at ``MAX_BODY`` (413 ``RequestEntityTooLarge``, read nothing further).
- Every failure leaves as a ``kind: Status`` JSON; an unexpected exception is a 500 Status and one
  log line, never a traceback on the wire.
- ``stop()`` ends serve_forever, wakes watches (they end their chunked stream) and closes the socket.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubesvc.apiserver import handlers
from kubesvc.apiserver.status import HTTP_REASON, from_error, status
from kubesvc.errors import ClientError
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store

log = logging.getLogger("kubesvc.apiserver")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ApiServer"
    server_version = "kubesvc-apiserver"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    # every verb goes through one place
    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _registry(self) -> Registry:
        reg = getattr(self, "_reg", None)
        if reg is None:
            reg = self._reg = Registry(Store(self.server.store_path))
        return reg

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            reg = getattr(self, "_reg", None)
            if reg is not None:
                reg.store.close()
                self._reg = None

    def _alive(self) -> bool:
        """False once the client closed its side (a watch stops streaming into the void)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False
        return True

    def _read_body(self) -> bytes | None:
        """The request body, or None when it is too large (the reply is already sent)."""
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > handlers.MAX_BODY:
                    self._too_large()
                    return None
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(length_text) if length_text and length_text.isdigit() else 0
        if length > handlers.MAX_BODY:
            self._too_large()
            return None
        return self.rfile.read(length) if length else b""

    def _too_large(self) -> None:
        self.close_connection = True
        self._send(handlers.json_response(413, status(413, "RequestEntityTooLarge",
                                                      f"the request body is larger than the limit of {handlers.MAX_BODY} bytes")))

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode())

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(handlers.json_response(400, status(400, "BadRequest", "malformed request body framing")))
            return
        if body is None:
            return
        if not self._authorized():
            self._send(handlers.json_response(401, status(401, "Unauthorized", "Unauthorized")))
            return
        req = handlers.Request.build(self.command, self.path, dict(self.headers.items()), body)
        try:
            ctx = handlers.Context(self._registry(), self.server.address, self.server.stop_event, self._alive,
                                   self.server.bookmark_interval)
            resp = handlers.handle(req, ctx)
        except Exception as e:  # noqa: BLE001 - the wire gets a Status, the log gets the story
            log.exception("request failed: %s %s", self.command, self.path)
            st = from_error(e)
            resp = handlers.json_response(st["code"], st)
        self._send(resp)

    def _send(self, resp: handlers.Response) -> None:
        self.send_response(resp.code, HTTP_REASON.get(resp.code))
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in resp.headers:
            self.send_header(k, v)
        if resp.stream is None:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in resp.stream:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, store_path: str, host: str = "127.0.0.1", port: int = 6443, token: str | None = None,
                 bookmark_interval: float = 30.0) -> None:
        if not is_loopback(host) and not token:
            raise ClientError(f"refusing to serve the API on non-loopback address {host} without --token-file")
        self.store_path = store_path
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.stop_event = threading.Event()
        Store.open(store_path).close()  # create the schema once, before threads race for it
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        bound_host, bound_port = self.server_address[:2]
        self.address = f"[{bound_host}]:{bound_port}" if ":" in str(bound_host) else f"{bound_host}:{bound_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        self.stop_event.set()
        self.shutdown()
        self.server_close()


def serve(store_path: str, host: str, port: int, token: str | None, ready: Any = None,
          stop: threading.Event | None = None, bookmark_interval: float = 30.0) -> int:
    """Run until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT). ``ready(server)`` after binding."""
    server = ApiServer(store_path, host, port, token, bookmark_interval)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        if ready is not None:
            ready(server)
        (stop or threading.Event()).wait()
    finally:
        server.stop()
        thread.join(5)
    return 0


def kubeconfig(server_url: str, token: str | None = None, name: str = "kubesvc", namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig whose current context points at ``server_url``."""
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": server_url}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }


__all__ = ["ApiServer", "serve", "kubeconfig", "is_loopback"]
