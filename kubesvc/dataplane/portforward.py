"""Local port forwarding to a pod (`kubesvc port-forward`): listen on local ports, relay each connection to
``podIP:port``.

Rules kept here:
- One listener per (address, local port); local port 0 picks a free one. Loopback only unless the caller
  passes other addresses.
- Each accepted connection dials the pod anew; a refused dial is reported (kubectl's wording:
  ``an error occurred forwarding L -> R: ...``) and closes that connection only, the listener stays.
- Lines like kubectl's: ``Forwarding from 127.0.0.1:L -> R`` once listening, ``Handling connection for L``
  per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mapping:
    local: int
    remote: int


def parse_ports(specs: list[str]) -> list[Mapping]:
    from kubesvc.errors import ClientError

    out = []
    for spec in specs:
        local, sep, remote = spec.partition(":")
        if not sep:
            local, remote = spec, spec
        local = local or "0"
        if not (local.isdigit() and remote.isdigit()) or not 0 <= int(local) < 65536 or not 0 < int(remote) < 65536:
            raise ClientError(f'Error parsing local port \'{spec}\': should be [LOCAL_PORT:]REMOTE_PORT'
                              if not local.isdigit() else f"Error parsing remote port '{remote}': must be between 1 and 65535")
        out.append(Mapping(int(local), int(remote)))
    return out


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def serve(pod_ip: str, mappings: list[Mapping], addresses: list[str], say: Callable[[str], None],
                complain: Callable[[str], None], stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    servers = []

    def handler(m: Mapping) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            local = w.get_extra_info("sockname")[1]  # the bound port (a requested 0 picked one)
            say(f"Handling connection for {local}")
            try:
                pr, pw = await asyncio.open_connection(pod_ip, m.remote)
            except OSError as e:
                why = os.strerror(e.errno).lower() if e.errno else str(e)
                complain(f"an error occurred forwarding {local} -> {m.remote}: dial tcp {pod_ip}:{m.remote}: connect: {why}")
                w.close()
                return
            try:
                await asyncio.gather(_pipe(r, pw), _pipe(pr, w))
            finally:
                pw.close()
                w.close()

        return client

    try:
        for m in mappings:
            local = m.local
            for addr in addresses:
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                srv = await asyncio.start_server(handler(m), addr, local, family=family, reuse_address=True)
                servers.append(srv)
                local = srv.sockets[0].getsockname()[1]
                shown = f"[{addr}]" if ":" in addr else addr
                say(f"Forwarding from {shown}:{local} -> {m.remote}")
        await stop.wait()
    finally:
        for srv in servers:
            srv.close()
