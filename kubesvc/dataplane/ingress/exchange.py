"""What the router's connections share, and one request/response pair: config, route cache, header helpers.

Rules kept here:
- ``Shared`` holds the current route table and the balancers (one ``Upstream`` per Service port, kept across
  tables so round robin does not restart), the keep-alive pool and a route cache: (Host header, raw path) ->
  (route, https redirect prefix, upstream, body limit), emptied whenever a new table is installed and when it
  reaches ``ROUTE_CACHE_SIZE`` entries. A host whose only rule is Prefix ``/`` routes every path the same way: its
  entry in the host cache carries that answer, used for paths that normalize to themselves (not cached per path).
- ``Exchange`` keeps immutable defaults on the class: a new request costs only the attributes it changes.
- Header names are lower-cased once, while parsing; the hop-by-hop ones are set aside, the others are kept as
  ready-to-join output lines.
- Head caches: a request that arrives as one chunk holding exactly one bodyless head is remembered by its bytes
  (``Shared.request_heads``), and so is a response head that arrived with its whole length-framed body
  (``upstream.Pool.response_heads``). The same bytes again are replayed from the parse made the first time,
  without the parser and its per-header callbacks: kept-alive clients repeat their requests, upstreams their
  heads (learning backs off when nothing repeats: ``upstream.HeadCache``). Keys are exact bytes already accepted
  by llhttp, so a replay cannot accept anything the parser would refuse; per-client data (addresses,
  X-Request-ID, scheme, HTTP version) is never part of a cached value, and neither is routing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesvc.dataplane.ingress.routes import HostRoutes, Route, RouteTable, normalize_host, normalize_path
from kubesvc.dataplane.ingress.upstream import Clock, Endpoint, HeadCache, Pool, Upstream, UpstreamConn

BUFFER_LIMIT = 256 * 1024
ROUTE_CACHE_SIZE = 4096
LINGER = 2.0
RECORD = frozenset({b"host", b"user-agent", b"referer"})  # forwarded, and kept for routing and the access log
HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                 b"upgrade", b"proxy", b"expect", b"content-length", b"x-forwarded-for", b"x-forwarded-host",
                 b"x-forwarded-port", b"x-forwarded-proto", b"x-forwarded-scheme", b"x-scheme", b"x-real-ip",
                 b"x-request-id", b"x-original-forwarded-for"})
PLAIN_CONNECTION = frozenset({b"keep-alive", b"close", b"upgrade"})  # Connection values naming no other header
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
HSTS = b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"


def drop_listed(out: list[bytes], start: int, tokens: bytes) -> None:
    """Remove from ``out[start:]`` (groups of name, ": ", value, CRLF) the headers a Connection header names."""
    drop = {t.strip().lower() for t in tokens.split(b",")} - {b"close", b"keep-alive", b"upgrade"}
    if not drop:
        return
    kept: list[bytes] = []
    for i in range(start, len(out), 4):
        if out[i].lower() not in drop:
            kept += out[i : i + 4]
    out[start:] = kept


@dataclass(frozen=True)
class HTTPConfig:
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    send_timeout: float = 60.0
    header_timeout: float = 60.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    body_limit: int = 1024 * 1024  # 0: unlimited
    max_line: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    retries: int = 3
    hsts: bool = True


Hit = tuple[Route | None, bytes | None, Upstream | None, int]  # a route-cache entry (see Shared.lookup)
HostHit = tuple[bool, HostRoutes, bytes | None, Hit | None]  # a host-cache entry (see Shared.host)


class Reject(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class Shared:
    """What every connection of one router shares: the current table, upstream balancers, pool, log."""

    def __init__(self, cfg: HTTPConfig, access_log: Callable[[str], None] | None) -> None:
        self.cfg = cfg
        self.table = RouteTable()
        self.upstreams: dict[str, Upstream] = {}
        self.pool = Pool()
        self.pool.idle_timeout = 60.0
        self.conns: set[Any] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.access_log = access_log
        self.https_port = 443
        self.requests = 0
        self.route_cache: dict[tuple[bytes, bytes], Hit] = {}
        self.hosts: dict[bytes, HostHit] = {}  # Host header -> what routing needs of it (see ``host``)
        # requests that came as one chunk holding exactly one bodyless head, by their bytes: what clients repeat
        # on a kept-alive connection (see cycle.Cycle.replay)
        self.request_heads = HeadCache()

    def install(self, table: RouteTable, backends: dict[str, list[Endpoint] | None]) -> None:
        ups: dict[str, Upstream] = {}
        keep: set[Endpoint] = set()
        for key, eps in backends.items():
            u = self.upstreams.get(key) or Upstream()
            u.set_endpoints(eps)
            ups[key] = u
            keep.update(eps or ())
        self.upstreams = ups
        self.table = table
        self.route_cache = {}
        self.hosts = {}
        self.pool.drop_unknown(keep)

    def host(self, host: bytes) -> HostHit:
        """(whether ``valid_host``, the host's rule group, the https redirect prefix of a TLS host, the route-cache
        entry of every path when the group's only rule is Prefix ``/``) for a Host header; remembered until the next
        table, so a request for a new path on a known host only matches the path (or not even that)."""
        h = normalize_host(host.decode("latin-1"))
        table = self.table
        redirect = None
        if self.https_port:  # 0: no HTTPS listener, no redirect
            tls = table.tls_for(h)
            if tls is not None and tls.ssl_redirect:
                port = self.https_port
                redirect = b"https://" + (h.encode() if port == 443 else b"%s:%d" % (h.encode(), port))
        group = table.group(h)
        anywhere: Hit | None = None  # the group has one rule, Prefix "/": every normalized path routes the same way
        if not group.exact and not group.implementation and len(group.prefix) == 1 and "/" in group.prefix:
            route = group.prefix["/"]
            limit = route.body_limit if route.body_limit is not None else self.cfg.body_limit
            anywhere = (route, redirect if route.ssl_redirect else None, self.upstreams.get(route.backend.key), limit)
        hit = (not host or valid_host(host), group, redirect, anywhere)
        if len(self.hosts) >= ROUTE_CACHE_SIZE:
            self.hosts.clear()
        self.hosts[host] = hit
        return hit

    def route_hit(self, host: bytes, url: bytes) -> Hit:
        """The route cache's entry for a Host header and request target (made by ``lookup`` on a miss)."""
        q = url.find(b"?")
        path = url if q < 0 else url[:q]
        hit = self.route_cache.get((host, path))
        if hit is not None:
            return hit
        anywhere = (self.hosts.get(host) or self.host(host))[3]
        if (anywhere is not None and path[:1] == b"/" and b"%" not in path and b"//" not in path and b"/." not in path
                and b"#" not in path):  # normalize_path would keep the path as it is: no need to match it, nor cache it
            return anywhere
        return self.lookup(host, path)

    def lookup(self, host: bytes, raw_path: bytes) -> Hit:
        """(route, https redirect prefix, upstream, body limit) for a Host header and request path; remembered
        until the next table. (None, b"", ...) marks a path that cannot be normalized (400); (None, None, ...)
        no route (404)."""
        try:
            path = normalize_path(raw_path.decode("latin-1")) if raw_path != b"*" else "/"
        except UnicodeDecodeError:
            path = None
        hit: Hit
        if path is None:
            hit = (None, b"", None, 0)
        else:
            _, group, redirect, _ = self.hosts.get(host) or self.host(host)
            route = group.best(path) or group.default or self.table.default  # RouteTable.match
            if route is None:
                hit = (None, None, None, 0)
            else:
                limit = route.body_limit if route.body_limit is not None else self.cfg.body_limit
                hit = (route, redirect if route.ssl_redirect else None, self.upstreams.get(route.backend.key), limit)
        if len(self.route_cache) >= ROUTE_CACHE_SIZE:
            self.route_cache.clear()
        self.route_cache[(host, raw_path)] = hit
        return hit

    def reap(self) -> None:
        now = time.monotonic()
        Clock.now = now + Clock.SLACK
        for c in list(self.conns):
            if c.deadline and now > c.deadline:
                c.on_timeout()
        self.pool.reap(now)

    def spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)


class Exchange:
    """One request/response pair on a client connection. Immutable defaults live on the class, so a new
    exchange costs only the few attributes set in ``__init__`` (this is on every request's path)."""

    method = b""
    body: list[bytes] | None = None  # request body held while no upstream is attached
    nheaders = 0
    dup_host = False
    version = "1.1"
    head_bytes = 0
    keep_alive = True
    upgrade = False
    chunked = False
    clen = -1
    buffered = 0
    body_seen = 0
    body_done = False
    expect = False
    route: Route | None = None
    up: UpstreamConn | None = None
    tries = 0
    status = 0
    sent = 0
    out_chunked = False
    out_close = False
    head_sent = False
    done = False
    req_id = b""
    upstream_status = 0
    endpoint: Endpoint | None = None
    host = b""
    limit = 0
    complete_head = False
    interim = False
    reused = False
    up_keep = False
    tunnel = False
    cacheable = False  # the head may be remembered for replay (one lone bodyless request in its chunk)
    prefix: bytes | None = None  # the upstream request head's parts (see cycle.Cycle.head_parts)
    tail = b""

    def __init__(self) -> None:
        self.url = b""
        self.hout: list[bytes] = []  # forwarded request header lines: name, ": ", value, CRLF, ...
        self.special: dict[bytes, bytes] = {}  # lower-case name -> value of the HOP and RECORD headers
        self.started = time.time()


def request_py(data: bytes, max_headers: int) -> tuple[Any, ...] | None:
    """What the parsed path keeps of a request for a head-cache replay (``cycle.Cycle.start``'s ``learned``: method,
    version, keep-alive, Host, target, X-Request-ID, the upstream head's prefix and tail, the set-aside headers), read
    from ``data``'s bytes without a parser callback per header, when ``data`` is exactly one bodyless head that the
    parsed path would route: an origin-form target, HTTP/1.0 or 1.1, one Host (not empty in 1.1), no body framing,
    Expect, Upgrade or Proxy-Connection, a Connection of keep-alive or close at most once, at most ``max_headers``
    header lines, each written ``Name: value`` (one space, the value not starting with a blank). None otherwise. Checks
    nothing llhttp checks, nor the Host's form (the caller runs both checks before using the result), nor the
    length limits (the caller passes only heads shorter than them).

    This is the reference of ``_heads.request`` (C, built where a compiler is; same result for every head llhttp
    accepts: tests/dataplane/test_ingress_heads.py); the router uses only the compiled one."""
    if data.find(b"\r\n\r\n") != len(data) - 4:  # not exactly one head (none yet, or pipelined requests)
        return None
    line_end = data.find(b"\r\n")
    method, sp, rest = data[:line_end].partition(b" ")
    url, sp2, version = rest.partition(b" ")
    if not method or not sp or not sp2 or version not in (b"HTTP/1.1", b"HTTP/1.0") or url[:1] != b"/" or method == b"CONNECT":
        return None
    if method.strip(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-"):  # a method name as llhttp knows them (it skips blank lines before one)
        return None
    h = data[line_end:-4]
    if _NOT_CANONICAL.search(h) is not None:
        return None
    special: dict[bytes, bytes] = {}
    out = [method, b" ", url, b" HTTP/1.1\r\n"]
    lines = h.split(b"\r\n")[1:] if h else []
    if len(lines) > max_headers:
        return None
    host = None
    connection = b""
    for line in lines:
        name, _, value = line.partition(b": ")
        ln = name.lower()
        if ln in HOP:
            if ln in (b"proxy-connection", b"transfer-encoding", b"upgrade", b"expect", b"content-length"):
                return None
            if ln == b"connection":
                if connection or value.lower() not in (b"keep-alive", b"close"):
                    return None
                connection = value.lower()
            special[ln] = value
            continue
        if ln in RECORD:
            if ln == b"host":
                if host is not None:
                    return None
                host = value
            special[ln] = value
        out += (line, b"\r\n")
    v11 = version == b"HTTP/1.1"
    if not host and v11:
        return None  # no Host or an empty one in 1.1: 400 on the parsed path
    keep = connection != b"close" if v11 else connection == b"keep-alive"
    xff = special.get(b"x-forwarded-for", b"")
    tail = b"X-Original-Forwarded-For: %s\r\n\r\n" % xff if xff else b"\r\n"
    return (method, "1.1" if v11 else "1.0", keep, host or b"", url, special.get(b"x-request-id", b""), b"".join(out), tail, special)


# a header line (after the CRLF before it) whose first colon is not followed by one space and then a non-blank or the
# line's end (see ``upstream._NOT_CANONICAL``)
_NOT_CANONICAL = re.compile(rb"\r\n[^:]*:(?: [ \t]|[^ ]|$)")

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
