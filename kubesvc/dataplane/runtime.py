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
- Supervision: every long-running task of a component runs under ``supervise`` (a step repeated every
  ``interval``): an exception is logged at error level with its cause, the task is retried with back-off
  (``BACKOFF_FIRST`` doubling to ``BACKOFF_MAX``), and the component's ``Health`` names it with the reason until a
  step succeeds again (logged as recovered); ``/healthz`` answers 503 with those reasons meanwhile. Nothing dies
  quietly: a bug, a locked or vanished store, a read-only run directory or a full disk are all a log line and a 503.
- ``/healthz``: every long-running component serves its ``Health`` on loopback (``serve_health``; proxy 10256,
  kubelet 10248, DNS 8181, ingress 10254, each ``--healthz-bind-address``): 200 while every supervised task
  succeeds, 503 with the failing tasks and their reasons while one does not. When the default address is taken, a
  free port on loopback is used and named in a warning and in the ready line (``healthz=``); an address given by
  flag must bind.
- ``StoreFollower`` is the one store-following loop of proxy, DNS, ingress and kubelet: it probes SQLite's
  ``data_version`` every ``interval`` on the event loop (a few microseconds) and awaits the component's ``sync``
  when another connection committed (or every ``period``); a failed sync is retried (the change is not lost).
- ``WorkerProcesses`` is the one supervisor of worker processes (``--workers N`` of proxy and ingress): start and
  wait for each ready line, restart the dead with back-off (logged with the exit code or signal), stop them all.
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


BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


def describe(e: BaseException) -> str:
    """``OSError: [Errno 30] Read-only file system: '/x'``: the cause of a failure, one line."""
    text = str(e) or repr(e)
    return f"{type(e).__name__}: {text}".replace("\n", " ")


class Health:
    """What ``/healthz`` says: the supervised tasks failing now, each with its reason."""

    def __init__(self) -> None:
        self.failing: dict[str, str] = {}

    @property
    def ok(self) -> bool:
        return not self.failing

    def fail(self, task: str, reason: str) -> None:
        self.failing[task] = reason

    def recover(self, task: str) -> None:
        self.failing.pop(task, None)

    def reasons(self) -> list[str]:
        return [f"{task}: {why}" for task, why in sorted(self.failing.items())]


async def supervise(task: str, step: Callable[[], Awaitable[Any]], interval: float, health: Health,
                    logger: logging.Logger | None = None) -> None:
    """Run ``step()`` every ``interval`` seconds until cancelled. A failure is logged with its cause, marks
    ``task`` failing in ``health`` and is retried after a back-off that doubles up to ``BACKOFF_MAX``; the first
    success after a failure is logged and clears it."""
    lg = logger or log
    backoff = 0.0
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            backoff = min(BACKOFF_MAX, backoff * 2) if backoff else BACKOFF_FIRST
            why = describe(e)
            if health.failing.get(task) != why:
                lg.error(f"{task} failed; retrying", extra={"kv": {"task": task, "error": why, "retryIn": f"{backoff:g}s"}},
                         exc_info=not isinstance(e, OSError))
            health.fail(task, why)
            await asyncio.sleep(backoff)
            continue
        if backoff:
            backoff = 0.0
            lg.info(f"{task} recovered", extra={"kv": {"task": task}})
            health.recover(task)
        await asyncio.sleep(interval)


# ------------------------------------------------------------------------------------- /healthz

Route = Callable[[], tuple[int, str, str]]  # -> (status, content type, body)
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


class HttpProtocol(asyncio.Protocol):
    """One request per connection; enough for curl, Prometheus and health probes (the proxy's /healthz and
    /metrics, every other component's /healthz)."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" not in self.buf and b"\n\n" not in self.buf:
            if len(self.buf) > 16384:
                self._reply(400, "text/plain", "bad request\n")
            return
        line = self.buf.split(b"\n", 1)[0].decode("latin-1").strip().split()
        method, path = (line + ["", ""])[:2]
        path = path.split("?", 1)[0]
        route = self.routes.get(path)
        if method not in ("GET", "HEAD"):
            self._reply(405, "text/plain", "method not allowed\n")
        elif route is None:
            self._reply(404, "text/plain", "404 page not found\n")
        else:
            status, ctype, body = route()
            self._reply(status, ctype, "" if method == "HEAD" else body)

    def _reply(self, status: int, ctype: str, body: str) -> None:
        data = body.encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.write(head.encode() + data)
        self.transport.close()


async def serve_http(host: str, port: int, routes: dict[str, Route]) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpProtocol(routes), host, port, reuse_address=True)


def healthz(component: str, health: Health) -> Route:
    """``/healthz`` of a component: 200 ``{"component": ..., "status": "ok"}`` while every supervised task
    succeeds; 503 with ``"status": "failing"`` and ``"failing": ["store: OperationalError: ..."]`` while one does
    not (the store follower among them: the component is not following the store)."""

    def route() -> tuple[int, str, str]:
        body: dict[str, Any] = {"component": component, "status": "ok" if health.ok else "failing"}
        if not health.ok:
            body["failing"] = health.reasons()
        return (200 if health.ok else 503), "application/json", json.dumps(body) + "\n"

    return route


async def serve_health(text: str | None, default: str, flag: str, component: str, health: Health,
                       paths: tuple[str, ...] = HEALTH_PATHS, logger: logging.Logger | None = None
                       ) -> tuple[asyncio.Server | None, str | None]:
    """Serve ``health`` on ``text`` (ADDR:PORT, port 0 picks one; "" disables; None: ``default``). Returns the
    server and the address bound (None, None when disabled), which the ready line carries as ``healthz=``. An
    address given by flag that cannot be bound raises a one-line ``ClientError`` naming ``flag``; when the default
    one cannot (another instance on this machine has it), a free port on the same address is used instead, with a
    warning naming it (as ``kubesvc up`` falls back for its other listen addresses)."""
    from kubesvc.errors import ClientError

    if text == "":
        return None, None
    given = text is not None
    host, port = parse_address(text if given else default, flag, default)  # type: ignore[misc,arg-type]
    routes = dict.fromkeys(paths, healthz(component, health))
    try:
        srv = await serve_http(host, port, routes)
    except OSError as e:
        why = bind_reason(e, port)
        if given:
            raise ClientError(f"cannot listen on {text} ({flag}): {why}; choose another {flag} (port 0 picks a free one, "
                              '"" disables)') from None
        try:
            srv = await serve_http(host, 0, routes)
        except OSError as e2:
            (logger or log).warning(f"cannot serve /healthz: {flag} {default}: {why}, and no free port: {bind_reason(e2, 0)}")
            return None, None
        h, p = srv.sockets[0].getsockname()[:2]
        (logger or log).warning(f"{flag} {default}: {why}; serving /healthz on {h}:{p}", extra={"kv": {"healthz": f"{h}:{p}"}})
    h, p = srv.sockets[0].getsockname()[:2]
    return srv, (f"[{h}]:{p}" if ":" in h else f"{h}:{p}")


class StoreFollower:
    """The store follower every component shares: ``sync(store)`` is awaited once the store's ``data_version``
    moved (another connection committed), or every ``period`` seconds when set. Run with ``run()`` (supervised as
    task ``store``): a failure is logged, retried with back-off and shown by ``health``; the change that failed to
    sync is synced again on the retry."""

    def __init__(self, path: str, interval: float, sync: Callable[[Any], Awaitable[Any]], health: Health, *,
                 period: float | None = None, logger: logging.Logger | None = None, task: str = "store") -> None:
        self.path, self.interval, self.sync, self.health = path, interval, sync, health
        self.period, self.logger, self.task = period, logger, task
        self.store: Any = None
        self.seen = -1  # the first step always syncs: a commit just after the start-up snapshot is not missed
        self.last = 0.0

    async def step(self) -> None:
        if self.store is None:
            from kubesvc.store.db import Store

            self.store = Store(self.path)
        dv = self.store.data_version()
        now = time.monotonic()
        if dv != self.seen or (self.period is not None and now - self.last >= self.period):
            await self.sync(self.store)
            self.seen, self.last = dv, now

    async def run(self) -> None:
        try:
            await supervise(self.task, self.step, self.interval, self.health, self.logger)
        finally:
            if self.store is not None:
                self.store.close()
                self.store = None


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


# ------------------------------------------------------------------------------------- worker processes


def die_with_parent(parent: int | None = None) -> bool:
    """Linux: SIGTERM this process when its parent dies (even by SIGKILL). False when ``parent`` is gone already."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the caller's getppid() check still notices
    return parent is None or os.getppid() == parent


def exit_text(code: int) -> str:
    return f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


class WorkerProcesses:
    """The worker processes of a primary (``--workers N`` of proxy and ingress): ``argv()`` starts one; each prints
    a line starting with ``ready_prefix`` once it serves. ``start`` waits for every one (a worker that does not is
    a one-line start error); ``supervise`` (called every second or so) restarts the dead, logging how each died,
    with a back-off per slot that doubles up to ``BACKOFF_MAX`` * 6 while a worker keeps dying young."""

    def __init__(self, what: str, argv: Callable[[], list[str]], count: int, ready_prefix: bytes,
                 start_seconds: float = 60.0, logger: logging.Logger | None = None) -> None:
        import subprocess

        self.what, self.argv, self.count, self.ready_prefix = what, argv, count, ready_prefix
        self.start_seconds = start_seconds
        self.log = logger or log
        self.procs: dict[int, subprocess.Popen[bytes]] = {}  # slot -> process
        self.started: dict[int, float] = {}
        self.restart_at: dict[int, float] = {}
        self.delay: dict[int, float] = {}
        self.stopping = False

    def spawn(self, slot: int, wait_ready: bool) -> Any:
        """A worker; its ready line comes on a pipe when ``wait_ready``, else it goes nowhere (a restart is not
        awaited, and a closed pipe would break the worker's ready write)."""
        import subprocess

        out = subprocess.PIPE if wait_ready else subprocess.DEVNULL
        proc = subprocess.Popen(self.argv(), stdout=out, stdin=subprocess.DEVNULL)
        self.procs[slot] = proc
        self.started[slot] = time.monotonic()
        return proc

    async def start(self) -> None:
        from kubesvc.errors import ClientError

        procs = [self.spawn(slot, True) for slot in range(1, self.count)]
        loop = asyncio.get_running_loop()
        for proc in procs:
            assert proc.stdout is not None
            try:
                line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), self.start_seconds)
            except TimeoutError:
                line = b""
            proc.stdout.close()
            if not line.startswith(self.ready_prefix):
                self.stop(0.5)
                code = proc.poll()
                raise ClientError(f"{self.what} {proc.pid} failed to start ({exit_text(code) if code is not None else 'no ready line'}; "
                                  "see the lines above)")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def supervise(self) -> None:
        """Restart workers that exited (from the primary's housekeeping; never blocks)."""
        if self.stopping:
            return
        now = time.monotonic()
        for slot, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            due = self.restart_at.get(slot)
            if due is None:
                young = now - self.started.get(slot, now) < 10.0
                delay = min(BACKOFF_MAX * 6, self.delay.get(slot, 0.5) * 2) if young else 1.0
                self.delay[slot] = delay
                self.restart_at[slot] = now + delay
                self.log.error(f"{self.what} exited; restarting", extra={"kv": {"pid": proc.pid, "cause": exit_text(code),
                                                                                "retryIn": f"{delay:g}s"}})
                continue
            if now >= due:
                del self.restart_at[slot]
                self.spawn(slot, False)

    def terminate(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()

    def stop(self, grace: float) -> None:
        """SIGTERM every worker, wait up to ``grace`` seconds in all, SIGKILL the rest."""
        import subprocess

        self.terminate()
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
