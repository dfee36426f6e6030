"""In-process cost of the ingress router's general path ("every head new"): a ``ClientConn`` and an ``UpstreamConn``
with in-memory transports are fed the request wrk sends (``GET /u/N``, each path new) and the answer the bench's nginx
backend gives under ``/u/`` (a unique ``X-Id`` header each time), so every request and every answer is parsed. No
sockets, no event loop: only the router's Python (and httptools) per request. Prints microseconds per request
(best of the rounds), for the parsed path and, for comparison, with both heads replayed from the caches.

Each row is measured with the fast lane (``kubesvc.dataplane.ingress.lane``: the compiled bases forward the plain
exchange) and without it (the same connections with their Python ``general_data_received`` as ``data_received``).

With ``steps`` as a third argument it measures the general path ("every head new") with each speed-up turned off
and on in turn, in the same process (alternating, best of each): the compiled head transforms (``_heads``, answers
then requests), the one-rule-host route shortcut, then the fast lane.

With ``log`` as a third argument it measures the general path with an access log (a writer that drops the lines),
with and without the lane: the lane then makes the Python ``Exchange`` and leaves the end of the exchange to Python.

Run: .venv/bin/python bench/ingress_inproc.py [requests per round [rounds [steps | log]]]
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kubesvc.dataplane.ingress import exchange, http, lane, routes, upstream  # noqa: E402
from kubesvc.dataplane.ingress.exchange import HTTPConfig, Shared  # noqa: E402
from kubesvc.dataplane.ingress.http import ClientConn  # noqa: E402
from kubesvc.dataplane.ingress.upstream import UpstreamConn  # noqa: E402

BACKEND = ("127.0.0.1", 18080)
ANSWER = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 05:03:16 GMT\r\nContent-Type: text/plain\r\n"
          b"Content-Length: 2\r\nConnection: keep-alive\r\nX-Id: %032x\r\n\r\nok")
REQUEST = b"GET /u/%d HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"


class Sink:
    """A transport that keeps the last write (the client's answer) and counts the others."""

    def __init__(self, peer: tuple[str, int], sock: tuple[str, int]) -> None:
        self.extra = {"peername": peer, "sockname": sock}
        self.last = b""
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes) -> None:
        self.last = data
        self.writes += 1

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("closed")

    abort = close


class PyClient(ClientConn):
    """A client connection without the fast lane."""

    data_received = ClientConn.general_data_received


class PyUpstream(UpstreamConn):
    """An upstream connection without the fast lane."""

    __slots__ = ()
    data_received = UpstreamConn.general_data_received


def setup(fast: bool = True, log: bool = False) -> tuple[ClientConn, UpstreamConn, Sink]:
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"ingressClassName": "kubesvc", "rules": [{"http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    cls = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "kubesvc"},
           "spec": {"controller": routes.CONTROLLER}}
    table = routes.build([ing], [cls])
    shared = Shared(HTTPConfig(), (lambda line: None) if log else None)
    shared.install(table, {key: [BACKEND] for key in table.backends})
    client = (ClientConn if fast else PyClient)(shared, "http")
    client_t = Sink(("127.0.0.1", 40000), ("127.0.0.1", 8080))
    client.connection_made(client_t)
    up = (UpstreamConn if fast else PyUpstream)(shared.pool, BACKEND)
    up.connection_made(Sink(BACKEND, ("127.0.0.1", 40001)))
    shared.pool.release(up)
    return client, up, client_t


def run(n: int, rounds: int, new_requests: bool, new_answers: bool, fast: bool = False, log: bool = False) -> float:
    client, up, sink = setup(fast, log)
    best = float("inf")
    for r in range(rounds):  # new paths and ids every round too (the route cache would remember a path)
        reqs = [REQUEST % (r * n + i if new_requests else 0) for i in range(n)]
        answers = [ANSWER % (r * n + i if new_answers else 0) for i in range(n)]
        t0 = time.perf_counter()
        for req, ans in zip(reqs, answers, strict=True):
            client.data_received(req)
            up.data_received(ans)
        best = min(best, time.perf_counter() - t0)
    assert sink.last.endswith(b"\r\n\r\nok") and sink.last.startswith(b"HTTP/1.1 200 OK\r\n"), sink.last
    return best / n * 1e6


def steps(n: int, rounds: int) -> None:
    """Every head new, with the speed-ups added one at a time (same process, alternating, best of 5 tries each)."""
    answer_c, request_c, host = upstream.ANSWER_HEAD, http.REQUEST_HEAD, exchange.Shared.host

    def no_shortcut(self: exchange.Shared, h: bytes) -> exchange.HostHit:
        hit = host(self, h)
        self.hosts[h] = hit = (*hit[:3], None)
        return hit

    configs = [("parsed path (none of them)", None, None, no_shortcut, False),
               ("+ compiled answer heads", answer_c, None, no_shortcut, False),
               ("+ compiled request heads", answer_c, request_c, no_shortcut, False),
               ("+ one-rule host shortcut", answer_c, request_c, host, False), ("+ fast lane", answer_c, request_c, host, True)]
    best = {label: float("inf") for label, *_ in configs}
    for _ in range(5):
        for label, a, r, h, fast in configs:
            upstream.ANSWER_HEAD, http.REQUEST_HEAD = a, r
            exchange.Shared.host = h  # type: ignore[method-assign]
            best[label] = min(best[label], run(n, rounds, True, True, fast))
    upstream.ANSWER_HEAD, http.REQUEST_HEAD, exchange.Shared.host = answer_c, request_c, host  # type: ignore[method-assign]
    for label, us in best.items():
        print(f"{label}: {us:.2f} us per request")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    gc.collect()
    gc.freeze()
    if len(sys.argv) > 3 and sys.argv[3] == "steps":
        if upstream.ANSWER_HEAD is None or http.REQUEST_HEAD is None or not lane.ENABLED:
            print("the compiled _heads module is not built (or KUBESVC_INGRESS_COMPILED=0): no steps to compare")
            return 1
        steps(n, rounds)
        return 0
    if len(sys.argv) > 3 and sys.argv[3] == "log":
        for fast in (False, True) * 2 if lane.ENABLED else (False,):
            print(f"every head new, access log on, {'fast lane' if fast else 'Python path'}: {run(n, rounds, True, True, fast, True):.2f} us")
        return 0
    client, up, sink = setup()
    client.data_received(REQUEST % 1)
    up.data_received(ANSWER % 1)
    print(repr(sink.last))
    for label, new_requests, new_answers in (("every head new", True, True), ("new requests, answers replayed", True, False),
                                             ("requests replayed, new answers", False, True), ("both replayed", False, False)):
        lanes = f", fast lane {run(n, rounds, new_requests, new_answers, True):.2f}" if lane.ENABLED else ""
        print(f"{label}: {run(n, rounds, new_requests, new_answers):.2f} us per request{lanes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
