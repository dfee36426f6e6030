"""TCP forwarding: one listening socket per (ip, port), a protocol pair per connection.

Rules kept here (spec dataplane.md §1.6, §1.7):
- No ready endpoint: the service port's listening sockets are closed (server.py), so a connect is refused
  (ECONNREFUSED) like kube-proxy's REJECT rule. A connection accepted in the instant before the close, or
  whose endpoints all failed, is reset (SO_LINGER 0).
- Source address: the dial to the endpoint is bound to the client's address when the client is on this
  machine (``source_for``): the endpoint sees the client's IP, as behind kube-proxy's DNAT. ``(ip, 0)``: the
  kernel picks the port. Otherwise (a remote or namespaced client the host cannot bind, or an endpoint a
  loopback source cannot reach) the kernel picks the node's address, which is kube-proxy's masquerade.
- Dial: up to 4 attempts with 250 ms / 500 ms / 1 s / 2 s timeouts, each on the balancer's next pick
  (affinity bypassed and the client re-pinned after a failure). The dial starts from the accepted
  protocol's ``connection_made``: ``loop.create_connection`` runs as a bare task (no coroutine of ours),
  a ``call_later`` timer bounds it, and the backend protocol's ``connection_made`` links the pair, so a
  slow endpoint never delays other clients and a connection costs a handful of Python calls.
- What the client sends before the backend answers is kept (one chunk, then its reading pauses) and
  written first; the client's address is read only for ClientIP affinity and logs.
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

from kubesvc.dataplane.observe import HUB
from kubesvc.dataplane.proxy.balancer import NoEndpoints
from kubesvc.dataplane.proxy.metrics import tcp_bytes
from kubesvc.dataplane.runtime import bind_socket

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


_local: dict[str, bool] = {}


def _is_local(ip: str) -> bool:
    """Can this process bind ``ip``? (127/8 always can on Linux; others asked once and remembered.)"""
    ok = _local.get(ip)
    if ok is None:
        if len(_local) > 4096:
            _local.clear()
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((ip, 0))
            ok = True
        except OSError:
            ok = False
        _local[ip] = ok
    return ok


def source_for(client_ip: str, endpoint_ip: str) -> tuple[str, int] | None:
    """The local address to dial ``endpoint_ip`` from so that it sees ``client_ip``; None: let the kernel pick.

    - 127.0.0.1 (or ``::1``) to a loopback endpoint: the kernel picks it anyway (no extra bind).
    - Another 127/8 client to a loopback endpoint: bind it (every 127/8 address is local on Linux).
    - A non-loopback client address that is local (a client on this machine, or in this namespace) to a
      loopback or local endpoint: bind it.
    - Anything else (a remote client, an endpoint on another host): the kernel's choice, the node's address.
    """
    if not client_ip or client_ip == endpoint_ip:
        return None
    ep_loop = endpoint_ip.startswith("127.")
    if client_ip.startswith("127."):
        if client_ip == "127.0.0.1" or not ep_loop:
            return None
        return (client_ip, 0)
    if ":" in client_ip:
        return None  # IPv6: one loopback address, and pod clients are not on this host
    if _is_local(client_ip) and (ep_loop or _is_local(endpoint_ip)):
        return (client_ip, 0)
    return None


def source_ranges(state: PortState, kind: str) -> list[Any] | None:
    """The networks allowed to reach an LB address (``loadBalancerSourceRanges``); None: everyone."""
    import ipaddress

    config = state.config
    if kind != "loadBalancer" or config is None or not config.source_ranges:
        return None
    nets = []
    for text in config.source_ranges:
        try:
            nets.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    return nets


def allowed_by(nets: list[Any] | None, ip: str) -> bool:
    import ipaddress

    if nets is None:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


class Pair:
    """The shared state of one proxied connection."""

    __slots__ = ("backend", "client", "done", "endpoint", "eofs", "state", "trace")

    def __init__(self, state: PortState) -> None:
        self.state = state
        self.client: asyncio.Transport | None = None
        self.backend: asyncio.Transport | None = None
        self.eofs = 0
        self.done = False
        self.endpoint: tuple[str, int] | None = None
        self.trace: Any = None  # observe.Trace, only while `kubesvc top`/`trace` is attached

    def finish(self, lost: asyncio.Transport, exc: Exception | None) -> None:
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
                    received, acked = acked, received  # now: client->endpoint, endpoint->client
                m.bytes_in += received
                m.bytes_out += acked
                if self.trace is not None:
                    HUB.proxy_close(self.trace, received, acked)
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
    transport: asyncio.Transport | None = None
    peer: asyncio.Transport | None = None

    def __init__(self, pair: Pair) -> None:
        self.pair = pair

    def link(self, transport: asyncio.Transport, peer: asyncio.Transport) -> None:
        self.peer = peer
        # The hot path: the transport hands each chunk straight to the peer transport's write.
        self.data_received = peer.write  # type: ignore[method-assign]
        transport.set_write_buffer_limits(HIGH_WATER)
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
        peer.write_eof()
        return True  # keep our write side open: the answer may still come back

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.pair.finish(self.transport, exc)


class BackendSide(_Side):
    """One dial attempt: ``loop.create_connection`` runs as a bare task (no coroutine of ours, no
    ``asyncio.timeout``); a ``call_later`` timer cancels it; ``connection_made`` links the pair at once."""

    expired = False

    def __init__(self, pair: Pair, client: ClientSide, endpoint: tuple[str, int]) -> None:
        self.pair = pair
        self.client = client
        self.endpoint = endpoint
        self.task: asyncio.Task[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def factory(self) -> BackendSide:
        return self

    def expire(self) -> None:
        self.expired = True
        if self.task is not None:
            self.task.cancel()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        if self.timer is not None:
            self.timer.cancel()  # synchronous: the task can no longer be cancelled (which would close t)
        pair = self.pair
        client = pair.client
        if pair.done or client is None or self.expired:
            # The client left while we dialled, or the timer fired in the same loop turn as the connect
            # completed (the cancelled task closes this transport; the retry dials the next endpoint).
            t.close()
            return
        self.transport = t
        pair.backend = t
        pair.endpoint = self.endpoint
        if HUB.on:
            self.client.observe(t, self.endpoint)
        self.link(t, client)  # t is not reading yet: set_protocol costs nothing
        cs = self.client
        cs.link(client, t)
        if cs.pending is not None:
            for chunk in cs.pending:
                t.write(chunk)
            cs.pending = None
        if cs.pending_eof:
            pair.eofs += 1
            t.write_eof()
        else:
            client.resume_reading()

    def dialled(self, task: asyncio.Task[Any]) -> None:
        cs = self.client
        cs.listener.tasks.discard(task)
        if task.cancelled():
            if not self.expired:
                return  # cancelled by shutdown
            exc: BaseException = TimeoutError("connect timed out")
        else:
            exc = task.exception()  # type: ignore[assignment]
            if exc is None:
                return  # linked in connection_made
            if self.timer is not None:
                self.timer.cancel()
        state = self.pair.state
        state.metrics.connect_failures += 1
        ep = self.endpoint
        if HUB.on:
            cs.failed = [*(cs.failed or ()), HUB.proxy_dial_failed(state.spn, f"{ep[0]}:{ep[1]}", exc)]
        log.debug("connect failed", extra={"kv": {"service": state.label, "endpoint": f"{ep[0]}:{ep[1]}",
                                                  "error": str(exc) or type(exc).__name__, "attempt": cs.attempt + 1}})
        cs.attempt += 1
        cs.dial()


class ClientSide(_Side):
    """Accepted connection: pick an endpoint, dial it (with retries), then link the pair."""

    pending: list[bytes] | None = None  # what arrived before the backend answered (one chunk, then paused)
    pending_eof = False
    attempt = 0
    peer_ip: str | None = None
    why = "round robin"  # set only while observed (observe.HUB.on)
    failed: list[dict[str, Any]] | None = None  # dials that failed before this one, only while observed

    def __init__(self, listener: TcpListener) -> None:
        self.pair = Pair(listener.state)
        self.listener = listener

    def data_received(self, data: bytes) -> None:  # replaced by the peer's write once linked
        if self.pending is None:
            self.pending = [data]
        else:
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
        listener = self.listener
        if not listener.balancer.endpoints or (listener.allowed is not None and not listener.allows(self.client_ip())):
            # accepted in the instant before the listener closed, or outside loadBalancerSourceRanges: refused
            m.rejected += 1
            pair.done = True
            reset(t)
            return
        m.open += 1
        state.conns.add(pair)
        pair.client = t
        self.dial()  # no task of ours: the connect starts now, reading starts when we return

    def observe(self, backend: asyncio.Transport, ep: tuple[str, int]) -> None:
        """`kubesvc top`/`trace` is attached: count this connection and tell its subscribers."""
        t = self.transport
        peer = t.get_extra_info("peername") if t is not None else None
        client = f"{peer[0]}:{peer[1]}" if peer else ""
        _, ip, port = self.listener.key
        kind = self.listener.kind
        frontend = {"kind": {"cluster": "clusterIP"}.get(kind, kind), "address": f"{ip}:{port}"}
        self.pair.trace = HUB.proxy_open(self.pair.state.spn, client, frontend, f"{ep[0]}:{ep[1]}", self.why, self.failed)

    def client_ip(self) -> str:
        ip = self.peer_ip
        if ip is None:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            ip = self.peer_ip = peer[0] if peer else ""
        return ip

    def dial(self) -> None:
        pair = self.pair
        if pair.done:
            return
        state = pair.state
        attempt = self.attempt
        balancer = self.listener.balancer
        ep = None
        if attempt < len(DIAL_TIMEOUTS):
            try:
                # The client's address is read only when affinity needs it (a getpeername per connection).
                ep = balancer.next(self.client_ip(), reset=attempt > 0)
            except NoEndpoints:
                pass
        if ep is None:
            log.info("no endpoint reachable", extra={"kv": {"service": state.label, "client": self.client_ip()}})
            if pair.client is not None:
                pair.finish(pair.client, ConnectionError("no endpoint"))
                reset(pair.client)
            return
        if HUB.on:
            self.why = "failover" if attempt > 0 else "affinity" if balancer.affinity and balancer.hit else "round robin"
        backend = BackendSide(pair, self, ep)
        listener = self.listener
        loop = listener.loop
        # One native connect (numeric address: no resolver), from the client's address when it is on this
        # machine (one bind more); the transport sets TCP_NODELAY itself.
        src = source_for(self.client_ip(), ep[0])
        if src is None:
            task = loop.create_task(loop.create_connection(backend.factory, ep[0], ep[1]))
        else:
            task = loop.create_task(loop.create_connection(backend.factory, ep[0], ep[1], local_addr=src))
        backend.task = task
        backend.timer = loop.call_later(DIAL_TIMEOUTS[attempt], backend.expire)
        task.add_done_callback(backend.dialled)
        listener.tasks.add(task)


class TcpListener:
    """A listening socket whose connections go to ``state`` (re-targeted in place on reconcile)."""

    def __init__(self, key: tuple[str, str, int], state: PortState, tasks: set[asyncio.Task[Any]], workers: int = 1) -> None:
        self.key = key
        self.state = state
        self.tasks = tasks
        self.workers = workers  # > 1: SO_REUSEPORT, shared with that many processes
        self.server: asyncio.AbstractServer | None = None
        self.sock: socket.socket | None = None
        self.steered = False
        self.kind = "cluster"
        self.allowed: list[Any] | None = None  # loadBalancerSourceRanges of an LB address

    def configure(self, kind: str) -> None:
        self.kind = kind
        self.allowed = source_ranges(self.state, kind)

    @property
    def balancer(self) -> Any:
        return self.state.balancer_for(self.kind)

    def allows(self, ip: str) -> bool:
        return allowed_by(self.allowed, ip)

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        _, ip, port = self.key
        sock = bind_socket(ip, port, socket.SOCK_STREAM, self.workers > 1)
        try:
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
