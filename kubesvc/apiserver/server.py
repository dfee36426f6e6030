"""The HTTP transport: one asyncio event loop (uvloop when installed) serving HTTP/1.1 keep-alive, with the
synchronous handlers run on a bounded thread pool and watches streamed from the loop.

Rules kept here (docs/concepts/apiserver.md, "Limits and request rules"):
- No thread per connection: connections are coroutines; handlers run on ``Limits.workers`` threads, each
  with its own Store connection. Watches hold no thread while idle: one ``watch.Hub`` per server probes
  the store and wakes them.
- Checked from the head alone, in this order, before any body byte is read: framing (Content-Length and
  Transfer-Encoding), ``Host`` (only the served address, loopback literals, localhost and ``hosts``),
  ``Origin`` (only those same local names), authentication (a verified TLS client certificate or the
  bearer token), the Content-Type of POST/PUT/PATCH bodies (one of the API's types; absent means JSON only
  for a request with a credential), the body limit, then the in-flight and watch limits. A refusal with a
  body still pending closes the connection (after a short, bounded discard so the client can read the answer).
- Bodies are read only up to ``max_body_bytes`` whatever the transfer coding: chunk sizes are strict hex,
  their running sum is checked before each chunk is read.
- Timeouts: a head must arrive within ``header_timeout`` of its first byte (of the connection, for the
  first request), else a 408 Status and the close; a keep-alive connection idle for ``idle_timeout`` is
  closed without a word; a body must arrive within ``body_timeout`` (408); a client that reads nothing for
  ``idle_timeout`` is dropped.
- Every failure leaves as a ``kind: Status`` JSON; an unexpected exception is a 500 Status and one log
  line, never a traceback on the wire.
- Binds loopback by default; a non-loopback address needs a bearer token or a TLS context. Without either
  the server needs ``insecure=True``: plain HTTP, no authentication, loopback only.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from kubesvc.apiserver import handlers, streams
from kubesvc.apiserver import patch as patchlib
from kubesvc.apiserver.status import HTTP_REASON, from_error, status
from kubesvc.errors import ClientError
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store

log = logging.getLogger("kubesvc.apiserver")


_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class Limits:
    """What one client may hold or send. The defaults are documented in docs/concepts/apiserver.md with the
    ``kubesvc apiserver`` flags that set them."""

    max_body_bytes: int = handlers.MAX_BODY  # --max-body-bytes; the apiserver's 3 MiB request limit
    max_header_bytes: int = 64 * 1024  # --max-header-bytes: request line and headers together
    max_headers: int = 100  # header lines per request
    header_timeout: float = 10.0  # --header-timeout: seconds for a whole head (and a TLS handshake)
    idle_timeout: float = 90.0  # --idle-timeout: keep-alive connections, stalled readers (kube-apiserver: 90 s)
    body_timeout: float = 60.0  # seconds for a whole request body
    max_connections: int = 1000  # --max-connections: open connections (more get a 429 and are closed)
    max_watches: int = 500  # --max-watches: concurrent watch streams (more get a 429)
    max_requests_inflight: int = 400  # --max-requests-inflight: other requests queued or running (kube-apiserver: 400)
    workers: int = 8  # threads running the handlers

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ClientError(f"invalid --{f.name.replace('_', '-')} {value}: must be positive")
        if self.max_body_bytes > handlers.MAX_BODY:
            raise ClientError(f"invalid --max-body-bytes {self.max_body_bytes}: must be at most {handlers.MAX_BODY}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


_REASON = {**{s.value: s.phrase for s in HTTPStatus}, **HTTP_REASON}
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEX = re.compile(rb"^[0-9A-Fa-f]{1,15}$")
_DIGITS = re.compile(r"^[0-9]{1,18}$")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\[\]:/@\s]+)(:[0-9]{1,5})?$")
_BODY_METHODS = ("POST", "PUT", "PATCH")
_MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf", *patchlib.PATCH_TYPES)
_LINGER_BYTES = 256 * 1024
_LINGER_SECONDS = 1.0


class _Refuse(Exception):
    """A request answered with a Status from the transport itself."""

    def __init__(self, code: int, reason: str, message: str, close: bool = False,
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.close, self.headers = code, reason, message, close, list(headers)


class _Head:
    __slots__ = ("method", "target", "version", "headers", "lists", "items")

    def __init__(self, method: str, target: str, version: str, items: list[tuple[str, str]]) -> None:
        self.method, self.target, self.version = method, target, version
        self.items = items  # as sent, in order (a WebSocket handshake reads them)
        self.headers: dict[str, str] = {}  # lower-cased names, the last value wins
        self.lists: dict[str, list[str]] = {}
        for name, value in items:
            low = name.lower()
            self.headers[low] = value
            self.lists.setdefault(low, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


def parse_head(raw: bytes, max_headers: int) -> _Head:
    """Request line and header fields, strictly (RFC 9112): no obs-fold, no space before the colon, token
    names, no bare CR or LF, HTTP/1.0 or HTTP/1.1 only."""
    lines = raw.split(b"\r\n")
    while lines and lines[0] == b"":  # empty lines before a request line are allowed
        lines.pop(0)
    if lines and lines[-1] == b"":
        lines.pop()
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise _Refuse(400, "BadRequest", "malformed HTTP request: empty request line", close=True)
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1] or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise _Refuse(400, "BadRequest", "malformed HTTP request line", close=True)
    if len(lines) - 1 > max_headers:
        raise _Refuse(431, "RequestHeaderFieldsTooLarge", f"the request has more than {max_headers} header fields",
                      close=True)
    items = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name) or b"\r" in line or b"\n" in line or b"\0" in line:
            raise _Refuse(400, "BadRequest", "malformed HTTP header field", close=True)
        items.append((name.decode("ascii"), value.strip(b" \t").decode("latin-1")))
    target = parts[1].decode("latin-1")
    if not target.startswith("/") or any(c in target for c in " \t\r\n\0"):
        raise _Refuse(400, "BadRequest", "the request target must be a path (origin-form)", close=True)
    return _Head(parts[0].decode("ascii"), target, parts[2].decode("ascii"), items)


def _split_host(value: str) -> str | None:
    """The host of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), lower-cased; None if malformed."""
    m = _HOST_PORT.match(value.strip())
    if m is None or (m.group(2) and not 0 < int(m.group(2)[1:]) < 65536):
        return None
    host = m.group(1)
    return (host[1:-1] if host.startswith("[") else host).lower().rstrip(".")


class _Counters:
    def __init__(self) -> None:
        self.connections = 0
        self.watches = 0
        self.inflight = 0


class ApiServer:
    """Bind in the constructor (so ``address`` is known), serve with ``serve_forever()`` or ``start()``, end
    with ``stop()`` (from any thread)."""

    def __init__(self, store_path: str, host: str = "127.0.0.1", port: int = 6443, token: str | None = None,
                 bookmark_interval: float = 30.0, ssl_context: ssl.SSLContext | None = None, insecure: bool = False,
                 limits: Limits | None = None, hosts: Iterable[str] = ()) -> None:
        if not is_loopback(host) and not token and ssl_context is None:
            raise ClientError(f"refusing to serve the API on non-loopback address {host} without --token-file")
        if ssl_context is None and not token and not insecure:
            raise ClientError("refusing to serve the API without authentication: give a serving certificate and "
                              "client CA or --token-file, or --insecure for plain HTTP that anyone who can reach "
                              "the port may use")
        self.store_path = store_path
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.ssl_context = ssl_context
        self.insecure = insecure and ssl_context is None and not token
        self.limits = limits or Limits()
        self.stop_event = threading.Event()
        self.counters = _Counters()
        Store.open(store_path).close()  # create the schema once, before threads race for it
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=1024)
        self._sock.setblocking(False)
        bound_host, bound_port = self._sock.getsockname()[:2]
        self.address = f"[{bound_host}]:{bound_port}" if ":" in str(bound_host) else f"{bound_host}:{bound_port}"
        bound = _ip(str(bound_host))
        self._wildcard = bound is not None and bound.is_unspecified
        self._hosts = {str(bound_host).lower(), "localhost", *(h.lower().rstrip(".") for h in hosts)}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started: threading.Event | None = None
        self._finished = threading.Event()
        self._local = threading.local()
        self._stores: list[Store] = []
        self._stores_lock = threading.Lock()
        self.hub: Any = None  # watch.Hub, made on the loop

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context is not None else 'http'}://{self.address}"

    # ------------------------------------------------------------------------------------ life cycle

    def serve_forever(self, poll_interval: float = 0.2) -> None:  # noqa: ARG002 - kept for callers of the old API
        """Serve in this thread until ``stop()``."""
        try:
            runner = _runner()
            with runner:
                runner.run(self._main())
        finally:
            self._close_stores()
            self._finished.set()

    def start(self) -> ApiServer:
        """Serve on a background thread; returns once the loop accepts connections."""
        self._started = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, name="apiserver-loop", daemon=True)
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass
            if threading.current_thread() is not self._thread:
                self._finished.wait(10)
        else:
            self._sock.close()

    async def _main(self) -> None:
        from kubesvc.apiserver.watch import Hub

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self.stop_event.is_set():
            self._stopping.set()
        pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="apiserver")
        self._pool = pool
        self.hub = Hub(self.store_path, self._run_sync)
        tasks: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._connection(reader, writer)
            except asyncio.CancelledError:
                pass  # shutdown; the connection is closed
            finally:
                tasks.discard(task)
                self._idle.discard(task)

        kwargs: dict[str, Any] = {}
        if self.ssl_context is not None:
            kwargs.update(ssl=self.ssl_context, ssl_handshake_timeout=self.limits.header_timeout)
        server = await asyncio.start_server(client, sock=self._sock, limit=self.limits.max_header_bytes, **kwargs)
        if self._started is not None:
            self._started.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for t in list(self._idle):  # waiting for a next request: nothing to finish
                t.cancel()
            self.hub.close()  # watches end their streams
            if tasks:
                await asyncio.wait(list(tasks), timeout=2)
            for t in list(tasks):
                t.cancel()
            if tasks:
                await asyncio.wait(list(tasks), timeout=1)
            pool.shutdown(wait=False, cancel_futures=True)

    def _registry(self) -> Registry:
        reg = getattr(self._local, "reg", None)
        if reg is None:
            store = Store(self.store_path)
            with self._stores_lock:
                self._stores.append(store)
            reg = self._local.reg = Registry(store)
        return reg

    def _close_stores(self) -> None:
        with self._stores_lock:
            stores, self._stores = self._stores, []
        for s in stores:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - a worker may still hold it; the process is ending
                pass

    async def _run_sync(self, fn: Any, *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._pool, fn, *args)

    # ------------------------------------------------------------------------------------ connections

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lim = self.limits
        c = self.counters
        if c.connections >= lim.max_connections:
            await self._refuse_now(reader, writer, _Refuse(
                429, "TooManyRequests", f"too many open connections (the limit is {lim.max_connections}), please try again later",
                close=True, headers=[("Retry-After", "1")]))
            return
        c.connections += 1
        cert_ok = False
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is not None:
            try:
                cert_ok = bool(sslobj.getpeercert())  # non-empty only when the context verified it
            except (ValueError, ssl.SSLError):
                cert_ok = False
        task = asyncio.current_task()
        try:
            first = True
            while self._stopping is not None and not self._stopping.is_set():
                try:
                    if task is not None:
                        self._idle.add(task)
                    try:
                        raw = await self._read_head(reader, first)
                    finally:
                        if task is not None:
                            self._idle.discard(task)
                    if raw is None:
                        return
                    first = False
                    keep = await self._request(raw, reader, writer, cert_ok)
                except _Refuse as r:
                    await self._send_status(writer, r.code, r.reason, r.message, r.headers, close=r.close)
                    if r.close:
                        await self._linger(reader, writer)
                        return
                    keep = True
                except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
                    raise
                except Exception:  # noqa: BLE001 - a transport bug: a Status, a log line, the connection closed
                    log.exception("request failed in the transport")
                    await self._send_status(writer, 500, "InternalError", "Internal error occurred", close=True)
                    return
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a transport bug must not kill the loop
            log.exception("connection failed")
        finally:
            c.connections -= 1
            writer.close()

    async def _read_head(self, reader: asyncio.StreamReader, first: bool) -> bytes | None:
        """The next request head, or None when the client went away or stayed idle/slow too long (a 408 or
        431 Status is sent where the client may still read it)."""
        lim = self.limits
        loop = asyncio.get_running_loop()
        started = False
        try:
            deadline = loop.time() + lim.header_timeout
            async with asyncio.timeout(lim.header_timeout if first else lim.idle_timeout):
                byte = await reader.readexactly(1)
            started = True
            async with asyncio.timeout_at(deadline if first else loop.time() + lim.header_timeout):
                return byte + await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except TimeoutError:
            if not started:
                return None  # nothing asked: an idle connection is closed without a word, as Go's IdleTimeout does
            raise _Refuse(408, "Timeout", f"the request head did not arrive within {lim.header_timeout:g}s",
                          close=True) from None
        except asyncio.LimitOverrunError:
            raise _Refuse(431, "RequestHeaderFieldsTooLarge",
                          f"the request head is larger than the limit of {lim.max_header_bytes} bytes", close=True) from None
        except (ConnectionError, ssl.SSLError):
            return None

    def _host_allowed(self, host: str) -> bool:
        if host in self._hosts:
            return True
        ip = _ip(host)
        if ip is None:
            return False
        if ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped and ip.ipv4_mapped.is_loopback):
            return True
        return self._wildcard  # bound to every address: any address literal names this server

    def _check_head(self, head: _Head, cert_ok: bool) -> tuple[str, int]:
        """Everything decided from the head alone. Returns the body framing ("none", "length", "chunked")
        and the declared length."""
        lim = self.limits
        te = head.lists.get("transfer-encoding")
        cls = head.lists.get("content-length")
        framing, length = "none", 0
        if te is not None:
            if cls is not None:
                raise _Refuse(400, "BadRequest", "a request may not carry both Content-Length and Transfer-Encoding", close=True)
            codings = [v.strip().lower() for value in te for v in value.split(",")]
            if codings != ["chunked"] or head.version != "HTTP/1.1":
                raise _Refuse(400, "BadRequest",
                              f"unsupported Transfer-Encoding {', '.join(te)!r}: only chunked is accepted", close=True)
            framing = "chunked"
        elif cls is not None:
            values = {v.strip() for value in cls for v in value.split(",")}
            if len(values) != 1 or not _DIGITS.match(next(iter(values))):
                raise _Refuse(400, "BadRequest", f"invalid Content-Length {', '.join(cls)!r}", close=True)
            length = int(next(iter(values)))
            framing = "length" if length else "none"
        pending = framing != "none"

        hosts = head.lists.get("host")
        if hosts is None:
            if head.version == "HTTP/1.1":
                raise _Refuse(400, "BadRequest", "missing Host header", close=pending)
        else:
            host = _split_host(hosts[0]) if len(hosts) == 1 else None
            if host is None:
                raise _Refuse(400, "BadRequest", "invalid Host header", close=pending)
            if not self._host_allowed(host):
                raise _Refuse(403, "Forbidden", f'host "{host}" is not served here: use {self.address}, localhost or a '
                              "loopback address (a foreign Host is refused against DNS rebinding)", close=pending)
        origin = head.headers.get("origin")
        if origin is not None:
            o = urlsplit(origin.strip()) if origin.strip() != "null" else None
            try:
                ohost = (o.hostname or "") if o is not None and o.scheme in ("http", "https") else ""
            except ValueError:
                ohost = ""
            if not ohost or not self._host_allowed(ohost.lower().rstrip(".")):
                raise _Refuse(403, "Forbidden", f"cross-origin requests are refused (Origin: {origin.strip()[:200]})",
                              close=pending)
        if head.headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
            raise _Refuse(403, "Forbidden", "cross-site requests are refused (Sec-Fetch-Site: cross-site)", close=pending)

        credential = self._credential(head, cert_ok)
        if not credential and not self.insecure:
            raise _Refuse(401, "Unauthorized", "Unauthorized", close=pending)

        if pending and head.method in _BODY_METHODS:
            ctype = head.headers.get("content-type", "").split(";")[0].strip().lower()
            if not ctype and not credential:
                # No credential (--insecure-plain-http): a body without Content-Type is what a web page can send
                # without a CORS preflight. With a credential it is JSON, as on the real apiserver (the Python
                # client sends none on create and replace).
                raise _Refuse(415, "UnsupportedMediaType", "the request body has no Content-Type - accepted media types "
                              f"include: {', '.join(_MEDIA_TYPES)}", close=True)
            if ctype and ctype not in _MEDIA_TYPES:
                raise _Refuse(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                              f"media types include: {', '.join(_MEDIA_TYPES)}", close=True)
        if framing == "length" and length > lim.max_body_bytes:
            raise _Refuse(413, "RequestEntityTooLarge",
                          f"the request body is larger than the limit of {lim.max_body_bytes} bytes", close=True)
        return framing, length

    def _credential(self, head: _Head, cert_ok: bool) -> bool:
        """Whether the request proved who it is: a client certificate the TLS context verified, or the token."""
        if cert_ok:
            return True
        token = self.token
        if token is None:
            return False
        given = head.headers.get("authorization", "")
        if not given[:7].lower() == "bearer ":
            return False
        return hmac.compare_digest(given[7:].strip().encode("latin-1", "replace"), token.encode())

    async def _read_body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: _Head,
                         framing: str, length: int) -> bytes:
        lim = self.limits
        if framing == "none":
            return b""
        if head.get("expect").lower() == "100-continue" and head.version == "HTTP/1.1":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout(lim.body_timeout):
                if framing == "length":
                    return await reader.readexactly(length)
                return await self._read_chunked(reader)
        except TimeoutError:
            raise _Refuse(408, "Timeout", f"the request body did not arrive within {lim.body_timeout:g}s", close=True) from None
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("the client closed the connection inside a body") from None

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        lim = self.limits
        parts: list[bytes] = []
        total = 0

        async def line() -> bytes:
            try:
                data = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise _Refuse(400, "BadRequest", "malformed chunked body: a chunk line is too long", close=True) from None
            if len(data) > 4096:
                raise _Refuse(400, "BadRequest", "malformed chunked body: a chunk line is too long", close=True)
            return data[:-2]

        while True:
            size_text = (await line()).split(b";", 1)[0].rstrip(b" \t")
            if not _HEX.match(size_text):
                raise _Refuse(400, "BadRequest", f"malformed chunked body: invalid chunk size {size_text[:40]!r}", close=True)
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > lim.max_body_bytes:
                raise _Refuse(413, "RequestEntityTooLarge",
                              f"the request body is larger than the limit of {lim.max_body_bytes} bytes", close=True)
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise _Refuse(400, "BadRequest", "malformed chunked body: a chunk does not end with CRLF", close=True)
        trailer_bytes = 0
        for _ in range(lim.max_headers + 1):  # trailers, ignored
            t = await line()
            trailer_bytes += len(t)
            if not t:
                return b"".join(parts)
            if trailer_bytes > lim.max_header_bytes:
                break
        raise _Refuse(431, "RequestHeaderFieldsTooLarge", "too many or too large chunked trailers", close=True)

    async def _request(self, raw: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       cert_ok: bool) -> bool:
        """One request. Returns whether the connection may carry another."""
        from kubesvc.apiserver.watch import WatchStream

        lim, c = self.limits, self.counters
        head = parse_head(raw, lim.max_headers)
        framing, length = self._check_head(head, cert_ok)
        conn_tokens = {t.strip().lower() for t in head.get("connection").split(",")}
        close = "close" in conn_tokens or (head.version == "HTTP/1.0" and "keep-alive" not in conn_tokens)
        req = handlers.Request.build(head.method, head.target, {}, b"")
        req.headers = dict(head.headers)
        is_watch = head.method in ("GET", "HEAD") and req.flag("watch")
        # exec, attach, port-forward, proxy and followed logs hold the connection like a watch (streams.py)
        is_watch = is_watch or streams.long_running(head.method, req.path, req.flag("follow"))
        if is_watch and c.watches >= lim.max_watches:
            raise _Refuse(429, "TooManyRequests", f"too many watches (the limit is {lim.max_watches}), please try again later",
                          close=framing != "none", headers=[("Retry-After", "1")])
        if not is_watch and c.inflight >= lim.max_requests_inflight:
            raise _Refuse(429, "TooManyRequests", "too many requests in flight, please try again later",
                          close=framing != "none", headers=[("Retry-After", "1")])
        req.body = await self._read_body(reader, writer, head, framing, length)
        if is_watch:
            c.watches += 1
        else:
            c.inflight += 1
        try:
            try:
                resp = await self._run_sync(self._handle, req)
            finally:
                if not is_watch:
                    c.inflight -= 1
            if isinstance(resp.stream, streams.Action):
                if resp.code == 101 and not streams.upgrade_kind(req.headers):
                    raise _Refuse(400, "BadRequest", "Upgrade request required", close=True)
                io = streams.StreamIO(reader, writer, head.method, head.target, head.version, head.items, self, raw)
                try:
                    return await resp.stream.serve(io)
                except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
                    raise
                except Exception:  # noqa: BLE001 - the connection speaks another protocol now: no HTTP Status on it
                    log.exception("stream failed: %s %s", req.method, req.path)
                    return False
            if isinstance(resp.stream, WatchStream):
                return await self._send_watch(reader, writer, head, resp, close)
            if resp.stream is not None:  # a plain iterator of chunks (a watch answered at once)
                return await self._send_stream(writer, head, resp, list(resp.stream), close)
            await self._send(writer, head, resp, close)
            return not close
        finally:
            if is_watch:
                c.watches -= 1

    def _handle(self, req: handlers.Request) -> handlers.Response:
        try:
            ctx = handlers.Context(self._registry(), self.address, self.stop_event, lambda: True, self.bookmark_interval)
            return handlers.handle(req, ctx)
        except Exception as e:  # noqa: BLE001 - the wire gets a Status, the log gets the story
            log.exception("request failed: %s %s", req.method, req.path)
            st = from_error(e)
            return handlers.json_response(st["code"], st)

    # ------------------------------------------------------------------------------------ responses

    def _head_bytes(self, code: int, content_type: str, headers: Iterable[tuple[str, str]], close: bool,
                    length: int | None, chunked: bool) -> bytes:
        lines = [f"HTTP/1.1 {code} {_REASON.get(code, 'Unknown')}", f"Content-Type: {content_type}",
                 "Cache-Control: no-cache, private", f"Date: {formatdate(usegmt=True)}"]
        # no header value may end the line early, whatever a handler put in it (response splitting)
        lines += [f"{k}: {_CTL.sub(' ', v)}" for k, v in headers]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.limits.idle_timeout):
            await writer.drain()

    async def _send(self, writer: asyncio.StreamWriter, head: _Head, resp: handlers.Response, close: bool) -> None:
        data = self._head_bytes(resp.code, resp.content_type, resp.headers, close, len(resp.body), False)
        writer.write(data if head.method == "HEAD" else data + resp.body)
        await self._drain(writer)

    async def _send_status(self, writer: asyncio.StreamWriter, code: int, reason: str, message: str,
                           headers: Sequence[tuple[str, str]] = (), close: bool = False) -> None:
        st = status(code, reason, message, {"retryAfterSeconds": 1} if code == 429 else None)
        resp = handlers.json_response(code, st)
        try:
            writer.write(self._head_bytes(code, resp.content_type, headers, close, len(resp.body), False) + resp.body)
            await self._drain(writer)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass

    async def _send_stream(self, writer: asyncio.StreamWriter, head: _Head, resp: handlers.Response,
                           chunks: list[bytes], close: bool) -> bool:
        chunked = head.version == "HTTP/1.1"
        close = close or not chunked
        writer.write(self._head_bytes(resp.code, resp.content_type, resp.headers, close, None, chunked))
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            writer.write(b"0\r\n\r\n")
        await self._drain(writer)
        return not close

    async def _send_watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: _Head,
                          resp: handlers.Response, close: bool) -> bool:
        chunked = head.version == "HTTP/1.1"
        close = close or not chunked
        writer.write(self._head_bytes(resp.code, resp.content_type, resp.headers, close, None, chunked))
        stream: Any = resp.stream  # a watch.WatchStream
        gone = asyncio.Event()
        got_data = False

        async def watch_client() -> None:
            nonlocal got_data
            try:
                data = await reader.read(1)
                got_data = bool(data)
            except (ConnectionError, ssl.SSLError):
                pass
            gone.set()
            stream.wake()

        monitor = asyncio.get_running_loop().create_task(watch_client())

        async def send(line: bytes) -> None:
            writer.write(b"%x\r\n%s\r\n" % (len(line), line) if chunked else line)
            await self._drain(writer)

        try:
            await stream.run(self.hub, send, gone)
            if gone.is_set():
                return False
            if chunked:
                writer.write(b"0\r\n\r\n")
            await self._drain(writer)
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
        return not close and not got_data and not gone.is_set()

    async def _refuse_now(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, r: _Refuse) -> None:
        try:
            await self._send_status(writer, r.code, r.reason, r.message, r.headers, close=True)
            await self._linger(reader, writer)
        finally:
            writer.close()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Half-close, then discard a bounded amount of what the client still sends, so that closing does not
        reset the connection before the client has read the answer (never the rest of a large body)."""
        try:
            if writer.can_write_eof():
                writer.write_eof()
            seen = 0
            async with asyncio.timeout(_LINGER_SECONDS):
                while seen < _LINGER_BYTES:
                    data = await reader.read(65536)
                    if not data:
                        break
                    seen += len(data)
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError, RuntimeError):
            pass


def _runner() -> asyncio.Runner:
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.Runner()


def serve(store_path: str, host: str, port: int, token: str | None, ready: Any = None,
          stop: threading.Event | None = None, bookmark_interval: float = 30.0,
          ssl_context: ssl.SSLContext | None = None, insecure: bool = False, limits: Limits | None = None,
          hosts: Iterable[str] = ()) -> int:
    """Run until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT). ``ready(server)`` after binding."""
    server = ApiServer(store_path, host, port, token, bookmark_interval, ssl_context=ssl_context, insecure=insecure,
                       limits=limits, hosts=hosts)
    server.start()
    try:
        if ready is not None:
            ready(server)
        (stop or threading.Event()).wait()
    finally:
        server.stop()
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


__all__ = ["ApiServer", "Limits", "serve", "kubeconfig", "is_loopback", "parse_head"]
