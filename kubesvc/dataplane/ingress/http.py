"""The client side of the router: one httptools-driven protocol per downstream connection.

``ClientConn`` is split as uvicorn splits its protocols: this module is the protocol (asyncio's callbacks and the
request parser's), ``cycle.Cycle`` the request/response cycle (routing, the upstream, the answer, the router's own
answers), ``flow.FlowControl`` the flow control (read pauses, the write side, deadlines, gathered writes, closing).
They are one class through inheritance, so the per-request path makes no extra hop between objects.

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
- A new plain head (one bodyless request in its chunk, or an answer with its whole body) is read in one call of the
  compiled ``_heads`` module where it was built (optional, C; ``exchange.request_py`` and ``upstream.answer_py``
  are its references), llhttp only validating it, then replayed as a cached one would be; anything else, and every
  head where the module is missing or ``KUBESVC_INGRESS_COMPILED=0``, takes the parser's callbacks. Same bytes out.
- Where the module was built, a plain exchange (such a request to an idle pooled connection, answered plainly and
  whole) never reaches this module's Python at all: ``ClientConn``'s compiled base forwards it (the fast lane, see
  ``lane``), and ``data_received`` hands everything else to ``general_data_received``.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

import httptools

from kubesvc.dataplane.ingress import lane
from kubesvc.dataplane.ingress.cycle import Cycle
from kubesvc.dataplane.ingress.exchange import BUFFER_LIMIT, HOP, HSTS, RECORD, Exchange, Hit, HTTPConfig, Reject, Shared, valid_host
from kubesvc.dataplane.ingress.upstream import SERVER_LINE, STATUS_LINES, Clock, UpstreamConn
from kubesvc.dataplane.observe import HUB

log = logging.getLogger("kubesvc.ingress")

request_c = lane.BUILT.request if lane.BUILT is not None else None  # None: built without a C compiler
# what ``ClientConn.data_received`` uses for a new request head; KUBESVC_INGRESS_COMPILED=0 turns it off
REQUEST_HEAD = request_c if lane.ENABLED else None


class _NoCallbacks:
    """The protocol of ``ClientConn.checker``: llhttp only validates and frames (no callback at all)."""


def _request_checker() -> httptools.HttpRequestParser:
    return httptools.HttpRequestParser(_NoCallbacks())


if lane.ENABLED:
    lane.BUILT.setup(STATUS_LINES, SERVER_LINE, Clock, HUB, _request_checker)

__all__ = ["ClientConn", "HTTPConfig", "Shared", "valid_host"]


class ClientConn(Cycle):
    """The protocol: asyncio's connection callbacks and the request parser's. The request/response cycle is
    ``cycle.Cycle``, flow control ``flow.FlowControl`` (this class's bases, so no call on the hot path goes
    through another object)."""

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
        self.checker: Any = None  # a callback-less parser for requests ``_heads.request`` read (see ``quick_checks``)
        # heads up to this long cannot break a length limit (414/431), so ``_heads.request`` may read them
        self.quick_max = min(self.cfg.max_line, self.cfg.max_header_bytes)

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
        if lane.ENABLED:
            cfg = self.cfg
            self.lane_setup(self.shared, transport, self.forwarded, HSTS if self.https and cfg.hsts else None, self.quick_max,
                            cfg.max_headers, self.read_timeout, cfg.keepalive_timeout, self.https)

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

    def general_data_received(self, data: bytes) -> None:
        """Every chunk the fast lane does not take (see ``lane``)."""
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
                if REQUEST_HEAD is not None and len(data) <= self.quick_max:  # a new head, read in one call (``_heads``)
                    seen = REQUEST_HEAD(data, self.cfg.max_headers)
                    if seen is not None:
                        hit = self.quick_checks(data, seen)
                        if hit is not None:
                            if cache.may_learn():
                                cache.remember(data, seen)
                            self.replay(seen, hit)
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

    if not lane.ENABLED:
        data_received = general_data_received

    def quick_checks(self, data: bytes, seen: tuple[Any, ...]) -> Hit | None:
        """What ``start`` checks of a request read by ``_heads.request``: the Host's form (the host cache), and llhttp
        accepts ``data`` (a second parser without callbacks, at a message boundary as the main one stands); and the
        request goes upstream (the router's own answers, 404, 308, 503, ..., are the parsed path's, which closes
        after them). The route cache's hit, or None: then the main parser takes ``data`` from the start and
        answers (or refuses) as it always did."""
        shared = self.shared
        host = seen[3]
        if host and not (shared.hosts.get(host) or shared.host(host))[0]:
            return None
        hit = shared.route_hit(host, seen[4])
        route, redirect, up, _ = hit
        if route is None or (redirect is not None and not self.https) or up is None or not up.endpoints:
            return None
        checker = self.checker
        if checker is None:
            checker = self.checker = _request_checker()
        try:
            checker.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.checker = None
            return None
        if not seen[2]:
            self.checker = None  # llhttp takes nothing after a request that closes
        return hit

    def eof_received(self) -> bool:
        """A client that half-closes after its requests still gets the answers (then the connection closes)."""
        self.eof = True
        if self.lingering:
            return False
        if self.tunnel_up is not None:
            self.tunnel_up.write_eof()
            return True
        return self.cur is not None

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
