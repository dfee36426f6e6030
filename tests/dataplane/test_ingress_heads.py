"""The compiled answer-head transform (``kubesvc/dataplane/ingress/_heads.c``, optional) against its pure-Python
reference (``upstream.answer_py``) and against what the parsed path keeps of the same head (``UpstreamConn.learn``),
on generated and hostile heads; then two real routers side by side, one with the compiled path and one without
(``KUBESVC_INGRESS_COMPILED=0``), fed the same answers by the same backend: the client gets the same bytes.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesvc.dataplane.ingress import upstream
from kubesvc.dataplane.ingress.upstream import SERVER_LINE, STATUS_LINES, Pool, UpstreamConn, answer_c, answer_py
from tests.dataplane.ingress_fixtures import Bed
from tests.support.procs import Proc, ready_fields

needs_c = pytest.mark.skipif(answer_c is None, reason="kubesvc was installed without a C compiler: no _heads module")


def accepted(data: bytes) -> bool:
    """llhttp takes ``data`` as exactly one whole answer."""
    done = []

    class P:
        def on_message_complete(self) -> None:
            done.append(1)

    try:
        httptools.HttpResponseParser(P()).feed_data(data)
    except httptools.HttpParserError:
        return False
    return done == [1]


def parsed(data: bytes) -> tuple[Any, ...] | None:
    """What the parsed path keeps of the answer (llhttp with a callback per header, then ``learn``)."""
    c = UpstreamConn(Pool(), ("127.0.0.1", 1))
    c.learning = True
    c.parser.feed_data(data)
    return c.learned


def check(data: bytes) -> None:
    head_end = data.find(b"\r\n\r\n") + 4
    if head_end < 4 or not accepted(data):
        return
    py = answer_py(data, head_end, STATUS_LINES, SERVER_LINE)
    if answer_c is not None:
        assert answer_c(data, head_end, STATUS_LINES, SERVER_LINE) == py, data
    if py is not None:  # whatever the quick path keeps is what the parsed path keeps
        assert parsed(data) == py, data


NGINX = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 05:03:16 GMT\r\nContent-Type: text/plain\r\n"
         b"Content-Length: 2\r\nConnection: keep-alive\r\nX-Id: 0123456789abcdef0123456789abcdef\r\n\r\nok")

HOSTILE = [
    NGINX,
    NGINX.replace(b"Server: nginx/1.22.1\r\n", b""),  # no Server: the router's own
    NGINX.replace(b"Connection: keep-alive", b"Connection: close"),
    NGINX.replace(b"Connection: keep-alive", b"CONNECTION: Keep-Alive"),
    NGINX.replace(b"Connection: keep-alive", b"Connection: keep-alive "),  # trailing blank: kept by llhttp
    NGINX.replace(b"Connection: keep-alive", b"Connection: keep-alive, x-id"),  # names a header to drop
    NGINX.replace(b"Connection: keep-alive\r\n", b"Connection: keep-alive\r\nConnection: keep-alive\r\n"),
    NGINX.replace(b"Connection: keep-alive\r\n", b"Keep-Alive: timeout=5\r\nKeep-Alive: max=3\r\n"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type:text/plain"),  # no blank after the colon
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type:  text/plain"),  # two
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type:\ttext/plain"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: \ttext/plain"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: "),  # empty value, one blank
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type:"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: a: b:c"),  # colons in the value
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: \xff\x80 t\te "),  # obs-text, inner and trailing blanks
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: text/plain\r\n folded"),  # obs-fold
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type : text/plain"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: a\x00b"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: a\rb"),
    NGINX.replace(b"Content-Type: text/plain", b"Content-Type: a\nb"),
    NGINX.replace(b"Content-Length: 2", b"Content-Length: 02"),
    NGINX.replace(b"Content-Length: 2", b"Content-Length: 2 "),
    NGINX.replace(b"Content-Length: 2", b"Content-Length: +2"),
    NGINX.replace(b"Content-Length: 2", b"Content-Length:2"),
    NGINX.replace(b"Content-Length: 2", b"content-length: 2\r\nContent-Length: 2"),
    NGINX.replace(b"Content-Length: 2\r\n", b""),  # close-delimited
    NGINX.replace(b"Content-Length: 2\r\n", b"Transfer-Encoding: chunked\r\n")[:-2] + b"2\r\nok\r\n0\r\n\r\n",
    NGINX.replace(b"Server: nginx/1.22.1", b"TE: trailers"),
    NGINX.replace(b"Server: nginx/1.22.1", b"Trailer: X-Id"),
    NGINX.replace(b"Server: nginx/1.22.1", b"Upgrade: websocket"),
    NGINX.replace(b"Server: nginx/1.22.1", b"Proxy-Connection: keep-alive"),
    NGINX.replace(b"Server: nginx/1.22.1", b"Server: a\r\nserver: b"),
    NGINX.replace(b"Server: nginx/1.22.1", b"Servers: x"),  # not Server
    NGINX.replace(b"Server: nginx/1.22.1", b"X: " + b"v" * 3000),  # past the C buffer on the stack
    NGINX.replace(b"Server: nginx/1.22.1", b"\r\n".join([b"X: 1"] * 400)),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 200"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 200 "),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 299 Odd"),  # no standard reason phrase
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Nope"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 599 X"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 600 X"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 199 X"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 304 Not Modified"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 2x0 OK"),
    NGINX.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 2000 OK"),
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # the only header is dropped: the router's Server alone
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_compiled_and_python_transforms_agree_with_the_parsed_path(data: bytes) -> None:
    check(data)


def test_the_transform_reads_a_plain_answer_and_declines_the_others() -> None:
    """The table above is not vacuous: the plain ones are read, the rest left to the parsed path."""
    def read(data: bytes) -> Any:
        return answer_py(data, data.find(b"\r\n\r\n") + 4, STATUS_LINES, SERVER_LINE)

    assert read(NGINX) == (200, 2, b"HTTP/1.1 200 OK\r\n", b"Server: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 05:03:16 GMT\r\n"
                           b"Content-Type: text/plain\r\nX-Id: 0123456789abcdef0123456789abcdef\r\n", b"Content-Length: 2\r\n")
    assert read(HOSTILE[1])[3].endswith(SERVER_LINE)
    assert read(HOSTILE[38])[2] == b"HTTP/1.1 299 Unknown\r\n"
    for i in (2, 4, 5, 6, 7, 8, 9, 10, 11, 13, 22, 26, 28, 29, 30, 31, 41, 42, 43, 44, 45):
        assert read(HOSTILE[i]) is None, i
    assert sum(accepted(d) for d in HOSTILE) > 30 and not all(accepted(d) for d in HOSTILE)


NAMES = ["Server", "Date", "Content-Type", "Content-Length", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
         "Transfer-Encoding", "Proxy-Connection", "X-Id", "Set-Cookie", "content-length", "SERVER", "connection"]
VALUES = st.sampled_from([b"", b"2", b"0", b"12", b"keep-alive", b"Keep-Alive", b"close", b"text/plain", b"a b", b"a\tb",
                          b"\xfe", b" x", b"x ", b"chunked", b"a:b", b"a: b"])
SEPS = st.sampled_from([b": ", b":", b":  ", b":\t", b": \t"])


@needs_c
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.sampled_from([b"200 OK", b"201 Created", b"204 No Content", b"301 Moved", b"404 Not Found", b"500 X",
                               b"101 Switching Protocols", b"299 Odd", b"200"]),
       headers=st.lists(st.tuples(st.sampled_from(NAMES), SEPS, VALUES), max_size=8),
       body=st.sampled_from([b"", b"ok", b"0123456789AB"]))
def test_generated_answers_agree(status: bytes, headers: list[tuple[str, bytes, bytes]], body: bytes) -> None:
    head = b"HTTP/1.1 " + status + b"\r\n" + b"".join(n.encode() + sep + v + b"\r\n" for n, sep, v in headers) + b"\r\n"
    check(head + body)


# --- two routers, compiled path on and off, the same answers ---------------------------------------------------------

def incomplete(data: bytes) -> bool:
    """llhttp takes ``data`` without an error but waits for more (a 1xx, a body announced and not sent)."""
    try:
        return not accepted(data) and httptools.HttpResponseParser(object()).feed_data(data) is None
    except httptools.HttpParserError:
        return False


# each answer in one write (head and body together, as nginx writes small answers); none that leaves the router
# waiting for more, no 1xx (never the quick path)
ANSWERS = [d for d in HOSTILE if b"chunked" not in d and not incomplete(d) and not d.startswith(b"HTTP/1.1 1")] + [
    NGINX.replace(b"X-Id: 0123", b"X-Id: 9999"), NGINX.replace(b"Content-Length: 2", b"Content-Length: 5")[:-2] + b"hello"]


class CannedBackend:
    """Answers ``GET /a/N`` with ``ANSWERS[N]`` in one ``sendall``, then reads the next request on the connection
    (closes it after an answer without Content-Length)."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

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
                path = head.split(b" ", 2)[1]
                answer = ANSWERS[int(path.rsplit(b"/", 1)[1])]
                c.sendall(answer)
                if b"content-length:" not in answer.lower():
                    return  # close-delimited
        except (OSError, ValueError, IndexError):
            pass
        finally:
            c.close()

    def stop(self) -> None:
        self.srv.close()
        for c in self.conns:
            c.close()


@pytest.fixture(scope="module")
def routers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    be = CannedBackend()
    beds: list[Bed] = []
    try:
        ports = []
        for compiled in ("1", "0"):
            bed = Bed(Path(tmp_path_factory.mktemp(f"heads{compiled}")), "--proxy-read-timeout", "2s")
            beds.append(bed)
            bed.service("canned", [("127.0.0.1", be.port)])
            bed.ingress("canned", [(None, [("/", "Prefix", "canned")])])
            bed.proc = Proc(bed.store_path, "ingress", "--http-address", "127.0.0.1:0", "--https-address", "",
                            "--access-log", "off", env={"KUBESVC_INGRESS_COMPILED": compiled})
            bed.fields = ready_fields(bed.proc.wait_line("kubesvc ingress ready"))
            ports.append(bed.http_port)
        yield ports[0], ports[1]
    finally:
        for b in beds:
            b.close()
        be.stop()


def fetch(port: int, request: bytes) -> bytes:
    """One request on a fresh connection that asks to close: everything until the router closes."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def test_both_routers_answer_byte_for_byte_alike(routers: tuple[int, int]) -> None:
    compiled, pure = routers
    assert upstream.answer_c is None or os.environ.get("KUBESVC_INGRESS_COMPILED", "1") != "0"
    for i in range(len(ANSWERS)):
        req = b"GET /a/%d HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n" % i
        for _ in range(2):  # the second may be a head-cache replay (the upstream connection is kept)
            try:
                a, b = fetch(compiled, req), fetch(pure, req)
            except TimeoutError:
                raise AssertionError(f"answer {i} {ANSWERS[i]!r}: no end") from None
            assert a == b, (i, ANSWERS[i], a, b)
            assert a.startswith(b"HTTP/1.1 "), (i, a)
    plain = fetch(compiled, b"GET /a/0 HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n")
    assert plain == (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 05:03:16 GMT\r\nContent-Type: text/plain"
                     b"\r\nX-Id: 0123456789abcdef0123456789abcdef\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
