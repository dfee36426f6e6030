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
- A bind failure is told by its errno (uvloop hides it in ``__cause__``), with the sysctl that decides which
  ports need root (``net.ipv4.ip_unprivileged_port_start``).
- A component started by ``kubesvc up`` gets the store's identity (device and inode) in ``KUBESVC_STORE_GUARD``;
  its ``StoreGuard`` thread stops it (SIGTERM to itself) once the file at the store's path is deleted or replaced,
  so nothing serves a store that is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

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


# ------------------------------------------------------------------------------------- binding


def unprivileged_port_start() -> int:
    """The first port an unprivileged process may bind (Linux >= 4.11; 1024 elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1024


def bind_errno(e: OSError) -> int | None:
    """The errno of a failed bind: uvloop raises ``could not bind to local_addr`` with the reason in ``__cause__``."""
    if e.errno:
        return e.errno
    cause = e.__cause__ or e.__context__
    return cause.errno if isinstance(cause, OSError) and cause.errno else None


def needs_root(port: int, errno_: int | None) -> bool:
    import errno

    return errno_ in (errno.EACCES, errno.EPERM) and 0 < port < unprivileged_port_start()


def bind_reason(e: OSError, port: int) -> str:
    """``Permission denied (...)``, ``Address already in use``...: the reason a bind of ``port`` failed."""
    import errno

    code = bind_errno(e)
    why = os.strerror(code) if code else str(e)
    if needs_root(port, code):
        return f"{why} (ports below {unprivileged_port_start()} need root: net.ipv4.ip_unprivileged_port_start={unprivileged_port_start()})"
    if code == errno.EADDRNOTAVAIL:
        return f"{why} (the address is not on this machine)"
    return why


# ------------------------------------------------------------------------------------- the store's identity

STORE_GUARD_ENV = "KUBESVC_STORE_GUARD"


def store_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the store file, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def store_change(path: str, identity: tuple[int, int]) -> str | None:
    """None while ``path`` is still the file whose identity was taken; else "deleted" or "replaced"."""
    now = store_identity(path)
    if now is None:
        return "deleted"
    return None if now == identity else "replaced"


def store_guard_env(path: str, identity: tuple[int, int]) -> str:
    return json.dumps({"store": os.path.abspath(path), "dev": identity[0], "ino": identity[1]})


class StoreGuard(threading.Thread):
    """Every ``interval`` seconds, one ``stat`` of the store's path; when the file is gone or another, log it and
    SIGTERM this process (each component stops cleanly on SIGTERM), and exit hard if it is still alive ``grace``
    seconds later. A thread, not a task, so every component gets it whatever its loop (the API server has none)."""

    def __init__(self, path: str, identity: tuple[int, int], interval: float = 0.25, grace: float = 15.0) -> None:
        super().__init__(name="store-guard", daemon=True)
        self.path, self.identity, self.interval, self.grace = path, identity, interval, grace
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            change = store_change(self.path, self.identity)
            if change is None:
                continue
            record = logging.LogRecord("kubesvc.runtime", logging.ERROR, __file__, 0,
                                       f"the store was {change} under this component; stopping", None, None)
            record.kv = {"store": self.path}
            sys.stderr.write(KVFormatter().format(record) + "\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGTERM)
            if not self.stopped.wait(self.grace):
                os._exit(1)
            return


def start_store_guard_from_env() -> StoreGuard | None:
    """Start a ``StoreGuard`` when ``kubesvc up`` asked for one. The variable is removed so that processes this one
    starts (proxy and ingress workers, the kubelet's pods) do not inherit it."""
    raw = os.environ.pop(STORE_GUARD_ENV, None)
    if not raw:
        return None
    try:
        info = json.loads(raw)
        guard = StoreGuard(str(info["store"]), (int(info["dev"]), int(info["ino"])))
    except (ValueError, KeyError, TypeError):
        return None
    guard.start()
    return guard
