"""The upstream side: round robin per Service port, keep-alive pools per endpoint, the response parser.

Rules kept here (dataplane spec §3.4):
- Requests go straight to a Service's ready endpoints (as ingress-nginx does), round robin. When the
  endpoint *set* changes the list is reshuffled and the index reset; an unchanged set keeps its order.
  (A small copy of ``proxy/balancer.py``'s policy: ``dataplane.ingress`` and ``dataplane.proxy`` stay
  independent, and affinity is not needed here.)
- Keep-alive: a connection whose response completed with keep-alive, and whose request body was fully sent,
  goes back to its endpoint's idle list (LIFO, at most ``max_idle`` per endpoint, closed after ``idle_timeout``
  seconds). A pooled connection the upstream closed is dropped when its FIN arrives.
- Responses are parsed with httptools; the owner (a client connection) gets ``head``/``body``/``done``
  calls and flow-control signals; a connection is owned by at most one request at a time.
- A response head seen before (exact bytes, arriving with its whole body in one chunk) skips the parser: see
  ``Pool.response_heads``. Only plain answers qualify: 2xx-5xx but 204/304, Content-Length framed, kept alive, no
  hop-by-hop header but Connection: keep-alive and Keep-Alive.
- A new head of such an answer, arriving whole with its body, skips the per-header callbacks too where the compiled
  ``_heads`` module was built (optional, C): it reads the head in one call (``answer_c``, whose reference is
  ``answer_py``) and llhttp only validates the answer (``UpstreamConn.valid``, a parser without callbacks); heads
  not written plainly (``Name: value``) and answers llhttp refuses go to the parser path. Same bytes out either way
  (tests/dataplane/test_ingress_heads.py runs two routers side by side, ``KUBESVC_INGRESS_COMPILED=0`` on one).
- ``Server``: an answer whose head has none gets ``Server: kubesvc-ingress`` (``SERVER_LINE``), as ingress-nginx's
  answers always carry ``Server: nginx`` and the ingress conformance features require a ``Server`` header; a
  backend's own ``Server`` is passed unchanged (Envoy's APPEND_IF_ABSENT; nginx would replace it). The line is
  part of the head a replay writes, so the head caches stay exact.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httptools

from kubesvc.dataplane.ingress import lane

if TYPE_CHECKING:
    from kubesvc.dataplane.ingress.cycle import Cycle

Endpoint = tuple[str, int]
HEAD_CACHE_SIZE = 1024  # entries, each at most HEAD_MAX bytes of key
HEAD_MAX = 4096


def reason_phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


# The status line is the router's own (as nginx writes its own for known codes): no on_status callback.
STATUS_LINES = {int(s): b"HTTP/1.1 %d %s\r\n" % (int(s), s.phrase.encode()) for s in HTTPStatus}

SERVER_LINE = b"Server: kubesvc-ingress\r\n"

# response heads that may be replayed keep only these framing headers (the router writes its own)
REPLAYABLE = frozenset({b"content-length", b"connection", b"keep-alive"})


class HeadCache:
    """Parsed heads by their exact bytes, for replay (``Shared.request_heads``, ``Pool.response_heads``): at most
    ``HEAD_CACHE_SIZE`` entries (emptied when full), keys of at most ``HEAD_MAX`` bytes. Learning costs about
    1 us a head, so it stops paying when nothing repeats: every remembered head spends a credit, every replay
    restores them all; without credit only one head in 16 is learned (enough to notice when repetition returns)."""

    __slots__ = ("credit", "map", "misses")
    CREDIT = 64

    def __init__(self) -> None:
        self.map: dict[bytes, tuple[Any, ...]] = {}
        self.credit = self.CREDIT
        self.misses = 0

    def may_learn(self) -> bool:
        if self.credit > 0:
            return True
        self.misses += 1
        return not self.misses & 15

    def remember(self, key: bytes, parsed: tuple[Any, ...]) -> None:
        if len(key) > HEAD_MAX:
            return
        self.credit -= 1
        if len(self.map) >= HEAD_CACHE_SIZE:
            self.map.clear()
        self.map[key] = parsed


# a header line (after the CRLF before it) whose first colon is not followed by one space and then a non-blank or the
# line's end: llhttp hands its value over with the leading blanks stripped, so the line as received is not the line
# the parsed path writes (``name: value``)
_NOT_CANONICAL = re.compile(rb"\r\n[^:]*:(?: [ \t]|[^ ]|$)")


def _line_end(h: bytes, i: int) -> int:
    e = h.find(b"\r\n", i + 2)
    return len(h) if e < 0 else e


def answer_py(data: bytes, head_end: int, status_lines: dict[int, bytes], server_line: bytes) -> tuple[Any, ...] | None:
    """What ``UpstreamConn.learn`` would keep of the answer head ``data[:head_end]`` (status, Content-Length, the
    parsed path's status line, kept header lines and Content-Length line), read from the head's bytes without a
    parser callback per header; None when the answer is not a plain one (``learn``'s conditions) or a header line
    is not written ``Name: value`` (one space, the value not starting with a blank), where the parsed path's line
    would differ from the bytes received. Checks nothing llhttp checks: the caller still runs the answer through
    llhttp (``UpstreamConn.valid``) before it uses the result, and for heads llhttp refuses the result means nothing.

    This is the reference of ``_heads.answer`` (C, built where a compiler is, same arguments, same result for every
    head llhttp accepts: tests/dataplane/test_ingress_heads.py); the router uses only the compiled one, since in
    Python these bytes operations cost more than llhttp's callbacks. Without it the parsed path writes the same bytes."""
    if data[:9] != b"HTTP/1.1 ":
        return None
    code = data[9:12]
    if not code.isdigit():
        return None
    status = int(code)
    if status < 200 or status >= 600 or status == 204 or status == 304:
        return None
    h = data[data.find(b"\r\n"):head_end - 4]  # CRLF, then the header lines joined by CRLF
    if _NOT_CANONICAL.search(h) is not None:
        return None
    low = h.lower()
    if ((b"\r\nt" in low and (b"\r\nte: " in low or b"\r\ntrailer: " in low or b"\r\ntransfer-encoding: " in low))
            or b"\r\nupgrade: " in low or b"\r\nproxy-connection: " in low):
        return None
    i = low.find(b"\r\ncontent-length: ")
    if i < 0 or low.find(b"\r\ncontent-length: ", i + 2) >= 0:
        return None
    e = _line_end(h, i)
    clen = h[i + 18:e]
    if not clen.isdigit():
        return None
    spans = [(i, e)]
    for name, connection in ((b"\r\nconnection: ", True), (b"\r\nkeep-alive: ", False)):  # both 14 bytes long
        j = low.find(name)
        if j >= 0:
            if low.find(name, j + 2) >= 0:
                return None  # repeated: the parsed path keeps the last one
            e = _line_end(h, j)
            if connection and low[j + 14:e] != b"keep-alive":
                return None
            spans.append((j, e))
    if len(spans) > 1:
        spans.sort()
    out = []
    pos = 0
    for a, b in spans:
        out.append(h[pos:a])
        pos = b
    out.append(h[pos:])
    kept = b"".join(out)
    lines = kept[2:] + b"\r\n" if kept else b""
    if b"\r\nserver: " not in low:
        lines += server_line
    return (status, int(clen), status_lines.get(status) or b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status)),
            lines, b"Content-Length: %s\r\n" % clen)


answer_c = lane.BUILT.answer if lane.BUILT is not None else None  # None: built without a C compiler
# what ``UpstreamConn.data_received`` uses for a new answer head; KUBESVC_INGRESS_COMPILED=0 turns it off (the tests
# compare the two routers' answers byte for byte)
ANSWER_HEAD = answer_c if lane.ENABLED else None


class _NoCallbacks:
    """The protocol of ``UpstreamConn.checker``: llhttp only validates and frames (no callback at all)."""


# response headers that never pass as they are (the router frames the answer itself)
RESP_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                      b"upgrade", b"content-length"})


class Clock:
    """A coarse monotonic clock (seconds), refreshed by the router's sweep every ``SLACK`` seconds: deadlines are
    checked at that granularity anyway, and reading it costs an attribute load instead of a call per request.
    It runs one sweep ahead of real time, so a deadline taken from it never fires early (up to 2 x SLACK late)."""

    SLACK = 0.25
    now = time.monotonic() + SLACK


class Upstream:
    """Round robin over one Service port's ready endpoints; ``endpoints is None``: no such Service/port."""

    __slots__ = ("endpoints", "index", "_set", "rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        self.endpoints: list[Endpoint] | None = None
        self._set: frozenset[Endpoint] | None = None
        self.index = 0
        self.rng = rng or random.Random()

    def set_endpoints(self, eps: list[Endpoint] | None) -> bool:
        new = None if eps is None else frozenset(eps)
        if new == self._set:
            return False
        self._set = new
        if new is None:
            self.endpoints = None
        else:
            lst = sorted(new)
            self.rng.shuffle(lst)
            self.endpoints = lst
        self.index = 0
        return True

    def next(self) -> Endpoint:
        eps = self.endpoints
        assert eps
        i = self.index
        if i >= len(eps):
            i = 0
        self.index = i + 1
        return eps[i]


class UpstreamConn(lane.UpstreamRoot):
    __slots__ = ("pool", "addr", "transport", "parser", "owner", "deadline", "closed", "hout", "special",
                 "idle_since", "tunnel", "paused", "got_data", "in_message", "learned", "learning", "has_server", "checker")

    def __init__(self, pool: Pool, addr: Endpoint) -> None:
        self.pool = pool
        self.addr = addr
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.owner: Cycle | None = None
        self.deadline = 0.0
        self.closed = False
        self.hout: list[bytes] = []
        self.special: dict[bytes, bytes] = {}
        self.idle_since = 0.0
        self.tunnel = False
        self.paused = False
        self.got_data = False
        self.in_message = False
        self.learned: tuple[Any, ...] | None = None
        self.learning = False
        self.has_server = False
        self.checker: Any = None  # a callback-less parser for answers ``quick_answer`` read (see ``valid``)

    # -- asyncio
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.pool.live.add(self)

    def general_data_received(self, data: bytes) -> None:
        """Every answer chunk the fast lane does not take (see ``lane``)."""
        owner = self.owner
        if owner is None:  # an idle connection should not speak: drop it
            self.close()
            return
        self.got_data = True
        if self.tunnel:
            owner.tunnel_to_client(data)
            return
        head_end = -1
        self.learning = False
        if not self.in_message:  # between responses: a head seen before skips the parser
            head_end = data.find(b"\r\n\r\n") + 4
            if head_end > 3:
                cache = self.pool.response_heads
                head = data[:head_end]
                seen = cache.map.get(head)
                if seen is not None:
                    if len(data) - head_end == seen[1] and owner.replay_response(self, seen, data, head_end):
                        cache.credit = cache.CREDIT
                        return
                elif ANSWER_HEAD is not None:  # a new head: read without callbacks when a plain answer came whole
                    seen = ANSWER_HEAD(data, head_end, STATUS_LINES, SERVER_LINE)
                    if seen is not None and len(data) - head_end == seen[1] and owner.replayable(self) and self.valid(data):
                        owner.replay_response(self, seen, data, head_end)
                        if cache.may_learn():
                            cache.remember(head, seen)
                        return
                self.learning = cache.may_learn()
        self.learned = None
        if owner.read_timeout:
            self.deadline = Clock.now + owner.read_timeout
        owner.obuf = []  # gather the writes to the client made while parsing this chunk
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            if self.tunnel and self.owner is not None:
                rest = data[e.args[0]:] if e.args else b""
                self.owner.tunnel_open(rest)
            else:
                owner.upstream_failed(502, "upstream sent an unexpected upgrade")
        except httptools.HttpParserError as e:
            if self.owner is not None:
                self.owner.upstream_failed(502, f"upstream sent an invalid response: {e}")
        else:
            learned = self.learned
            if learned is not None and head_end > 3 and not self.in_message and len(data) - head_end == learned[1]:
                self.pool.response_heads.remember(data[:head_end], learned)
        finally:
            owner.flush()

    if not lane.ENABLED:
        data_received = general_data_received

    def valid(self, data: bytes) -> bool:
        """Whether llhttp accepts ``data`` as one whole answer (``quick_answer`` framed it: head and the exact
        Content-Length body), parsed by a second parser without callbacks; it ends at a message boundary as the
        main parser stands, so either can take the next answer. False: the main parser takes ``data`` from the start
        and answers (or fails) exactly as it always did."""
        checker = self.checker
        if checker is None:
            checker = self.checker = httptools.HttpResponseParser(_NoCallbacks())
        try:
            checker.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.checker = None
            return False
        return True

    def eof_received(self) -> bool:
        # a tunnel passes the half-close on; otherwise the connection ends here
        if self.tunnel and self.owner is not None and self.owner.transport is not None and self.owner.transport.can_write_eof():
            self.owner.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.upstream_lost(self)

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.pause("upstream")

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.resume("upstream")

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.in_message = True
        self.hout = []
        self.special = {}
        self.has_server = False

    def on_header(self, name: bytes, value: bytes) -> None:
        ln = name.lower()
        if ln in RESP_HOP:
            self.special[ln] = value
        else:
            self.hout += (name, b": ", value, b"\r\n")
            if ln == b"server":
                self.has_server = True

    def on_headers_complete(self) -> None:
        if not self.has_server:
            self.hout.append(SERVER_LINE)
        if self.learning:
            self.learn()
        if self.owner is not None:
            self.owner.response_head(self, self.parser.get_status_code(), self.hout, self.special,
                                     self.parser.should_keep_alive())

    def learn(self) -> None:
        """A plain, kept-alive, length-framed answer: keep what a replay of this head needs (see ``HeadCache``)."""
        sp = self.special
        status = self.parser.get_status_code()
        if (200 <= status < 600 and status != 204 and status != 304 and b"content-length" in sp and sp.keys() <= REPLAYABLE
                and sp.get(b"connection", b"keep-alive").lower() == b"keep-alive" and self.parser.should_keep_alive()
                and sp[b"content-length"].isdigit()):
            clen = sp[b"content-length"]
            self.learned = (status, int(clen), STATUS_LINES.get(status) or b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status)),
                            b"".join(self.hout), b"Content-Length: %s\r\n" % clen)

    def on_body(self, body: bytes) -> None:
        if self.owner is not None:
            self.owner.response_body(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        if self.owner is not None:
            self.owner.response_done(self)

    # -- control
    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not self.closed:
            t.write(data)

    def write_eof(self) -> None:
        t = self.transport
        if t is not None and not self.closed and t.can_write_eof():
            t.write_eof()

    def pause_reading(self) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def reset_parser(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.in_message = False

    def close(self) -> None:
        self.owner = None
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.owner = None
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.abort()


class Pool:
    """Idle keep-alive connections per endpoint, plus every live upstream connection (for timeouts)."""

    def __init__(self, max_idle: int = 64, idle_timeout: float = 60.0) -> None:
        # response heads (exactly their bytes, status line to blank line) that came with their whole body in one
        # chunk, parsed and transformed: (status, content length, status line, kept header lines, Content-Length
        # line). Upstreams repeat their heads (nginx's change only with its Date header, once a second).
        self.response_heads = HeadCache()
        self.idle: dict[Endpoint, list[UpstreamConn]] = {}
        self.live: set[UpstreamConn] = set()
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout

    def take(self, addr: Endpoint) -> UpstreamConn | None:
        lst = self.idle.get(addr)
        while lst:
            c = lst.pop()
            if not c.closed:
                return c
        return None

    def release(self, c: UpstreamConn) -> None:
        c.owner = None
        c.deadline = 0.0
        if c.closed or c.tunnel:
            c.close()
            return
        if c.paused:
            c.resume_reading()
        lst = self.idle.setdefault(c.addr, [])
        if len(lst) >= self.max_idle:
            c.close()
            return
        c.idle_since = Clock.now
        lst.append(c)

    def forget(self, c: UpstreamConn) -> None:
        self.live.discard(c)
        lst = self.idle.get(c.addr)
        if lst and c in lst:
            lst.remove(c)

    def reap(self, now: float) -> None:
        """Close idle connections past the idle timeout; fire read timeouts of busy ones."""
        for addr, lst in list(self.idle.items()):
            while lst and now - lst[0].idle_since > self.idle_timeout:
                lst.pop(0).close()
            if not lst:
                del self.idle[addr]
        for c in list(self.live):
            if c.owner is not None and c.deadline and now > c.deadline:
                c.owner.upstream_timeout(c)

    def drop_unknown(self, keep: set[Endpoint]) -> None:
        """Close idle connections to endpoints that no longer back any route."""
        for addr in [a for a in self.idle if a not in keep]:
            for c in self.idle.pop(addr):
                c.close()

    def close_all(self) -> None:
        for lst in self.idle.values():
            for c in lst:
                c.close()
        self.idle.clear()
        for c in list(self.live):
            c.abort()
