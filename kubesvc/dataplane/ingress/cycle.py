"""The request/response cycle of a client connection (the second of ``ClientConn``'s parts, as uvicorn's
``RequestResponseCycle``): routing a parsed request, dialling or reusing an upstream connection, the request head
sent upstream, the answer passed back (parsed or replayed), the router's own answers, and the end of an exchange.

The rules are listed in ``http``; the per-request state is the ``exchange.Exchange``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from binascii import hexlify
from random import getrandbits
from typing import Any

import httptools

from kubesvc.dataplane.ingress import lane, responses
from kubesvc.dataplane.ingress.exchange import BUFFER_LIMIT, HSTS, IDEMPOTENT, PLAIN_CONNECTION, Exchange, Hit, drop_listed
from kubesvc.dataplane.ingress.flow import FlowControl
from kubesvc.dataplane.ingress.upstream import STATUS_LINES, Clock, Endpoint, Upstream, UpstreamConn, reason_phrase
from kubesvc.dataplane.observe import HUB

log = logging.getLogger("kubesvc.ingress")


def new_request_id() -> bytes:
    """32 random lower-case hex digits, as ingress-nginx's ``$request_id`` (this spelling costs 0.17 us, ``%032x``
    formatting 0.45 us: it runs on every request without an X-Request-ID)."""
    return hexlify(getrandbits(128).to_bytes(16, "big"))


class Cycle(FlowControl):
    """Routing, upstream and answers for the current exchange (``self.cur``). Not used alone: see ``ClientConn``."""

    peer: str
    https: bool
    forwarded: bytes
    parsing: Exchange | None
    pending: collections.deque[Exchange]
    early: list[bytes]
    eof: bool
    learned: tuple[Any, ...] | None

    def replay(self, seen: tuple[Any, ...], hit: Hit | None = None) -> None:
        """The request is exactly a head parsed and checked before (``Shared.request_heads``), or read by
        ``_heads.request`` and checked (``ClientConn.quick_checks``, which passes its route ``hit``): route it as
        ``start`` would, from what ``start`` kept of it, without the parser."""
        ex = Exchange()
        ex.method, ex.version, ex.keep_alive, host, url, rid, ex.prefix, ex.tail, ex.special = seen
        ex.host = host
        ex.url = url
        ex.req_id = rid or new_request_id()
        ex.complete_head = True
        ex.body_done = True
        self.cur = ex
        self.route(ex, host, url, hit)

    def materialize(self, data: bytes, rid: bytes, hit: Hit, ep: Endpoint, conn: UpstreamConn | None, started: float,
                    status: int, sent: int) -> Exchange:
        """The ``Exchange`` of a fast-lane exchange (``lane``), as ``replay`` and ``route`` would have left it:
        request ``data`` sent on ``conn`` to ``ep`` (``hit`` its route-cache entry), answered with ``status`` and
        ``sent`` body bytes when ``status`` is set. Called by the compiled ``cur`` when Python code reads it."""
        ex = Exchange()
        ex.method, ex.version, ex.keep_alive, ex.host, ex.url, _, ex.prefix, ex.tail, ex.special = lane.BUILT.request(data, self.cfg.max_headers)
        ex.req_id = rid
        ex.complete_head = True
        ex.body_done = True
        ex.route = hit[0]
        ex.limit = hit[3]
        ex.endpoint = ep
        ex.reused = True
        ex.up = conn
        ex.started = started
        if status:
            ex.status = ex.upstream_status = status
            ex.head_sent = True
            ex.sent = sent
        return ex

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
        if host and not (self.shared.hosts.get(host) or self.shared.host(host))[0]:  # valid_host, remembered
            return self.fail(400)
        ex.host = host
        ex.req_id = rid or new_request_id()
        if ex.cacheable:  # what a replay of these exact bytes needs (see ``replay``)
            ex.prefix, ex.tail = self.head_parts(ex)
            self.learned = (ex.method, ex.version, ex.keep_alive, host, url, rid, ex.prefix, ex.tail, sp)
        self.route(ex, host, url)

    def route(self, ex: Exchange, host: bytes, url: bytes, hit: Hit | None = None) -> None:
        if hit is None:
            hit = self.shared.route_hit(host, url)
        route, redirect, up, limit = hit
        if not ex.body_done and ex.clen <= 0 and not ex.chunked and not ex.upgrade:
            ex.body_done = True  # no Content-Length (or 0) and no Transfer-Encoding: no body, as llhttp will say next
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

    def replayable(self, conn: UpstreamConn) -> bool:
        """Whether an answer on ``conn`` may be written by ``replay_response`` (its first check)."""
        ex = self.cur
        return not (ex is None or ex.up is not conn or ex.head_sent or not ex.body_done or ex.upgrade or ex.method == b"HEAD")

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
