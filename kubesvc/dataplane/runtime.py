"""What every data-plane server shares: the event loop, signals, logs, file limits and the ready line.

Rules kept here:
- uvloop when installed, else asyncio's default loop.
- SIGTERM and SIGINT set a stop event; the server stops accepting, closes listeners and returns 0.
- Logs are one line each on stderr, ``time=... level=... msg="..." key=value``; ``-v`` raises verbosity
  (0: start, stop, errors; 1: every sync; 2: per-connection failures).
- The ready line is one stdout line ``kubesvc <component> ready key=value ...`` printed once the server
  serves; the supervisor (``kubesvc up``) and tests wait for it and read the bound addresses from it.
- RLIMIT_NOFILE is raised to the hard limit (kube-proxy raised it to 64000): each proxied TCP connection
  holds two descriptors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import time
from typing import Any, Awaitable, Callable

log = logging.getLogger("kubesvc.runtime")

READY_WORD = "ready"


def ready_line(component: str, fields: dict[str, Any]) -> str:
    return " ".join([f"kubesvc {component} {READY_WORD}", *(f"{k}={v}" for k, v in fields.items())])


def parse_ready_line(component: str, line: str) -> dict[str, str] | None:
    prefix = f"kubesvc {component} {READY_WORD}"
    if not line.startswith(prefix):
        return None
    out: dict[str, str] = {}
    for tok in line[len(prefix) :].split():
        k, sep, v = tok.partition("=")
        if sep:
            out[k] = v
    return out


def announce_ready(component: str, fields: dict[str, Any]) -> None:
    sys.stdout.write(ready_line(component, fields) + "\n")
    sys.stdout.flush()


class KVFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        parts = [f"time={ts}", f"level={record.levelname.lower()}", f"msg={json.dumps(record.getMessage())}"]
        for k, v in (getattr(record, "kv", None) or {}).items():
            s = str(v)
            quote = not s or any(c in s for c in ' ="')
            parts.append(f"{k}={json.dumps(s) if quote else s}")
        return " ".join(parts)


def setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KVFormatter())
    root = logging.getLogger("kubesvc")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)


def raise_nofile_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def run(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop_event)`` on the best loop with SIGTERM/SIGINT wired to the stop event."""
    raise_nofile_limit()

    async def wrapper() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        return await main(stop)

    try:
        import uvloop

        return uvloop.run(wrapper())
    except ImportError:
        return asyncio.run(wrapper())


def parse_address(text: str, flag: str, example: str, *, allow_empty: bool = False) -> tuple[str, int] | None:
    """ADDR:PORT (IPv6 in brackets; port 0 = pick a free one) from a flag, or a one-line ClientError."""
    import ipaddress

    from kubesvc.errors import ClientError

    if text == "" and allow_empty:
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError
    except ValueError:
        extra = "; empty disables" if allow_empty else ""
        raise ClientError(f'invalid {flag} "{text}": want ADDR:PORT, e.g. {example} (port 0 picks a free one{extra})') from None
    return host, int(port)


def bind_socket(ip: str, port: int, kind: int, reuse_port: bool) -> socket.socket:
    """A non-blocking listening-side socket bound to ip:port (SO_REUSEPORT when worker processes share it)."""
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((ip, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class StoreProbe:
    """On the loop, every ``interval`` seconds: call ``on_change`` when another connection committed to the store.

    The probe is SQLite's ``data_version`` (a few microseconds). Servers run it on their event loop and leave the
    rebuild to a thread that ``on_change`` wakes: a thread waking every poll interval by itself would take the GIL
    from the serving loop that often (py-spy showed it at ~5% of the ingress router's CPU under load)."""

    def __init__(self, path: str, interval: float, on_change: Callable[[], None], loop: asyncio.AbstractEventLoop) -> None:
        from kubesvc.store.db import Store

        self.store = Store(path)
        self.version = self.store.data_version()
        self.interval, self.on_change, self.loop = interval, on_change, loop
        self.handle: asyncio.TimerHandle | None = loop.call_later(interval, self.tick)

    def tick(self) -> None:
        try:
            v = self.store.data_version()
        except Exception as e:  # a locked or vanished store: try again next tick
            log.debug("store probe failed", extra={"kv": {"error": str(e)}})
        else:
            if v != self.version:
                self.version = v
                self.on_change()
        self.handle = self.loop.call_later(self.interval, self.tick)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.store.close()
