"""``--isolation netns``: the pods' nameserver, 169.254.1.1:53, relayed to the cluster DNS.

Rules kept here:
- Pods in their own network namespace cannot reach the host's loopback, where the cluster DNS listens
  (127.96.0.10:53, or ``--cluster-dns``). Their resolv.conf names the gateway address every pod routes to,
  169.254.1.1; the agent listens there (UDP and TCP, ``IP_FREEBIND`` so it may start before the first
  veth holds the address) and relays each query to the cluster DNS, each answer back.
- UDP: one upstream socket per query, 5 s to answer, else nothing (the client's resolver retries).
  TCP: one upstream connection per client connection, bytes copied both ways.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("kubesvc.kubelet")
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, upstream: Callable[[], tuple[str, int]]) -> None:
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._relay(data, addr))

    async def _relay(self, data: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.upstream())
            await loop.sock_sendall(sock, data)
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            if self.transport is not None:
                self.transport.sendto(reply, addr)
        except (OSError, TimeoutError) as e:
            log.debug("dns relay: no answer", extra={"kv": {"error": str(e)}})
        finally:
            sock.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65535):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def _bound(kind: int, host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    s.bind((host, port))
    return s


class Relay:
    def __init__(self, host: str, port: int, upstream: Callable[[], tuple[str, int]]) -> None:
        self.host, self.port, self.upstream = host, port, upstream
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self.upstream),
                                                          sock=_bound(socket.SOCK_DGRAM, self.host, self.port))

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*self.upstream()), 5)
            except (OSError, TimeoutError):
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))

        tcp = _bound(socket.SOCK_STREAM, self.host, self.port)
        tcp.listen(128)
        self.tcp = await asyncio.start_server(client, sock=tcp)

    def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
