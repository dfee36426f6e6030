"""The floor of a Python HTTP proxy on uvloop, for bench/ingress_floor.py: asyncio protocols that relay bytes and do
nothing else. Each client connection gets one upstream connection of its own (dialled when the client connects),
and each request gets the same extra header block the proxies add (X-Request-ID, X-Forwarded-*, ...; fixed bytes,
so the backend reads as much as through a proxy), appended without parsing: the request must end its chunk with
its blank line, as wrk's do. Not a proxy (no framing, no checks): only what one read and one write per direction
cost through uvloop's transports and a Python callback.

Run: python bench/_relay.py LISTEN_PORT BACKEND_PORT   (127.0.0.1 only; SO_REUSEPORT, so N of them are N workers;
stops on SIGTERM)
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvloop

HOST = "127.0.0.1"
EXTRA = (b"X-Request-ID: 0123456789abcdef0123456789abcdef\r\nX-Forwarded-Host: 127.0.0.1:8080\r\n"
         b"X-Real-IP: 127.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Port: 8080\r\nX-Forwarded-Proto: http\r\n"
         b"X-Forwarded-Scheme: http\r\nX-Scheme: http\r\n\r\n")


class Upstream(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.transport: Any = None
        self.up: Upstream | None = None
        self.held: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        asyncio.get_running_loop().create_task(self.dial())

    async def dial(self) -> None:
        try:
            _, up = await asyncio.get_running_loop().create_connection(lambda: Upstream(self), HOST, self.backend)
        except OSError:
            self.transport.close()
            return
        self.up = up
        for data in self.held:
            up.transport.write(data)
        self.held = []

    def data_received(self, data: bytes) -> None:
        if data.endswith(b"\r\n\r\n"):
            data = data[:-2] + EXTRA
        if self.up is None:
            self.held.append(data)
        else:
            self.up.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.up is not None:
            self.up.transport.close()


async def main(port: int, backend: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Client(backend), HOST, port, reuse_port=True, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2])))
