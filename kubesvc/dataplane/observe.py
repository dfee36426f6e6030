"""What the components show `kubesvc top` and `kubesvc trace`: a snapshot and an event stream on a local socket.

Rules kept here:
- Each process of a component (the proxy, each proxy worker, the DNS server, the ingress router and its workers)
  serves one unix socket, ``<store>.d/run/<component>-<pid>.sock``: the directory is made mode 0700, the socket
  chmod 0600, so only its owner (and root) can connect; each accepted peer's uid (SO_PEERCRED) must also be this
  process's uid or root, and the client checks the server's uid the same way. A socket whose process is gone is
  removed by the next component to start and skipped by clients.
- Protocol: JSON lines. The client sends ``{"op": "snapshot"}`` (any number of times: one line back each) or
  ``{"op": "trace", "service": "ns/name", "to": "ip:port"}`` (then one line per event until it leaves).
- Costs nothing while no one is attached: the hot paths test one attribute, ``HUB.on``, true only while a client
  is connected. While one is, per-connection, per-query and per-request hooks count (``ProxyStats``, ``dns``,
  ``ingress``); events are encoded only while a trace subscriber is connected.
- Bounded: a subscriber whose unread output passes ``MAX_BUFFERED`` is dropped (never waited for), requests over
  ``MAX_REQUEST`` bytes close the connection, the tables of DNS names and ingress rules stop growing at
  ``MAX_KEYS`` (the rest is counted under ``(other)``), each service port remembers its last ``RECENT`` choices.
- The counts are kept from the moment the first client attached (``since``); top takes rates from the differences
  between its snapshots, so it needs two of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("kubesvc.observe")

MAX_BUFFERED = 1 << 20  # bytes a subscriber may leave unread before it is dropped
MAX_REQUEST = 64 * 1024
MAX_KEYS = 4096
RECENT = 100  # choices remembered per service port ("share of the last N connections")
OTHER = "(other)"
SOCKET_PATH_MAX = 107


def run_dir(store_path: str) -> str:
    return os.path.abspath(store_path) + ".d/run"


def peer_uid(sock: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def trusted_uid(uid: int) -> bool:
    return uid == os.geteuid() or uid == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------- counters


class EndpointStats:
    __slots__ = ("opened", "closed", "bytes_in", "bytes_out", "refused", "timed_out", "last_failure")

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.refused = 0
        self.timed_out = 0
        self.last_failure: dict[str, Any] | None = None


class PortStats:
    __slots__ = ("endpoints", "recent", "last_failover")

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointStats] = {}
        self.recent: deque[str] = deque(maxlen=RECENT)
        self.last_failover: dict[str, Any] | None = None

    def endpoint(self, ep: str) -> EndpointStats:
        st = self.endpoints.get(ep)
        if st is None:
            st = self.endpoints[ep] = EndpointStats()
        return st


def failure_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    return str(exc) or type(exc).__name__


class Trace:
    """What a traced connection remembers until it closes (set on the proxy's Pair only while someone watches)."""

    __slots__ = ("id", "spn", "port", "service", "client", "frontend", "endpoint", "t0")

    def __init__(self, spn: tuple[str, str, str], client: str, frontend: dict[str, str], endpoint: str) -> None:
        self.id = ""
        self.spn = spn
        self.service = f"{spn[0]}/{spn[1]}"
        self.port = spn[2]
        self.client = client
        self.frontend = frontend
        self.endpoint = endpoint
        self.t0 = time.monotonic()


FRONTEND_KINDS = {"cluster": "clusterIP", "nodePort": "nodePort", "loadBalancer": "loadBalancer", "externalIP": "externalIP"}


def _addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# ------------------------------------------------------------------------------------------- the hub


class Hub:
    """This process's observation point (one per process: ``HUB``)."""

    def __init__(self) -> None:
        self.on = False  # the hot paths' one check: a client is attached
        self.component = ""
        self.snapshot_fn: Callable[[], dict[str, Any]] | None = None
        self.clients: set[_Conn] = set()
        self.tracers: set[_Conn] = set()
        self.server: asyncio.AbstractServer | None = None
        self.path: str | None = None
        self.since = 0.0
        self.ids = 0
        self.ports: dict[tuple[str, str, str], PortStats] = {}  # proxy: (namespace, name, port) -> stats
        self.dns_names: dict[str, list[int]] = {}  # name -> [queries, nxdomain]
        self.rules: dict[str, dict[str, int]] = {}  # ingress rule -> {"requests": n, "2xx": n, ...}

    # -- lifecycle

    async def start(self, store_path: str, component: str, snapshot_fn: Callable[[], dict[str, Any]]) -> str | None:
        """Serve ``<store>.d/run/<component>-<pid>.sock``; a failure is logged (the component serves on without it)."""
        self.component = component
        self.snapshot_fn = snapshot_fn
        directory = run_dir(store_path)
        path = os.path.join(directory, f"{component}-{os.getpid()}.sock")
        if len(path.encode()) > SOCKET_PATH_MAX:
            log.warning("no top/trace socket: path too long", extra={"kv": {"path": path}})
            return None
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._sweep(directory)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                old = os.umask(0o177)
                try:
                    sock.bind(path)
                finally:
                    os.umask(old)
                os.chmod(path, 0o600)
                sock.listen(64)
                sock.setblocking(False)
                self.server = await asyncio.get_running_loop().create_unix_server(lambda: _Conn(self), sock=sock)
            except BaseException:
                sock.close()
                raise
        except OSError as e:
            log.warning("no top/trace socket", extra={"kv": {"path": path, "error": e.strerror or str(e)}})
            return None
        self.path = path
        return path

    @staticmethod
    def _sweep(directory: str) -> None:
        for name in os.listdir(directory):
            stem, _, ext = name.rpartition(".")
            pid = stem.rpartition("-")[2]
            if ext == "sock" and pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for c in list(self.clients):
            c.drop()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None

    def _attached(self, conn: _Conn) -> None:
        if not self.clients:
            self.reset()
        self.clients.add(conn)
        self.on = True

    def _detached(self, conn: _Conn) -> None:
        self.clients.discard(conn)
        self.tracers.discard(conn)
        self.on = bool(self.clients)

    def reset(self) -> None:
        self.since = time.time()
        self.ports.clear()
        self.dns_names.clear()
        self.rules.clear()

    def snapshot(self) -> dict[str, Any]:
        body = self.snapshot_fn() if self.snapshot_fn is not None else {}
        return {"component": self.component, "pid": os.getpid(), "time": time.time(), "since": self.since, **body}

    def emit(self, event: dict[str, Any]) -> None:
        if not self.tracers:
            return
        event["time"] = time.time()
        event["component"] = self.component
        line: bytes | None = None
        for c in list(self.tracers):
            if c.wants(event):
                if line is None:
                    line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                c.send(line)

    def next_id(self) -> str:
        self.ids += 1
        return f"{os.getpid()}-{self.ids}"

    # -- proxy hooks (called only while ``on``)

    def port_stats(self, spn: tuple[str, str, str]) -> PortStats:
        st = self.ports.get(spn)
        if st is None:
            st = self.ports[spn] = PortStats()
        return st

    def proxy_open(self, spn: tuple[str, str, str], client: str, frontend: dict[str, str], endpoint: str, reason: str,
                   failed: list[dict[str, Any]] | None) -> Trace:
        ps = self.port_stats(spn)
        ps.endpoint(endpoint).opened += 1
        ps.recent.append(endpoint)
        if failed:
            ps.last_failover = {"time": time.time(), "client": client, "from": failed[-1]["endpoint"], "to": endpoint,
                                "error": failed[-1]["error"]}
        tr = Trace(spn, client, frontend, endpoint)
        if self.tracers:
            tr.id = self.next_id()
            ev: dict[str, Any] = {"event": "open", "id": tr.id, "service": tr.service, "port": tr.port,
                                  "client": client, "frontend": frontend, "endpoint": endpoint, "reason": reason}
            if failed:
                ev["failed"] = failed
            self.emit(ev)
        return tr

    def proxy_dial_failed(self, spn: tuple[str, str, str], endpoint: str, exc: BaseException) -> dict[str, Any]:
        kind = failure_kind(exc)
        st = self.port_stats(spn).endpoint(endpoint)
        if kind == "refused":
            st.refused += 1
        else:
            st.timed_out += 1
        st.last_failure = {"time": time.time(), "error": kind}
        return {"endpoint": endpoint, "error": kind}

    def proxy_close(self, tr: Trace, bytes_in: int, bytes_out: int) -> None:
        st = self.port_stats(tr.spn).endpoint(tr.endpoint)
        st.closed += 1
        st.bytes_in += bytes_in
        st.bytes_out += bytes_out
        if self.tracers:
            self.emit({"event": "close", "id": tr.id, "service": tr.service,
                       "port": tr.port, "client": tr.client, "frontend": tr.frontend, "endpoint": tr.endpoint,
                       "bytesIn": bytes_in, "bytesOut": bytes_out, "duration": round(time.monotonic() - tr.t0, 6)})

    # -- DNS and ingress hooks (called only while ``on``)

    def dns_reply(self, reply: bytes) -> None:
        name = question_name(reply)
        if name is None:
            return
        row = self.dns_names.get(name)
        if row is None:
            if len(self.dns_names) >= MAX_KEYS:
                name = OTHER
            row = self.dns_names.setdefault(name, [0, 0])
        row[0] += 1
        if reply[3] & 0x0F == 3:
            row[1] += 1

    def counting(self, send: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def counted(reply: bytes) -> None:
            send(reply)
            self.dns_reply(reply)
        return counted

    def ingress_exchange(self, peer: str, ex: Any) -> None:
        r = ex.route
        if r is None:
            rule, service = "(no rule)", ""
        else:
            b = r.backend
            rule = f"{r.ingress} {r.host}{r.path or '(default backend)'} -> {b.service}:{b.port}"
            service = f"{b.namespace}/{b.service}:{b.port}"
        ep = ex.endpoint
        self.ingress_request(rule, ex.status, peer, _addr(*ep) if ep else "", service)

    def ingress_request(self, rule: str, status: int, peer: str, endpoint: str, service: str) -> None:
        row = self.rules.get(rule)
        if row is None:
            if len(self.rules) >= MAX_KEYS:
                rule = OTHER
            row = self.rules.setdefault(rule, {"requests": 0})
        row["requests"] += 1
        cls = f"{status // 100}xx" if 100 <= status < 600 else "other"
        row[cls] = row.get(cls, 0) + 1
        if self.tracers:
            ns_name, _, port = service.rpartition(":")
            self.emit({"event": "request", "service": ns_name, "port": port, "client": peer,
                       "frontend": {"kind": "ingress", "rule": rule}, "endpoint": endpoint, "status": status})


def question_name(msg: bytes) -> str | None:
    """The question name of a DNS message, lower-cased, with its final dot; None when it has none or is odd."""
    if len(msg) < 17 or msg[4:6] == b"\0\0":
        return None
    labels: list[str] = []
    i = 12
    while i < len(msg) and i < 12 + 256:
        n = msg[i]
        if n == 0:
            return (".".join(labels) + ".").lower() if labels else "."
        if n & 0xC0:
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return None


HUB = Hub()


# ------------------------------------------------------------------------------------------- server side


class _Conn(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.filter: dict[str, str] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        try:
            ok = sock is not None and trusted_uid(peer_uid(sock))
        except OSError:
            ok = False
        if not ok:
            transport.abort()  # type: ignore[attr-defined]
            self.transport = None
            return
        self.hub._attached(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_REQUEST:
            self.drop()
            return
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                req = json.loads(line)
                op = req.get("op")
            except (ValueError, AttributeError):
                self.send(b'{"error":"bad request"}\n')
                continue
            if op == "snapshot":
                try:
                    body = self.hub.snapshot()
                except Exception as e:  # a bug must not stop the component
                    log.exception("snapshot failed")
                    body = {"error": str(e)}
                self.send(json.dumps(body, separators=(",", ":")).encode() + b"\n")
            elif op == "trace":
                self.filter = {k: str(v) for k, v in req.items() if k in ("service", "to") and v}
                self.hub.tracers.add(self)
                self.send(json.dumps({"event": "attached", "component": self.hub.component, "pid": os.getpid()}).encode() + b"\n")
            else:
                self.send(b'{"error":"unknown op"}\n')

    def wants(self, event: dict[str, Any]) -> bool:
        f = self.filter
        if not f:
            return True
        svc = f.get("service")
        if svc is not None and event.get("service") != svc:
            return False
        to = f.get("to")
        if to is not None:
            fe = event.get("frontend") or {}
            if fe.get("address") != to and event.get("endpoint") != to:
                return False
        return True

    def send(self, line: bytes) -> None:
        t = self.transport
        if t is None:
            return
        if t.get_write_buffer_size() > MAX_BUFFERED:
            log.info("dropped a slow top/trace client", extra={"kv": {"component": self.hub.component}})
            self.drop()
            return
        t.write(line)

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.hub._detached(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.hub._detached(self)


# ------------------------------------------------------------------------------------------- client side


def sockets(store_path: str) -> list[tuple[str, int, str]]:
    """(component, pid, path) of every live component socket of this store."""
    directory = run_dir(store_path)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for name in names:
        stem, _, ext = name.rpartition(".")
        comp, _, pid = stem.rpartition("-")
        if ext == "sock" and pid.isdigit() and _alive(int(pid)):
            out.append((comp, int(pid), os.path.join(directory, name)))
    return out


class ObserveError(Exception):
    pass


class Client:
    """A blocking connection to one component's socket."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
            if not trusted_uid(peer_uid(self.sock)):
                raise ObserveError(f"{path}: served by another user")
        except OSError as e:
            self.sock.close()
            raise ObserveError(f"{path}: {e.strerror or e}") from None
        except ObserveError:
            self.sock.close()
            raise
        self.buf = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def request(self, req: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(req).encode() + b"\n")

    def snapshot(self) -> dict[str, Any]:
        self.request({"op": "snapshot"})
        line = self.readline()
        if line is None:
            raise ObserveError(f"{self.path}: closed")
        return json.loads(line)

    def readline(self) -> bytes | None:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def lines(self) -> Iterator[dict[str, Any]]:
        """What has arrived (non-blocking once; for select loops): whole lines only."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except BlockingIOError:
                    break
                if not chunk:
                    raise ObserveError(f"{self.path}: closed")
                self.buf += chunk
        finally:
            self.sock.setblocking(True)
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            yield json.loads(line)

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------------------------------- proxy snapshot


def proxy_snapshot(server: Any) -> dict[str, Any]:
    """The proxy's state for top: per service port its listened addresses, counters, endpoints (active connections
    now; what ``ProxyStats`` counted since someone attached), affinity entries and the last failover."""
    now_mono = time.monotonic()
    ports = []
    listened: dict[Any, list[dict[str, str]]] = {}
    for key, listener in server.listeners.items():
        proto, ip, port = key
        listened.setdefault(server.plan.listeners.get(key), []).append(
            {"address": _addr(ip, port), "kind": FRONTEND_KINDS.get(listener.kind, listener.kind), "protocol": proto})
    for spn, st in server.states.items():
        ns, name, port = spn
        m = st.metrics
        counters = {a: getattr(m, a) for a in m.__slots__}
        active: dict[str, int] = {}
        live: dict[str, list[int]] = {}
        for pair in list(st.conns):
            ep = pair.endpoint
            if ep is None:
                continue
            key = _addr(*ep)
            active[key] = active.get(key, 0) + 1
            i, o = pair.live_bytes()
            row = live.setdefault(key, [0, 0])
            row[0] += i
            row[1] += o
            counters["bytes_in"] += i
            counters["bytes_out"] += o
        ps = HUB.ports.get(spn)
        ready = {_addr(*ep) for b in (st.balancer, st.ext_balancer) for ep in b.endpoints}
        names = ready | set(active) | set(ps.endpoints if ps else ())
        eps = []
        for ep in sorted(names):
            es = ps.endpoints.get(ep) if ps else None
            lb = live.get(ep, [0, 0])
            eps.append({"address": ep, "serving": ep in ready, "active": active.get(ep, 0),
                        "opened": es.opened if es else 0,
                        "bytesIn": (es.bytes_in if es else 0) + lb[0], "bytesOut": (es.bytes_out if es else 0) + lb[1],
                        "refused": es.refused if es else 0, "timedOut": es.timed_out if es else 0,
                        "lastFailure": es.last_failure if es else None})
        affinity = []
        for b in (st.balancer, st.ext_balancer):
            if b.affinity:
                for client, (ep, used) in list(b.sticky.items())[:MAX_KEYS]:
                    affinity.append({"client": client, "endpoint": _addr(*ep), "remaining": max(0, int(b.ttl - (now_mono - used)))})
        recent: dict[str, int] = {}
        for ep in ps.recent if ps else ():
            recent[ep] = recent.get(ep, 0) + 1
        config = st.config
        ports.append({"service": f"{ns}/{name}", "port": port, "protocol": st.protocol,
                      "affinity": bool(config and config.affinity), "addresses": listened.get(spn, []),
                      "counters": counters, "endpoints": eps, "affinityEntries": affinity,
                      "recent": recent, "recentTotal": len(ps.recent) if ps else 0,
                      "lastFailover": ps.last_failover if ps else None})
    return {"servicePorts": ports, "node": getattr(server.options, "node_name", "")}


def dns_snapshot() -> dict[str, Any]:
    return {"names": {k: {"queries": v[0], "nxdomain": v[1]} for k, v in HUB.dns_names.items()}}


def ingress_snapshot() -> dict[str, Any]:
    return {"rules": {k: dict(v) for k, v in HUB.rules.items()}}
