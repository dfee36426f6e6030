"""Answers the router makes itself (404, 502, 503, 504, 308, 4xx) and the access-log line.

Rules kept here:
- Bodies are nginx's small HTML pages with ``kubesvc`` as the server line; ``Content-Type: text/html``; the head
  says ``Server: kubesvc-ingress`` (as ingress-nginx's own pages say ``Server: nginx``; see upstream.py).
- 308 carries ``Location``; answers that end the connection say ``Connection: close``.
- Access log: nginx's ``combined`` format followed by ingress-nginx's upstream fields:
  ``addr - - [time] "request" status bytes "referer" "user-agent" request_length request_time
  [namespace-service-port] upstream_addr upstream_status request_id``.
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

_CACHE: dict[tuple[int, bool, bool], bytes] = {}
_BODIES: dict[int, bytes] = {}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def body(status: int) -> bytes:
    b = _BODIES.get(status)
    if b is None:
        title = f"{status} {_reason(status)}"
        b = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
             "<hr><center>kubesvc</center>\r\n</body>\r\n</html>\r\n").encode()
        _BODIES[status] = b
    return b


def body_length(status: int) -> int:
    return len(body(status))


def render(status: int, keep_alive: bool, location: bytes = b"", hsts: bool = False) -> bytes:
    if location:
        head = b"HTTP/1.1 %d %s\r\nServer: kubesvc-ingress\r\nLocation: %s\r\n" % (status, _reason(status).encode(), location)
        b = body(status)
        return head + b"Content-Type: text/html\r\nContent-Length: %d\r\n%s%s\r\n%s" % (
            len(b), b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n" if hsts else b"",
            b"" if keep_alive else b"Connection: close\r\n", b)
    key = (status, keep_alive, hsts)
    r = _CACHE.get(key)
    if r is None:
        b = body(status)
        r = (b"HTTP/1.1 %d %s\r\nServer: kubesvc-ingress\r\nContent-Type: text/html\r\nContent-Length: %d\r\n" % (status, _reason(status).encode(), len(b))
             + (b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n" if hsts else b"")
             + (b"" if keep_alive else b"Connection: close\r\n") + b"\r\n" + b)
        _CACHE[key] = r
    return r


_last_sec = -1
_last_txt = ""


def _now() -> str:
    global _last_sec, _last_txt
    t = int(time.time())
    if t != _last_sec:
        _last_sec = t
        _last_txt = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(t))
    return _last_txt


def _q(v: bytes) -> str:
    return v.decode("latin-1").replace('"', '\\"') if v else "-"


def access_line(peer: str, ex: Any) -> str:
    ref = ex.special.get(b"referer", b"")
    ua = ex.special.get(b"user-agent", b"")
    req = f"{ex.method.decode('latin-1')} {ex.url.decode('latin-1')} HTTP/{ex.version}" if ex.method else "-"
    r = ex.route
    upstream = f"{r.backend.namespace}-{r.backend.service}-{r.backend.port}" if r is not None else ""
    length = len(ex.url) + ex.head_bytes + ex.body_seen + 16
    ep = ex.endpoint
    return (f'{peer} - - [{_now()}] "{req}" {ex.status} {ex.sent} "{_q(ref)}" "{_q(ua)}" {length} '
            f'{time.time() - ex.started:.3f} [{upstream}] {f"{ep[0]}:{ep[1]}" if ep else "-"} {ex.upstream_status or "-"} '
            f'{ex.req_id.decode() or "-"}\n')
