"""Backend servers for tests: TCP (echo, count, http) and UDP echo on a loopback address, port 0 by default.

Each server runs its own asyncio loop on a thread, is bound before the constructor returns (no race), and
``stop()`` closes the listener and every open connection (a backend "going away" mid-run).
Modes (TCP):
- ``echo``: echo every chunk back, close after the client's EOF.
- ``count``: read until EOF, then answer ``<name>:<bytes>\\n`` and close (half-close tests, round robin).
- ``http``: answer any request with ``200`` and body ``<name>\\n`` (one request per connection).
- ``name``: send ``<name>\\n`` at once, then echo; keeps the connection open (identity of held conns).
- ``peer``: like ``http``, but the body is the client address the backend sees, ``<ip>\\n`` (source IP tests).
UDP answers ``<name>:<datagram>`` (mode ``peer``: the client address it sees, ``<ip>``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any


class _Tcp(asyncio.Protocol):
    def __init__(self, srv: Backend) -> None:
        self.srv = srv
        self.n = 0
        self.buf = b""

    def connection_made(self, transport: Any) -> None:
        self.t = transport
        self.srv.conns.add(transport)
        self.srv.accepted += 1
        if self.srv.mode == "name":
            transport.write(f"{self.srv.name}\n".encode())

    def data_received(self, data: bytes) -> None:
        mode = self.srv.mode
        if mode in ("echo", "name"):
            self.t.write(data)
        elif mode == "count":
            self.n += len(data)
        elif mode in ("http", "peer"):
            self.buf += data
            if b"\r\n\r\n" in self.buf:
                body = f"{self.t.get_extra_info('peername')[0] if mode == 'peer' else self.srv.name}\n".encode()
                self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                self.t.close()

    def pause_writing(self) -> None:  # a well-behaved backend: stop reading while its output is stuck
        self.t.pause_reading()

    def resume_writing(self) -> None:
        self.t.resume_reading()

    def eof_received(self) -> bool:
        if self.srv.mode == "count":
            self.t.write(f"{self.srv.name}:{self.n}\n".encode())
        self.t.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.srv.conns.discard(self.t)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, srv: Backend) -> None:
        self.srv = srv

    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.srv.accepted += 1
        if self.srv.mode == "peer":
            self.t.sendto(addr[0].encode(), addr)
        else:
            self.t.sendto(f"{self.srv.name}:".encode() + data, addr)


class Backend:
    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, mode: str = "echo", proto: str = "TCP") -> None:
        self.name, self.host, self.mode, self.proto = name, host, mode, proto
        self.conns: set[Any] = set()
        self.accepted = 0
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(port,), daemon=True, name=f"backend-{name}")
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            self.loop.close()
            raise self._error

    def _main(self, port: int) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            if self.proto == "UDP":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((self.host, port))
                self.transport, _ = self.loop.run_until_complete(self.loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock))
                self.port = sock.getsockname()[1]
                self.server = None
            else:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, port))
                self.server = self.loop.run_until_complete(self.loop.create_server(lambda: _Tcp(self), sock=sock, backlog=2048))
                self.port = sock.getsockname()[1]
        except BaseException as e:  # reported to the constructor
            self._error = e
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
        else:
            self.transport.close()
        for t in list(self.conns):
            t.abort()
        self.loop.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._shutdown)
            self._thread.join(10)


def backends_on_one_port(names: list[str], hosts: list[str], mode: str = "count", proto: str = "TCP") -> list[Backend]:
    """One backend per host, all on the same port (a Service has one targetPort). Retries a few ports."""
    for _ in range(20):
        first = Backend(names[0], hosts[0], 0, mode, proto)
        out = [first]
        try:
            for name, host in zip(names[1:], hosts[1:], strict=True):
                out.append(Backend(name, host, first.port, mode, proto))
            return out
        except OSError:
            for b in out:
                b.stop()
    raise RuntimeError("no common free port for the backends")
