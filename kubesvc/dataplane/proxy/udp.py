"""UDP forwarding: one unconnected socket per (ip, port) and a flow table keyed by client address.

Rules kept here (spec dataplane.md §1.8):
- A new client ``ip:port`` picks an endpoint (round robin / affinity) and gets its own socket connected to
  it; later datagrams of that client reuse it. Replies are sent from the service socket, so they come
  from the service address.
- Idle timeout (``--udp-timeout``, default 10 s): a flow idle in both directions for that long is closed by
  a sweep that runs every ``min(1 s, timeout / 2)``; its next datagram starts a fresh flow. kube-proxy's
  250 ms was too short for slow backends; conntrack's 30 s keeps too many sockets for fresh-port clients.
- The table is bounded (``MAX_FLOWS`` per listener): when full, idle flows are swept and, if it is still
  full, the datagram is dropped and counted.
- Datagrams up to 64 KiB pass whole (userspace kube-proxy truncated at 4 KiB).
- No ready endpoint: the service port's sockets are closed (server.py), so nothing is bound at the address
  and the kernel answers ICMP port unreachable (a connected client's recv fails with ECONNREFUSED), like
  kube-proxy's REJECT rule. A datagram that still arrives (in the instant before the close) is dropped and
  counted as rejected. A backend answering with ICMP port-unreachable ends its flow.
- Source address: a flow's socket is bound to the client's address when the client is on this machine
  (``tcp.source_for``), so the endpoint sees the client's IP.
- Worker processes: the service socket is shared with SO_REUSEPORT; the kernel keeps a client's datagrams
  on one process (4-tuple hash, or the client-address program for ClientIP affinity), whose flow table
  holds that client.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from kubesvc.dataplane.proxy.balancer import NoEndpoints
from kubesvc.dataplane.proxy.tcp import allowed_by, source_for, source_ranges, steer_by_client_ip
from kubesvc.dataplane.runtime import bind_socket

if TYPE_CHECKING:
    from kubesvc.dataplane.proxy.server import PortState

log = logging.getLogger("kubesvc.proxy")

MAX_FLOWS = 16384
MAX_DATAGRAM = 65535


class Flow:
    __slots__ = ("sock", "client", "last", "fd")

    def __init__(self, sock: socket.socket, client: Any, now: float) -> None:
        self.sock = sock
        self.client = client
        self.last = now
        self.fd = sock.fileno()


class UdpListener(asyncio.DatagramProtocol):
    def __init__(self, key: tuple[str, str, int], state: PortState, idle_timeout: float, workers: int = 1) -> None:
        self.key = key
        self.state = state
        self.idle_timeout = idle_timeout
        self.workers = workers  # > 1: SO_REUSEPORT, shared with that many processes
        self.sock: socket.socket | None = None
        self.steered = False
        self.flows: dict[Any, Flow] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.kind = "cluster"
        self.allowed: list[Any] | None = None  # loadBalancerSourceRanges of an LB address

    async def open(self) -> None:
        _, ip, port = self.key
        sock = bind_socket(ip, port, socket.SOCK_DGRAM, self.workers > 1)
        try:
            self.loop = asyncio.get_running_loop()
            await self.loop.create_datagram_endpoint(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.steer()
        self._schedule_sweep()

    def steer(self) -> None:
        config = self.state.config
        want = self.workers > 1 and config is not None and config.affinity
        if self.sock is not None and want != self.steered:
            steer_by_client_ip(self.sock, self.workers, want)
            self.steered = want

    def configure(self, kind: str) -> None:
        self.kind = kind
        self.allowed = source_ranges(self.state, kind)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        state = self.state
        m = state.metrics
        m.datagrams_in += 1
        flow = self.flows.get(addr)
        now = time.monotonic()
        if flow is None:
            if self.allowed is not None and not allowed_by(self.allowed, addr[0]):
                m.rejected += 1  # outside loadBalancerSourceRanges: dropped, as kube-proxy's firewall chain
                return
            flow = self._new_flow(addr, now)
            if flow is None:
                return
        flow.last = now
        try:
            flow.sock.send(data)
        except BlockingIOError:
            pass  # the kernel queue is full: drop, as a router would
        except OSError:
            self._close_flow(flow)

    def _new_flow(self, addr: Any, now: float) -> Flow | None:
        state = self.state
        if len(self.flows) >= MAX_FLOWS:
            self.sweep()
            if len(self.flows) >= MAX_FLOWS:
                state.metrics.rejected += 1
                return None
        try:
            ep = state.balancer_for(self.kind).next(addr[0])
        except NoEndpoints:
            state.metrics.rejected += 1
            return None
        sock = socket.socket(socket.AF_INET6 if ":" in ep[0] else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            src = source_for(addr[0], ep[0])
            if src is not None:
                sock.bind(src)
            sock.connect(ep)
        except OSError:
            sock.close()
            state.metrics.connect_failures += 1
            return None
        flow = Flow(sock, addr, now)
        self.flows[addr] = flow
        state.metrics.flows += 1
        assert self.loop is not None
        self.loop.add_reader(flow.fd, self._reply, flow)
        return flow

    def _reply(self, flow: Flow) -> None:
        transport = self.transport
        m = self.state.metrics
        for _ in range(64):  # bounded batch per wake-up
            try:
                data = flow.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:  # ICMP refused and friends: end this flow
                self._close_flow(flow)
                return
            flow.last = time.monotonic()
            m.datagrams_out += 1
            if transport is not None:
                transport.sendto(data, flow.client)

    def _close_flow(self, flow: Flow) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
            self.state.metrics.flows -= 1
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(flow.fd)
        flow.sock.close()

    def sweep(self) -> None:
        deadline = time.monotonic() - self.idle_timeout
        for flow in [f for f in self.flows.values() if f.last <= deadline]:
            self._close_flow(flow)

    def _schedule_sweep(self) -> None:
        assert self.loop is not None
        self._sweeper = self.loop.call_later(min(1.0, self.idle_timeout / 2), self._sweep_tick)

    def _sweep_tick(self) -> None:
        self.sweep()
        if self.transport is not None:
            self._schedule_sweep()

    def close(self) -> None:
        """Closing a UDP service address ends its flows (there is no connection to keep)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for flow in list(self.flows.values()):
            self._close_flow(flow)
        if self.transport is not None:
            self.transport.close()
            self.transport = None
