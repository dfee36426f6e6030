"""`kubesvc dns`: UDP and TCP listeners around the sans-IO handler, upstream forwarding, store following.

Rules kept here:
- The kube-dns Service (kube-system, ports dns 53/UDP and dns-tcp 53/TCP, cluster IP = 10th address of the
  service range, label service.kubernetes.io/service-proxy-name=kubesvc-dns so the proxy leaves it alone) is
  created through the registry when absent; by default the server binds its cluster IP, port 53.
- UDP and TCP listen on the same address and port (port 0: the UDP port picked by the kernel is reused for
  TCP). Binding failures are one clear line (``ListenError``).
- Only loopback clients (and ``--allow-from`` networks) get answers; others get REFUSED, header only.
- ``runtime.StoreFollower`` probes the store (``data_version``) every ``poll_interval`` seconds on the loop and, on
  a change, has the follower (its own thread) compare revisions, builds the record table and the prepared replies from one
  snapshot, and swaps them in on the loop.
- UDP queries of the common shape from an allowed client are answered inline in ``datagram_received`` from a
  prepared reply (the client check is remembered per address); everything else goes through ``Server.answer``.
- Forwarding: UDP first, TCP when the reply is truncated, ``upstream_timeout`` per server, servers in order,
  SERVFAIL when none answers; at most ``MAX_FORWARDS`` in flight (beyond: SERVFAIL at once).
- TCP: length-prefixed messages. A connection with no query for ``tcp_idle_timeout`` seconds (and no forwarded
  query still pending) is closed (RFC 7766 §6.2.3: of the order of seconds). At most ``max_tcp_connections`` are
  open: a new one past the limit closes the least recently active idle one (the least recently active one if
  none is idle), so clients holding idle connections cannot lock others out (RFC 7766 §6.2.2 lets a server
  close idle connections under pressure).
- UDP: the socket's receive buffer is asked for ``udp_receive_buffer`` bytes (the kernel caps it at
  ``net.core.rmem_max`` and reports twice the size, which the ready line shows as ``udp_rcvbuf``), so a burst of
  large datagrams does not crowd out the queries behind it; a cap below the request is logged once.
- A bug while handling one packet is logged and answered SERVFAIL; it never stops the server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode

from kubesvc.controllers import endpointslices
from kubesvc.dataplane import runtime
from kubesvc.dataplane.dns import config, records
from kubesvc.dataplane.dns.handler import Forward, Handler, client_allowed, header_reply, prepare_all
from kubesvc.dataplane.dns.wire import Prepared
from kubesvc.dataplane.observe import HUB, dns_snapshot
from kubesvc.errors import AlreadyExists, ClientError, Invalid
from kubesvc.registry.allocators import IPRange
from kubesvc.store.db import Store

log = logging.getLogger("kubesvc.dns")

KUBE_DNS_NS, KUBE_DNS_NAME = "kube-system", "kube-dns"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
PROXY_NAME = "kubesvc-dns"
SNAPSHOT_KINDS = ("Service", "Endpoints", "Pod", "ConfigMap", "Namespace")
MAX_FORWARDS = 1000
ALLOWED_CACHE = 4096  # client addresses whose verdict is remembered (emptied when full)
MAX_TCP_CONNECTIONS = 512
TCP_IDLE_TIMEOUT = 5.0
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


class ListenError(ClientError):
    pass


@dataclass(frozen=True)
class DNSOptions:
    store_path: str
    listen: str | None = None  # ADDR:PORT; default <kube-dns cluster IP>:53
    ttl: int = 5
    pods: str = "insecure"
    allow_from: tuple[str, ...] = ()
    resolv_conf: str = "/etc/resolv.conf"
    upstream_timeout: float = 2.0
    poll_interval: float = 0.015
    verbosity: int = 0
    max_tcp_connections: int = MAX_TCP_CONNECTIONS
    tcp_idle_timeout: float = TCP_IDLE_TIMEOUT
    udp_receive_buffer: int = UDP_RECEIVE_BUFFER  # bytes; 0 leaves the system's default
    healthz_bind_address: str | None = None  # /health, /ready, /healthz; None: HEALTHZ_DEFAULT (best effort), "": off


HEALTHZ_DEFAULT = "127.0.0.1:8181"  # CoreDNS's ready plugin port (its health plugin's 8080 is ingress's fallback)
HEALTH_PATHS = ("/health", "/ready", "/healthz", "/livez", "/readyz")  # CoreDNS's health and ready, and k8s's


def parse_listen(text: str) -> tuple[str, int]:
    from kubesvc.dataplane.runtime import parse_address

    addr = parse_address(text, "--listen", "127.0.0.1:5353")
    assert addr is not None
    return addr


def kube_dns_ip(store: Store) -> str:
    """The kube-dns Service's cluster IP, or the address it gets (10th of the service range)."""
    svc = store.get("Service", KUBE_DNS_NS, KUBE_DNS_NAME)
    ip = (svc or {}).get("spec", {}).get("clusterIP")
    if ip and ip != "None":
        return str(ip)
    return IPRange(store.settings().service_cluster_ip_range).nth(10)


def ensure_kube_dns_service(store: Store) -> str:
    """Create (or label) kube-system/kube-dns; return its cluster IP."""
    from kubesvc.registry.generic import Registry

    reg = Registry(store)
    svc = store.get("Service", KUBE_DNS_NS, KUBE_DNS_NAME)
    if svc is None:
        obj = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": KUBE_DNS_NAME,
                "namespace": KUBE_DNS_NS,
                "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", PROXY_NAME_LABEL: PROXY_NAME},
            },
            "spec": {
                "clusterIP": kube_dns_ip(store),
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        }
        try:
            svc = reg.create(obj).object
        except AlreadyExists:
            svc = store.get("Service", KUBE_DNS_NS, KUBE_DNS_NAME)
        except Invalid as e:
            raise ClientError(f"cannot create the kube-dns Service: {e.message}") from None
    elif (svc["metadata"].get("labels") or {}).get(PROXY_NAME_LABEL) is None:
        svc = reg.mutate("Service", KUBE_DNS_NS, KUBE_DNS_NAME,
                         lambda o: o["metadata"].setdefault("labels", {}).__setitem__(PROXY_NAME_LABEL, PROXY_NAME))
    assert svc is not None
    ip = svc.get("spec", {}).get("clusterIP")
    if not ip or ip == "None":
        raise ClientError("the kube-dns Service in kube-system has no cluster IP; delete it and run `kubesvc dns` again")
    return str(ip)


def print_resolv_conf(store_path: str, namespace: str) -> str:
    with Store(store_path) as store:
        return config.pod_resolv_conf(kube_dns_ip(store), namespace, store.settings().cluster_domain)


# ------------------------------------------------------------------------------------------ the model


@dataclass
class Snapshot:
    revision: int
    table: records.Table
    forward: config.ForwardConfig
    fallback: tuple[config.Server, ...]


def take_snapshot(store: Store, opts: DNSOptions) -> Snapshot:
    settings = store.settings()
    rev, objs = endpointslices.list_with_revision(store, SNAPSHOT_KINDS)  # Endpoints: merged EndpointSlices
    ropts = records.Options(zone=settings.cluster_domain, ttl=opts.ttl, pods=opts.pods,
                            reverse_cidrs=(settings.service_cluster_ip_range, settings.pod_ip_range))
    table = records.build(objs, ropts, rev)
    cm = next((c for c in objs.get("ConfigMap", [])
               if c["metadata"].get("namespace") == KUBE_DNS_NS and c["metadata"]["name"] == KUBE_DNS_NAME), None)
    fwd = config.from_configmap(cm, settings.cluster_domain)
    return Snapshot(rev, table, fwd, config.resolv_conf_servers(opts.resolv_conf))


class Follower:
    """Rebuilds the records and their prepared replies on its own thread when ``runtime.StoreFollower`` (on the loop)
    saw a commit, and hands them to the loop: waking a thread every poll interval would take the GIL from the loop.
    A failure propagates to the supervisor (logged with its cause, retried with back-off)."""

    def __init__(self, opts: DNSOptions, handler: Handler, loop: asyncio.AbstractEventLoop, revision: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.opts, self.handler, self.loop, self.revision = opts, handler, loop, revision
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="kubesvc-dns-follow")
        self.store: Store | None = None
        self.warnings: tuple[str, ...] = ()

    async def sync(self, _probe: Any) -> None:
        await self.loop.run_in_executor(self.executor, self.sync_now)

    def sync_now(self) -> None:
        if self.store is None:
            self.store = Store(self.opts.store_path)
        if self.store.revision() == self.revision:
            return
        snap = take_snapshot(self.store, self.opts)
        prepared = prepare_all(snap.table, self.handler.prepared.copy())
        self.revision = snap.revision
        self._report(snap.forward.warnings)
        self.loop.call_soon_threadsafe(self._swap, prepared, snap)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self.store is not None:
            self.store.close()

    def _swap(self, prepared: dict[bytes, Prepared], snap: Snapshot) -> None:
        h = self.handler
        h.install(snap.table, snap.forward, prepared, snap.fallback)
        log.debug("records synced", extra={"kv": {"revision": snap.revision, "names": len(snap.table.names)}})

    def _report(self, warnings: tuple[str, ...]) -> None:
        if warnings != self.warnings:
            for w in warnings:
                log.warning(w)
            self.warnings = warnings


# ------------------------------------------------------------------------------------------ I/O


@dataclass
class Server:
    handler: Handler
    opts: DNSOptions
    nets: tuple[Any, ...]
    own: set[tuple[str, int]] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    tcp_conns: dict[TCPProtocol, None] = field(default_factory=dict)  # open, least recently active first
    allowed: dict[str, bool] = field(default_factory=dict)  # client address -> may ask (client_allowed, remembered)

    def allows(self, peer: str) -> bool:
        ok = self.allowed.get(peer)
        if ok is None:
            if len(self.allowed) >= ALLOWED_CACHE:
                self.allowed.clear()
            ok = self.allowed[peer] = client_allowed(peer, self.nets)
        return ok

    def answer(self, data: bytes, peer: str, tcp: bool, send: Callable[[bytes], None]) -> asyncio.Task[None] | None:
        """Answer ``data`` through ``send``, now or (forwarded) from the task returned."""
        if HUB.on:
            send = HUB.counting(send)
        if not self.allows(peer):
            if len(data) >= 12 and not data[2] & 0x80:
                send(header_reply(data, dns.rcode.REFUSED))
            return None
        try:
            result = self.handler.handle(data, tcp)
        except Exception:  # a bug must not stop the server: log it, answer SERVFAIL
            log.exception("error while answering a query")
            if len(data) >= 12 and not data[2] & 0x80:
                send(header_reply(data, dns.rcode.SERVFAIL))
            return None
        if result is None:
            return None
        if isinstance(result, bytes):
            send(result)
            return None
        if len(self.tasks) >= MAX_FORWARDS:
            send(self.handler.relay(result, None))
            return None
        task = asyncio.get_running_loop().create_task(self.forward(result, send))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def forward(self, job: Forward, send: Callable[[bytes], None]) -> None:
        query = dns.message.make_query(job.qname, job.qtype, use_edns=0, payload=1232,  # type: ignore[arg-type]
                                       want_dnssec=bool(job.query.ednsflags & dns.flags.DO))
        query.flags = dns.flags.RD | (job.query.flags & dns.flags.CD)
        reply = None
        for host, port in job.servers:
            if (host, port) in self.own:
                continue  # never forward to ourselves
            try:
                async with asyncio.timeout(self.opts.upstream_timeout):
                    reply, _ = await dns.asyncquery.udp_with_fallback(query, host, timeout=self.opts.upstream_timeout, port=port)
                break
            except (dns.exception.DNSException, OSError, EOFError, TimeoutError, ValueError) as e:
                log.debug("upstream failed", extra={"kv": {"server": f"{host}:{port}", "error": type(e).__name__}})
        try:
            send(self.handler.relay(job, reply))
        except Exception:
            log.exception("error while relaying an upstream answer")


class UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        t = self.transport
        if t is None:
            return
        server = self.server
        host = addr[0]
        allowed = server.allowed.get(host)
        if allowed or (allowed is None and server.allows(host)):
            # the common question answered from a prepared reply, inline (see Handler.udp_fast)
            try:
                reply = server.handler.udp_fast(data)
            except Exception:
                reply = None  # the general path below answers (and logs what went wrong)
            if reply is not None:
                t.sendto(reply, addr)
                if HUB.on:
                    HUB.dns_reply(reply)
                return
        server.answer(data, host, False, lambda reply: t.sendto(reply, addr))

    def error_received(self, exc: Exception) -> None:  # ICMP errors from clients that went away
        pass


class TCPProtocol(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.idle: asyncio.TimerHandle | None = None
        self.last = 0.0  # loop time of the last query (or of the connection, before any)
        self.pending = 0  # forwarded queries not answered yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        conns = self.server.tcp_conns
        while conns and len(conns) >= self.server.opts.max_tcp_connections:
            victim = next((c for c in conns if not c.pending), None) or next(iter(conns))
            del conns[victim]
            log.debug("closed the least recently active TCP connection for a new one", extra={"kv": {"peer": victim.peer}})
            victim.close()
        conns[self] = None
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        loop = asyncio.get_running_loop()
        self.last = loop.time()
        self.idle = loop.call_later(self.server.opts.tcp_idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        """Close the connection once it had no query for the idle timeout and owes no forwarded answer; else
        look again when it would (one timer per connection, not one per query)."""
        if self.transport is None:
            return
        timeout = self.server.opts.tcp_idle_timeout
        loop = asyncio.get_running_loop()
        left = self.last + timeout - loop.time()
        if left > 0 or self.pending:
            self.idle = loop.call_later(left if left > 0 else timeout, self._check_idle)
        else:
            self.close()

    def close(self) -> None:
        t = self.transport
        if t is not None:
            if t.get_write_buffer_size():
                t.abort()  # a client that does not read would keep the socket open past close()
            else:
                t.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 2:
            n = self.buf[0] << 8 | self.buf[1]
            if len(self.buf) < 2 + n:
                break
            msg = bytes(self.buf[2 : 2 + n])
            del self.buf[: 2 + n]
            conns = self.server.tcp_conns
            if self in conns:  # now the most recently active
                del conns[self]
                conns[self] = None
            self.last = asyncio.get_running_loop().time()
            task = self.server.answer(msg, self.peer, True, self._send)
            if task is not None:
                self.pending += 1
                task.add_done_callback(self._forwarded)

    def _forwarded(self, _task: asyncio.Task[None]) -> None:
        self.pending -= 1
        self.last = asyncio.get_running_loop().time()

    def _send(self, reply: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(struct.pack("!H", len(reply)) + reply)

    def pause_writing(self) -> None:  # a client that does not read: stop reading its queries
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.server.tcp_conns.pop(self, None)
        self.transport = None


def set_receive_buffer(sock: Any, size: int) -> int:
    """Ask for a ``size``-byte receive buffer (0: leave it); return what the kernel reports (Linux: twice the size
    granted, which is capped at ``net.core.rmem_max``)."""
    if size > 0:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError as e:
            log.warning(f"cannot set the UDP receive buffer to {size} bytes: {e.strerror or e}")
    got = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    granted = got // 2 if sys.platform == "linux" else got
    if 0 < granted < size:
        log.warning(f"the UDP receive buffer got {granted} bytes, not {size}: net.core.rmem_max caps it, and bursts "
                    f"of large datagrams may drop queries (raise it: sysctl -w net.core.rmem_max={size})")
    return got


async def _bind(server: Server, host: str, port: int) -> tuple[asyncio.DatagramTransport, asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    for attempt in range(20):
        try:
            udp, _ = await loop.create_datagram_endpoint(lambda: UDPProtocol(server), local_addr=(host, port))
        except OSError as e:
            raise ListenError(_bind_message(host, port, "udp", e)) from None
        bound = udp.get_extra_info("sockname")[1]
        try:
            tcp = await loop.create_server(lambda: TCPProtocol(server), host, bound, reuse_address=True)
        except OSError as e:
            udp.close()
            if port == 0 and attempt < 19:
                continue  # the kernel's UDP pick is taken on TCP: pick again
            raise ListenError(_bind_message(host, bound, "tcp", e)) from None
        return udp, tcp, bound
    raise ListenError(f"cannot listen on {host}:{port}: no port free on both UDP and TCP")


def _bind_message(host: str, port: int, proto: str, e: OSError) -> str:
    hint = ""
    if runtime.needs_root(port, runtime.bind_errno(e)):
        hint = f"; try --listen {host}:1053"
    return f"cannot listen on {host}:{port}/{proto}: {runtime.bind_reason(e, port)}{hint}"


async def serve(opts: DNSOptions, stop: asyncio.Event) -> int:
    nets = []
    for cidr in opts.allow_from:
        nets.append(ipaddress.ip_network(cidr, strict=False))
    with Store(opts.store_path) as store:
        cluster_ip = ensure_kube_dns_service(store)
        snap = take_snapshot(store, opts)
    host, port = parse_listen(opts.listen) if opts.listen else (cluster_ip, 53)
    handler = Handler(snap.table, snap.forward, snap.fallback)
    server = Server(handler, opts, tuple(nets))
    udp, tcp, bound = await _bind(server, host, port)
    rcvbuf = set_receive_buffer(udp.get_extra_info("socket"), opts.udp_receive_buffer)
    server.own = {(str(ipaddress.ip_address(host)), bound)}
    if port == 53 or host == cluster_ip:
        server.own.add((cluster_ip, 53))
    loop = asyncio.get_running_loop()
    follower = Follower(opts, handler, loop, snap.revision)
    follower._report(snap.forward.warnings)
    health = runtime.Health()
    try:
        health_srv, health_addr = await runtime.serve_health(opts.healthz_bind_address, HEALTHZ_DEFAULT, "--healthz-bind-address",
                                                             "dns", health, HEALTH_PATHS, log)
    except BaseException:
        tcp.close()
        udp.close()
        follower.close()
        raise
    following = loop.create_task(runtime.StoreFollower(opts.store_path, opts.poll_interval, follower.sync, health, logger=log).run())
    addr = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    await HUB.start(opts.store_path, "dns", dns_snapshot)  # `kubesvc top`
    runtime.announce_ready("dns", {"udp": addr, "tcp": addr, "zone": snap.table.zone.to_text(omit_final_dot=True),
                                   "nameserver": cluster_ip, "udp_rcvbuf": rcvbuf, **({"healthz": health_addr} if health_addr else {})})
    log.info("serving", extra={"kv": {"addr": addr, "revision": snap.revision}})
    try:
        await stop.wait()
    finally:
        HUB.stop()
        if health_srv is not None:
            health_srv.close()
        tcp.close()
        udp.close()
        for conn in list(server.tcp_conns):
            conn.close()
        for task in list(server.tasks):
            task.cancel()
        if server.tasks:
            await asyncio.wait(server.tasks, timeout=1.0)
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        follower.close()
        await tcp.wait_closed()
    return 0


def run(opts: DNSOptions) -> int:
    """Serve until SIGTERM/SIGINT. Raises ListenError/ClientError for clear one-line failures."""
    runtime.setup_logging(opts.verbosity)
    for cidr in opts.allow_from:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ClientError(f'invalid --allow-from "{cidr}": want a CIDR such as 10.0.0.0/8') from None
    if opts.listen:
        parse_listen(opts.listen)
    if opts.healthz_bind_address:
        runtime.parse_address(opts.healthz_bind_address, "--healthz-bind-address", HEALTHZ_DEFAULT, allow_empty=True)
    return runtime.run(lambda stop: serve(opts, stop))
