"""TCP forwarding: one listening socket per (ip, port), a protocol pair per connection.

Rules kept here (spec dataplane.md §1.6, §1.7):
- No ready endpoint: the accepted connection is reset at once (SO_LINGER 0), like kube-proxy's REJECT.
- Dial: up to 4 attempts with 250 ms / 500 ms / 1 s / 2 s timeouts, each on the balancer's next pick
  (affinity bypassed and the client re-pinned after a failure). Dials run as owned tasks, never in the
  accept path, so a slow endpoint does not delay other clients.
- Copy: once both sides are connected the uvloop transports call each other's ``write`` directly (the
  protocol's ``data_received`` *is* the peer transport's ``write``), so there is no Python frame per chunk.
- Back-pressure: a side whose write buffer passes the high-water mark pauses reading on the other side
  until it drains; nothing buffers without bound.
- Half-close: EOF from one side becomes ``write_eof()`` (shutdown SHUT_WR) on the other; the pair closes
  when both directions ended or either side closes or errors (an error on one side aborts the other).
- Reconfiguring or removing a listener never touches established connections.
- Worker processes (``--workers N``): every process binds the same ``ip:port`` with SO_REUSEPORT and the
  kernel spreads new connections over them. A ClientIP-affinity listener gets a classic BPF program that
  picks the socket from the client's address (``steer_by_client_ip``), so one client IP always reaches the
  same process and therefore the same balancer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

from kubesvc.dataplane.proxy.balancer import NoEndpoints
from kubesvc.dataplane.proxy.metrics import tcp_bytes

if TYPE_CHECKING:
    from kubesvc.dataplane.proxy.server import PortState

log = logging.getLogger("kubesvc.proxy")

DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
HIGH_WATER = 256 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)


def reset(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    transport.abort()  # type: ignore[attr-defined]


_SO_ATTACH_REUSEPORT_CBPF = 51
_SO_DETACH_REUSEPORT_BPF = 68
_SKF_NET_OFF = -0x100000


def steer_by_client_ip(sock: socket.socket, workers: int, on: bool) -> None:
    """Choose the SO_REUSEPORT socket by ``client address mod workers`` (on) or the kernel's 4-tuple hash (off).

    The program runs on the SYN (TCP) or datagram (UDP); ``SKF_NET_OFF`` reaches into the IP header: the
    IPv4 source address, or the last 32 bits of the IPv6 one. The choice applies to the whole group.
    """
    if not on:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_DETACH_REUSEPORT_BPF, 0)
        except OSError:
            pass  # nothing attached
        return
    import ctypes

    src = 12 if sock.family == socket.AF_INET else 20
    # (code, jt, jf, k): ld [net+src]; mod #workers; ret a
    prog = [(0x20, 0, 0, (_SKF_NET_OFF + src) & 0xFFFFFFFF), (0x94, 0, 0, workers), (0x16, 0, 0, 0)]
    insns = b"".join(struct.pack("HBBI", *i) for i in prog)
    buf = ctypes.create_string_buffer(insns)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_REUSEPORT_CBPF, fprog)


class Pair:
    """The shared state of one proxied connection."""

    __slots__ = ("state", "client", "backend", "eofs", "done", "endpoint")

    def __init__(self, state: "PortState") -> None:
        self.state = state
        self.client: asyncio.Transport | None = None
        self.backend: asyncio.Transport | None = None
        self.eofs = 0
        self.done = False
        self.endpoint: tuple[str, int] | None = None

    def finish(self, lost: "asyncio.Transport", exc: Exception | None) -> None:
        if self.done:
            return
        self.done = True
        state = self.state
        m = state.metrics
        m.open -= 1
        state.conns.discard(self)
        other = self.backend if lost is self.client else self.client
        if other is not None:
            counted = tcp_bytes(other.get_extra_info("socket"))
            if counted is not None:
                received, acked = counted
                if other is self.backend:
                    m.bytes_in += acked
                    m.bytes_out += received
                else:
                    m.bytes_in += received
                    m.bytes_out += acked
            if exc is None:
                other.close()
            else:
                other.abort()

    def live_bytes(self) -> tuple[int, int]:
        if self.client is None or self.done:
            return 0, 0
        counted = tcp_bytes(self.client.get_extra_info("socket"))
        return counted if counted is not None else (0, 0)


class _Side(asyncio.Protocol):
    # No __slots__: link() stores the peer's write as the instance's data_received.

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None

    def link(self, transport: asyncio.Transport, peer: asyncio.Transport) -> None:
        self.peer = peer
        # The hot path: the transport hands each chunk straight to the peer transport's write.
        self.data_received = peer.write  # type: ignore[method-assign]
        transport.set_write_buffer_limits(high=HIGH_WATER)
        transport.set_protocol(self)  # uvloop caches data_received when the protocol is set

    def pause_writing(self) -> None:
        # My transport's buffer is full: stop reading from the peer until it drains.
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and not self.pair.done:
            self.peer.resume_reading()

    def eof_received(self) -> bool:
        pair = self.pair
        pair.eofs += 1
        peer = self.peer
        if peer is None:
            return False
        if pair.eofs >= 2:
            # Both directions ended: close (buffered data still flushes).
            assert self.transport is not None
            self.transport.close()
            return True
        if peer.can_write_eof():
            peer.write_eof()
        return True  # keep our write side open: the answer may still come back

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.pair.finish(self.transport, exc)


class BackendSide(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        client = self.pair.client
        if client is not None:  # link at once: a backend that speaks first loses nothing
            self.link(transport, client)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:  # replaced by the client's write in link()
        raise AssertionError("backend data before link")


class ClientSide(_Side):
    """Accepted connection: pick an endpoint, dial it (with retries), then link the pair."""

    def __init__(self, listener: "TcpListener") -> None:
        state = listener.state
        super().__init__(Pair(state))
        self.listener = listener
        self.pending: list[bytes] = []  # what arrived before the backend answered (one chunk, then paused)
        self.pending_eof = False

    def data_received(self, data: bytes) -> None:  # replaced by the peer's write once linked
        self.pending.append(data)
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.peer is None:
            self.pending_eof = True
            return True
        return super().eof_received()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = t
        pair = self.pair
        state = pair.state
        m = state.metrics
        m.total += 1
        if not state.balancer.endpoints:
            m.rejected += 1
            pair.done = True
            reset(t)
            return
        m.open += 1
        state.conns.add(pair)
        pair.client = t
        t.pause_reading()
        peer = t.get_extra_info("peername")
        self.listener.spawn(self._dial(peer[0] if peer else ""))

    async def _dial(self, client_ip: str) -> None:
        pair = self.pair
        state = pair.state
        loop = asyncio.get_running_loop()
        for attempt, timeout in enumerate(DIAL_TIMEOUTS):
            if pair.done:
                return
            try:
                ep = state.balancer.next(client_ip, reset=attempt > 0)
            except NoEndpoints:
                break
            backend = BackendSide(pair)
            try:
                # One native connect (numeric address: no resolver); the transport sets TCP_NODELAY itself.
                async with asyncio.timeout(timeout):
                    bt, _ = await loop.create_connection(lambda b=backend: b, ep[0], ep[1])
            except (OSError, TimeoutError) as e:
                state.metrics.connect_failures += 1
                log.debug("connect failed", extra={"kv": {"service": state.label, "endpoint": f"{ep[0]}:{ep[1]}", "error": str(e) or type(e).__name__, "attempt": attempt + 1}})
                continue
            client = pair.client
            if pair.done or client is None:
                bt.close()
                return
            pair.backend = bt  # type: ignore[assignment]
            pair.endpoint = ep
            self.link(client, bt)  # type: ignore[arg-type]
            for chunk in self.pending:
                bt.write(chunk)
            self.pending.clear()
            if self.pending_eof:
                pair.eofs += 1
                bt.write_eof()
            else:
                client.resume_reading()
            return
        log.info("no endpoint reachable", extra={"kv": {"service": state.label, "client": client_ip}})
        if pair.client is not None and not pair.done:
            pair.finish(pair.client, ConnectionError("no endpoint"))
            reset(pair.client)


class TcpListener:
    """A listening socket whose connections go to ``state`` (re-targeted in place on reconcile)."""

    def __init__(self, key: tuple[str, str, int], state: "PortState", tasks: set[asyncio.Task[Any]], workers: int = 1) -> None:
        self.key = key
        self.state = state
        self.tasks = tasks
        self.workers = workers  # > 1: SO_REUSEPORT, shared with that many processes
        self.server: asyncio.AbstractServer | None = None
        self.sock: socket.socket | None = None
        self.steered = False

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open(self) -> None:
        _, ip, port = self.key
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.workers > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((ip, port))
            sock.setblocking(False)
            self.server = await asyncio.get_running_loop().create_server(lambda: ClientSide(self), sock=sock, backlog=4096)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.steer()

    def steer(self) -> None:
        """Keep ClientIP affinity whole across worker processes (see ``steer_by_client_ip``)."""
        config = self.state.config
        want = self.workers > 1 and config is not None and config.affinity
        if self.sock is not None and want != self.steered:
            steer_by_client_ip(self.sock, self.workers, want)
            self.steered = want

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
