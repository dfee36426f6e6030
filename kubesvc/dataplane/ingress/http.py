"""The client side of the router: one httptools-driven protocol per downstream connection.

Rules kept here (dataplane spec §3.3, §3.4):
- Parsing is httptools (llhttp) only; a parse error is 400 (414 for a request line over ``max_line``,
  431 for a header over ``max_line`` or a head over ``max_header_bytes``/``max_headers``), then close.
- Per request: route (404), 308 to HTTPS for TLS hosts on the plain listener, body limit (413 from
  Content-Length at once, or when a streamed body passes it), 503 when the Service has no ready endpoint,
  then the upstream. Connect failures try the next endpoint (``retries`` dials in all): 502 when all are
  refused, 504 on connect or read timeout, 502 when the upstream breaks before answering.
- Bodies stream in both directions without being buffered whole: the read side pauses when the write side's
  transport pauses (and while a dial is in flight once ``BUFFER_LIMIT`` is buffered). Chunked bodies are
  re-framed (httptools hands out de-chunked data; trailers are dropped).
- Request headers: hop-by-hop ones (Connection and what it lists, Keep-Alive, Proxy-Connection, TE, Trailer,
  Transfer-Encoding, Upgrade, Proxy, Expect) are removed; Host is kept; X-Request-ID kept or made;
  X-Real-IP, X-Forwarded-For (replaced; an incoming one moves to X-Original-Forwarded-For),
  X-Forwarded-Host, X-Forwarded-Port, X-Forwarded-Proto, X-Forwarded-Scheme and X-Scheme are set.
  ``Expect: 100-continue`` is answered by the router itself (as nginx does).
- Responses: hop-by-hop headers removed; HSTS added on HTTPS; chunked to HTTP/1.1 clients when the upstream
  length is unknown, close-delimited to HTTP/1.0 ones.
- WebSocket (any Upgrade): the head is forwarded with ``Connection: upgrade``; a 101 turns both sides into
  a raw tunnel; any other answer is a plain response and the client connection closes after it.
- Timeouts (seconds, checked by a sweep every 0.25 s): the request head must arrive within
  ``header_timeout`` from its first byte (slowloris: 408 and close), successive body reads within
  ``body_timeout``, a client that stops reading is cut after ``send_timeout``, idle keep-alive after
  ``keepalive_timeout``.
- Pipelined requests are answered in order; while one is in flight the next is held (reading paused).
- A request or an answer whose exact head bytes were parsed before is replayed from that parse (``replay``,
  ``replay_response``; see ``exchange``): same bytes out as the parsed path, about a third of the Python per request.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from random import getrandbits
from typing import Any

import httptools

from kubesvc.dataplane.ingress import responses
from kubesvc.dataplane.ingress.exchange import (
    BUFFER_LIMIT,
    HOP,
    HSTS,
    IDEMPOTENT,
    LINGER,
    PLAIN_CONNECTION,
    RECORD,
    Exchange,
    HTTPConfig,
    Reject,
    Shared,
    drop_listed,
)
from kubesvc.dataplane.ingress.upstream import STATUS_LINES, Clock, Endpoint, Upstream, UpstreamConn, reason_phrase
from kubesvc.dataplane.observe import HUB

log = logging.getLogger("kubesvc.ingress")

__all__ = ["ClientConn", "HTTPConfig", "Shared"]


class ClientConn(asyncio.Protocol):
    def __init__(self, shared: Shared, scheme: str) -> None:
        self.shared = shared
        self.cfg = shared.cfg
        self.scheme = scheme
        self.https = scheme == "https"
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.peer = "-"
        self.port = b"80"
        self.cur: Exchange | None = None
        self.parsing: Exchange | None = None
        self.pending: collections.deque[Exchange] = collections.deque()
        self.pauses: set[str] = set()
        self.deadline = 0.0
        self.deadline_kind = ""
        self.closing = False
        self.write_paused = False
        self.tunnel_up: UpstreamConn | None = None
        self.early: list[bytes] = []  # bytes after an Upgrade head, held until the 101
        self.read_timeout = self.cfg.read_timeout
        self.eof = False
        self.lingering = False
        self.obuf: list[bytes] | None = None
        self.learning = 0  # > 0 while a chunk that began between requests is parsed (see ``Shared.request_heads``)
        self.learned: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------------------ asyncio
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "-"
        sock = transport.get_extra_info("sockname")
        self.port = str(sock[1]).encode() if sock else b"80"
        peer_b = self.peer.encode()
        scheme = b"https" if self.https else b"http"
        self.forwarded = (b"\r\nX-Real-IP: %s\r\nX-Forwarded-For: %s\r\nX-Forwarded-Port: %s\r\nX-Forwarded-Proto: %s"
                          b"\r\nX-Forwarded-Scheme: %s\r\nX-Scheme: %s\r\n" % (peer_b, peer_b, self.port, scheme, scheme, scheme))
        self.shared.conns.add(self)
        self._deadline("header", self.cfg.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.shared.conns.discard(self)
        for ex in [self.cur, *self.pending]:
            if ex is not None and ex.up is not None:
                ex.up.abort()
                ex.up = None
        if self.tunnel_up is not None:
            self.tunnel_up.close()
            self.tunnel_up = None
        self.cur = None
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.tunnel_up is not None:
            self.tunnel_up.write(data)
            return
        if self.closing or self.lingering:
            return
        cur = self.cur
        self.learned = None
        self.learning = 0
        if cur is None:
            if self.parsing is None:  # between requests: a head seen before skips the parser
                cache = self.shared.request_heads
                seen = cache.map.get(data)
                if seen is not None:
                    cache.credit = cache.CREDIT
                    self.replay(seen)
                    return
                self.learning = 1 if cache.may_learn() else 0
        elif cur.upgrade and cur.complete_head:
            if len(self.early) < 64:
                self.early.append(data)
            else:
                self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            off = e.args[0] if e.args else len(data)
            if off < len(data):
                self.early.append(data[off:])
        except Reject as e:
            self.fail(e.status)
        except httptools.HttpParserError as e:
            cause = e.__context__
            if isinstance(cause, Reject):
                self.fail(cause.status)
                return
            if cause is not None:  # a bug in a callback: log it, answer 500, keep serving others
                log.error("error while handling a request", exc_info=cause)
                self.fail(500)
                return
            log.debug("bad request", extra={"kv": {"client": self.peer, "error": str(e)}})
            self.fail(400)
        else:
            if self.learning == 2 and self.learned is not None and self.parsing is None:
                self.shared.request_heads.remember(data, self.learned)

    def eof_received(self) -> bool:
        """A client that half-closes after its requests still gets the answers (then the connection closes)."""
        self.eof = True
        if self.lingering:
            return False
        if self.tunnel_up is not None:
            self.tunnel_up.write_eof()
            return True
        return self.cur is not None

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.cur
        if ex is not None and ex.up is not None:
            ex.up.pause_reading()
            ex.up.deadline = 0.0  # a slow client is not a slow upstream
        if self.tunnel_up is not None:
            self.tunnel_up.pause_reading()
        self._deadline("send", self.cfg.send_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.cur
        if ex is not None and ex.up is not None:
            ex.up.resume_reading()
            if ex.body_done:
                ex.up.deadline = Clock.now + self.read_timeout
        if self.tunnel_up is not None:
            self.tunnel_up.resume_reading()
        if self.deadline_kind == "send":
            self._deadline("", 0)

    # ------------------------------------------------------------------------------ flow control
    def pause(self, why: str) -> None:
        if not self.pauses and self.transport is not None and not self.closing:
            self.transport.pause_reading()
        self.pauses.add(why)

    def resume(self, why: str) -> None:
        if why in self.pauses:
            self.pauses.discard(why)
            if not self.pauses and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    def _deadline(self, kind: str, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = Clock.now + seconds if seconds else 0.0

    def on_timeout(self) -> None:
        kind = self.deadline_kind
        self.deadline = 0.0
        ex = self.cur
        if kind == "header" and ex is not None and not ex.head_sent and not ex.complete_head:
            self.fail(408)
        elif kind == "body" and ex is not None and not ex.head_sent:
            self.fail(408)
        else:
            self.abort()

    # ------------------------------------------------------------------------------ request parsing
    def replay(self, seen: tuple[Any, ...]) -> None:
        """The request is exactly a head parsed and checked before (``Shared.request_heads``): route it as ``start``
        would, from what ``start`` kept of it, without the parser."""
        ex = Exchange()
        ex.method, ex.version, ex.keep_alive, host, url, rid, ex.prefix, ex.tail, ex.special = seen
        ex.host = host
        ex.url = url
        ex.req_id = rid or b"%032x" % getrandbits(128)
        ex.complete_head = True
        ex.body_done = True
        self.cur = ex
        self.route(ex, host, url)

    def on_message_begin(self) -> None:
        if self.learning:
            self.learning += 1  # 2: the first message of this chunk; more: not one lone request
        ex = Exchange()
        self.parsing = ex
        if self.cur is None:
            self.cur = ex
            self.deadline_kind = "header"
            self.deadline = Clock.now + self.cfg.header_timeout
        else:
            self.pending.append(ex)
            self.pause("pipeline")

    def on_url(self, url: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        ex.url += url
        if len(ex.url) > self.cfg.max_line:
            raise Reject(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.parsing
        assert ex is not None
        n = len(name) + len(value)
        ex.head_bytes += n + 4
        ex.nheaders += 1
        cfg = self.cfg
        if n > cfg.max_line or ex.head_bytes > cfg.max_header_bytes or ex.nheaders > cfg.max_headers:
            raise Reject(431)
        ln = name.lower()
        if ln in HOP:
            ex.special[ln] = value
            return
        if ln in RECORD:
            if ln in ex.special and ln == b"host":
                ex.dup_host = True
            ex.special[ln] = value
        ex.hout += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        ex = self.parsing
        assert ex is not None
        p = self.parser
        ex.method = p.get_method()
        ex.version = p.get_http_version()
        ex.keep_alive = p.should_keep_alive()
        ex.upgrade = p.should_upgrade()
        ex.complete_head = True
        if self.learning == 2:
            sp = ex.special
            ex.cacheable = (not ex.upgrade and not ex.dup_host and b"content-length" not in sp
                            and b"transfer-encoding" not in sp and b"expect" not in sp)
        if ex is self.cur:
            self.start(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is None or ex.done:
            return
        ex.body_seen += len(body)
        if ex.limit and ex.body_seen > ex.limit:
            raise Reject(413)
        if ex is self.cur:
            self.deadline = Clock.now + self.cfg.body_timeout
        up = ex.up
        if up is not None and ex is self.cur and not ex.body:
            if ex.chunked:
                up.write(b"%x\r\n%b\r\n" % (len(body), body))
            else:
                up.write(body)
        else:
            if ex.body is None:
                ex.body = []
            ex.body.append(body)
            ex.buffered += len(body)
            if ex.buffered > BUFFER_LIMIT:
                self.pause("buffer")

    def on_message_complete(self) -> None:
        ex = self.parsing
        self.parsing = None
        if ex is None or ex.done:
            return
        ex.body_done = True
        if ex is self.cur:
            if self.deadline_kind in ("header", "body"):
                self._deadline("", 0)
            up = ex.up
            if up is not None and not ex.body:
                if ex.chunked:
                    up.write(b"0\r\n\r\n")
                up.deadline = Clock.now + self.read_timeout

    # ------------------------------------------------------------------------------ routing
    def start(self, ex: Exchange) -> None:
        sp = ex.special
        if ex.dup_host:
            return self.fail(400)
        host = sp.get(b"host", b"")
        if sp:
            if b"content-length" in sp:
                v = sp[b"content-length"]
                ex.clen = int(v) if v.isdigit() else -1
            if b"transfer-encoding" in sp:
                ex.chunked = True
            if sp.get(b"expect", b"").lower() == b"100-continue":
                ex.expect = True
        rid = sp.get(b"x-request-id", b"")
        url = ex.url
        if url[:1] != b"/":
            if url.startswith((b"http://", b"https://")):
                try:
                    u = httptools.parse_url(url)
                except httptools.HttpParserInvalidURLError:
                    return self.fail(400)
                host = u.host + (b":%d" % u.port if u.port else b"")
                url = (u.path or b"/") + (b"?" + u.query if u.query else b"")
                ex.url = url
            elif ex.method == b"OPTIONS" and url == b"*":
                pass
            elif ex.method == b"CONNECT":
                return self.fail(405)
            else:
                return self.fail(400)
        if not host and ex.version == "1.1":
            return self.fail(400)
        if host and not valid_host(host):
            return self.fail(400)
        ex.host = host
        ex.req_id = rid or b"%032x" % getrandbits(128)
        if ex.cacheable:  # what a replay of these exact bytes needs (see ``replay``)
            ex.prefix, ex.tail = self.head_parts(ex)
            self.learned = (ex.method, ex.version, ex.keep_alive, host, url, rid, ex.prefix, ex.tail, sp)
        self.route(ex, host, url)

    def route(self, ex: Exchange, host: bytes, url: bytes) -> None:
        shared = self.shared
        q = url.find(b"?")
        key = (host, url if q < 0 else url[:q])
        hit = shared.route_cache.get(key)
        if hit is None:
            hit = shared.lookup(host, key[1])
        route, redirect, up, limit = hit
        if route is None:
            return self.respond(ex, 404 if redirect is None else 400)
        ex.route = route
        if redirect is not None and not self.https:
            return self.respond(ex, 308, location=redirect + url)
        ex.limit = limit
        if limit and ex.clen > limit:
            return self.respond(ex, 413)
        if up is None or not up.endpoints:
            return self.respond(ex, 503)
        if ex.body_done:
            self.deadline = 0.0
        else:
            if ex.expect:
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            if ex.chunked or ex.clen > 0:
                self._deadline("body", self.cfg.body_timeout)
            else:
                self.deadline = 0.0
        self.dial(ex, up)

    def dial(self, ex: Exchange, up: Upstream) -> None:
        ep = up.next()
        ex.endpoint = ep
        conn = self.shared.pool.take(ep)
        if conn is not None:
            ex.reused = True
            self.attach(ex, conn)
            return
        ex.reused = False
        if ex.buffered > BUFFER_LIMIT:
            self.pause("connect")
        self.shared.spawn(self._connect(ex, up, ep))

    async def _connect(self, ex: Exchange, up: Upstream, ep: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        pool = self.shared.pool
        status = 502
        try:
            async with asyncio.timeout(self.cfg.connect_timeout):
                _, conn = await loop.create_connection(lambda: UpstreamConn(pool, ep), ep[0], ep[1])
        except TimeoutError:
            status = 504
        except OSError:
            status = 502
        else:
            if self.closing or ex is not self.cur or ex.done:
                conn.close()
                return
            self.attach(ex, conn)
            return
        if self.closing or ex is not self.cur or ex.done:
            return
        ex.tries += 1
        if ex.tries < self.cfg.retries and up.endpoints:
            self.dial(ex, up)
        else:
            self.respond(ex, status)

    def attach(self, ex: Exchange, conn: UpstreamConn) -> None:
        ex.up = conn
        conn.owner = self
        conn.tunnel = False
        conn.got_data = False
        conn.write(self.request_head(ex))
        if ex.body:
            chunks, ex.body, ex.buffered = ex.body, None, 0
            if ex.chunked:
                conn.write(b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks))
            else:
                conn.write(b"".join(chunks))
            self.resume("buffer")
        if self.pauses:
            self.resume("connect")
        if ex.body_done:
            if ex.chunked:
                conn.write(b"0\r\n\r\n")
            conn.deadline = Clock.now + self.read_timeout

    def request_head(self, ex: Exchange) -> bytes:
        if ex.prefix is None:
            ex.prefix, ex.tail = self.head_parts(ex)
        return b"".join((ex.prefix, b"X-Request-ID: ", ex.req_id, b"\r\nX-Forwarded-Host: ", ex.host, self.forwarded, ex.tail))

    def head_parts(self, ex: Exchange) -> tuple[bytes, bytes]:
        """The request head for the upstream, less what differs per request and client (X-Request-ID,
        X-Forwarded-Host and the per-connection X-Forwarded-* block): the part before, the part after."""
        sp = ex.special
        out = [ex.method, b" ", ex.url, b" HTTP/1.1\r\n", *ex.hout]
        tokens = sp.get(b"connection")
        if tokens is not None and tokens.lower() not in PLAIN_CONNECTION:
            drop_listed(out, 4, tokens)
        tail: list[bytes] = []
        xff = sp.get(b"x-forwarded-for", b"")
        upgrade_value = sp.get(b"upgrade", b"") if ex.upgrade else b""
        if xff:
            tail += (b"X-Original-Forwarded-For: ", xff, b"\r\n")
        if ex.upgrade and upgrade_value:
            tail += (b"Connection: upgrade\r\nUpgrade: ", upgrade_value, b"\r\n")
        elif ex.chunked:
            tail.append(b"Transfer-Encoding: chunked\r\n")
        elif ex.clen >= 0:
            tail += (b"Content-Length: ", str(ex.clen).encode(), b"\r\n")
        tail.append(b"\r\n")
        return b"".join(out), b"".join(tail)

    # ------------------------------------------------------------------------------ responses from upstream
    def response_head(self, conn: UpstreamConn, status: int, hout: list[bytes], special: dict[bytes, bytes], keep: bool) -> None:
        ex = self.cur
        if ex is None or ex.up is not conn:
            return
        if 100 <= status < 200 and status != 101:
            ex.interim = True
            if ex.version == "1.1" and not ex.expect:
                self.send(b"HTTP/1.1 %d %s\r\n\r\n" % (status, reason_phrase(status)))
            return
        ex.status = status
        ex.upstream_status = status
        ex.up_keep = keep
        out = [STATUS_LINES.get(status) or b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status)), *hout]
        tokens = special.get(b"connection")
        if tokens is not None and tokens.lower() not in PLAIN_CONNECTION:
            drop_listed(out, 1, tokens)
        clen = special.get(b"content-length", b"")
        upgrade_value = special.get(b"upgrade", b"")
        if self.https and self.cfg.hsts:
            out.append(HSTS)
        no_body = ex.method == b"HEAD" or status in (204, 304)
        if status == 101 and ex.upgrade:
            ex.tunnel = True
            conn.tunnel = True
            out += (b"Connection: upgrade\r\nUpgrade: ", upgrade_value, b"\r\n\r\n")
            self._write_head(ex, b"".join(out))
            return
        if ex.upgrade:
            ex.keep_alive = False  # the client's parser sits after an Upgrade head: close after this answer
        if no_body:
            if clen:
                out += (b"Content-Length: ", clen, b"\r\n")
        elif clen:
            out += (b"Content-Length: ", clen, b"\r\n")
        elif ex.version == "1.1":
            ex.out_chunked = True
            out.append(b"Transfer-Encoding: chunked\r\n")
        else:
            ex.out_close = True
        if ex.out_close or not ex.keep_alive or not ex.body_done:
            ex.keep_alive = False
            out.append(b"Connection: close\r\n\r\n")
        elif ex.version == "1.0":
            out.append(b"Connection: keep-alive\r\n\r\n")
        else:
            out.append(b"\r\n")
        self._write_head(ex, b"".join(out))
        if no_body and ex.method == b"HEAD":
            # llhttp would wait for the announced body: the message is over, start a fresh parser
            conn.reset_parser()
            self.response_done(conn)

    def replay_response(self, conn: UpstreamConn, seen: tuple[Any, ...], data: bytes, head_end: int) -> bool:
        """A whole answer (head + body) in one chunk whose head was parsed before (``Pool.response_heads``): written
        to the client as ``response_head`` + ``response_body`` + ``response_done`` would, without the parser.
        False: this request needs the general path (HEAD, Upgrade, body still coming, ...)."""
        ex = self.cur
        if ex is None or ex.up is not conn or ex.head_sent or not ex.body_done or ex.upgrade or ex.method == b"HEAD":
            return False
        status, clen, status_line, lines, length = seen
        ex.status = ex.upstream_status = status
        ex.head_sent = True
        ex.sent = clen
        if not ex.keep_alive:
            end = b"Connection: close\r\n\r\n"
        elif ex.version == "1.0":
            end = b"Connection: keep-alive\r\n\r\n"
        else:
            end = b"\r\n"
        hsts = HSTS if self.https and self.cfg.hsts else b""
        self.transport.write(b"".join((status_line, lines, hsts, length, end, data[head_end:])))
        ex.up = None
        self.shared.pool.release(conn)
        self.finish(ex)
        return True

    def _write_head(self, ex: Exchange, head: bytes) -> None:
        ex.head_sent = True
        self.send(head)

    def response_body(self, data: bytes) -> None:
        ex = self.cur
        if ex is None or not ex.head_sent or ex.done:
            return
        ex.sent += len(data)
        if ex.out_chunked:
            self.send(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self.send(data)

    def response_done(self, conn: UpstreamConn) -> None:
        ex = self.cur
        if ex is None or ex.up is not conn:
            return
        if ex.interim:
            ex.interim = False
            return
        if ex.tunnel:
            return  # the HttpParserUpgrade that follows opens the tunnel
        if ex.out_chunked:
            self.send(b"0\r\n\r\n")
        ex.up = None
        if ex.up_keep and ex.body_done:
            self.shared.pool.release(conn)
        else:
            conn.close()
        self.finish(ex)

    def tunnel_open(self, rest: bytes) -> None:
        ex = self.cur
        if ex is None or ex.up is None:
            return
        conn = ex.up
        conn.deadline = 0.0
        self.tunnel_up = conn
        self.shared.pool.live.discard(conn)
        ex.status = 101
        self._deadline("", 0)
        self.log(ex)
        if rest:
            self.send(rest)
        for chunk in self.early:
            conn.write(chunk)
        self.early = []
        self.resume("pipeline")

    def tunnel_to_client(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def upstream_lost(self, conn: UpstreamConn) -> None:
        ex = self.cur
        if conn is self.tunnel_up:
            self.tunnel_up = None
            self.close()
            return
        if ex is None or ex.up is not conn:
            return
        ex.up = None
        if not ex.head_sent:
            up = self.shared.upstreams.get(ex.route.backend.key) if ex.route else None
            if (ex.reused and not conn.got_data and ex.method in IDEMPOTENT and ex.body_seen == 0
                    and ex.body_done and up is not None and up.endpoints):
                ex.reused = False
                return self.dial(ex, up)  # the pooled connection was closed under us: try a fresh one
            return self.respond(ex, 502)
        if ex.out_close and ex.status:  # a close-delimited body ended
            self.finish(ex)
            return
        self.abort()

    def upstream_failed(self, status: int, why: str) -> None:
        ex = self.cur
        if ex is None:
            return
        up, ex.up = ex.up, None
        if up is not None:
            up.abort()
        if not ex.head_sent:
            self.respond(ex, status)
        else:
            self.abort()

    def upstream_timeout(self, conn: UpstreamConn) -> None:
        self.upstream_failed(504, "upstream timed out")

    # ------------------------------------------------------------------------------ local answers
    def respond(self, ex: Exchange, status: int, location: bytes = b"") -> None:
        """Answer from the router itself; closes the connection when the request body was not read."""
        if ex.up is not None:
            ex.up.abort()
            ex.up = None
        ex.status = status
        if not ex.body_done or ex.upgrade:
            ex.keep_alive = False
        self._write_head(ex, responses.render(status, ex.keep_alive, location, self.https and self.cfg.hsts))
        ex.sent = responses.body_length(status)
        self.finish(ex)

    def fail(self, status: int) -> None:
        """A request we cannot parse or accept: answer ``status`` if nothing was sent yet, then close."""
        ex = self.cur or self.parsing or Exchange()
        if self.cur is None:
            self.cur = ex
        if ex.head_sent or ex.tunnel:
            self.abort()
            return
        ex.keep_alive = False
        ex.body_done = False
        self.respond(ex, status)

    def finish(self, ex: Exchange) -> None:
        if ex.done:
            return
        ex.done = True
        if self.shared.access_log is not None:
            self.log(ex)
        if HUB.on:
            HUB.ingress_exchange(self.peer, ex)
        self.shared.requests += 1
        if self.closing:
            return
        if not ex.keep_alive or ex.out_close or (self.eof and not self.pending):
            if not ex.body_done and not self.eof:
                self.linger()
            else:
                self.close()
            return
        self.cur = None
        if self.pending:
            nxt = self.pending.popleft()
            self.cur = nxt
            if not self.pending:
                self.resume("pipeline")
            if nxt.complete_head:
                self.start(nxt)
            else:
                self._deadline("header", self.cfg.header_timeout)
            return
        if self.pauses:
            self.resume("pipeline")
        self.deadline_kind = "idle"
        self.deadline = Clock.now + self.cfg.keepalive_timeout

    def log(self, ex: Exchange) -> None:
        if self.shared.access_log is not None:
            self.shared.access_log(responses.access_line(self.peer, ex))

    def busy(self) -> bool:
        """A request is being answered (what a graceful stop waits for); tunnels and idle ones are not."""
        ex = self.cur
        return ex is not None and ex.complete_head and not ex.done and not ex.tunnel and not self.closing

    def linger(self) -> None:
        """Answered before the request body was read: stop writing, read and drop what the client still
        sends for up to LINGER seconds, so the answer is not lost to a reset (nginx's lingering close)."""
        self.lingering = True
        self.pauses.clear()
        self.flush()
        t = self.transport
        if t is None or self.closing:
            return
        t.resume_reading()
        if t.can_write_eof():
            t.write_eof()
        self._deadline("linger", LINGER)

    def send(self, data: bytes) -> None:
        """Write to the client; while an upstream chunk is being parsed, writes are gathered (``obuf``) and
        go out as one ``write`` when the parse returns: head and body of a small answer share one syscall."""
        if self.obuf is not None:
            self.obuf.append(data)
        elif self.transport is not None:
            self.transport.write(data)

    def flush(self) -> None:
        buf, self.obuf = self.obuf, None
        if buf and self.transport is not None and not self.transport.is_closing():
            self.transport.write(buf[0] if len(buf) == 1 else b"".join(buf))

    def close(self) -> None:
        self.flush()
        if not self.closing:
            self.closing = True
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.closing = True
        self.obuf = None
        ex = self.cur
        if ex is not None and ex.up is not None:
            ex.up.abort()
            ex.up = None
        if self.transport is not None:
            self.transport.abort()


_HOST_BAD = re.compile(rb"[\x00-\x20/\\?#@\x7f-\xff]|\.\.|^\.")


def valid_host(host: bytes) -> bool:
    """A Host header nginx would route: name or address, then an optional port of 1-65535 (RFC 9110 §7.2).
    No path, userinfo, spaces, control bytes or empty labels."""
    if host[:1] == b"[":
        end = host.find(b"]")
        if end < 0:
            return False
        rest = host[end + 1 :]
        name = host[1:end]
        if not name or not re.fullmatch(rb"[0-9A-Fa-f:.]+", name):
            return False
    else:
        colon = host.find(b":")
        name, rest = (host, b"") if colon < 0 else (host[:colon], host[colon:])
        if not name or _HOST_BAD.search(name):
            return False
    if rest:
        port = rest[1:]
        if rest[:1] != b":" or (port and not (port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535)):
            return False
    return True
