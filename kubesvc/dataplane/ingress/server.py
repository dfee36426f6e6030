"""`kubesvc ingress`: the HTTP and HTTPS listeners, the store follower and the Ingress status writer.

Rules kept here:
- Start-up: the IngressClass ``--ingress-class`` (default ``kubesvc``, controller ``kubesvc.io/ingress``) is
  created through the Registry when absent; the default certificate Secret is made once (tls.py); then both
  listeners bind (``HOST:PORT``, port 0 picks a free one, empty disables one) and the ready line names the
  addresses actually bound. A port that cannot be bound is one clear line (``ListenError``).
- ``runtime.StoreFollower`` probes the store (``data_version``) every ``poll_interval`` seconds on the loop and has
  the follower (on its own thread) compare the revision and rebuild the route table, the backend endpoint lists
  and the certificates from one snapshot, then swap them in on the loop: requests in flight keep the backend they chose; new ones see the new table.
- Status: each owned Ingress gets ``status.loadBalancer.ingress = [{ip: <listen address>}]`` (``127.0.0.1`` for
  a wildcard bind); Ingresses that stop being ours lose that entry; on a clean stop the entries are removed
  (ingress-nginx's ``update-status-on-shutdown``). Writes go through ``Registry.update_status`` (status only; spec and metadata stay).
- Stop (SIGTERM/SIGINT): close the listeners, let requests in flight finish for up to ``drain_seconds``, then
  close everything and return 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from kubesvc.controllers import endpointslices
from kubesvc.dataplane import observe, runtime
from kubesvc.dataplane.ingress import routes, tls
from kubesvc.dataplane.ingress.http import ClientConn, HTTPConfig, Shared
from kubesvc.dataplane.ingress.upstream import Clock
from kubesvc.dataplane.ingress.workers import Workers
from kubesvc.errors import AlreadyExists, ClientError, KubesvcError
from kubesvc.store.db import Store

log = logging.getLogger("kubesvc.ingress")

SNAPSHOT_KINDS = ("Ingress", "IngressClass", "Service", "Endpoints", "Secret")


class ListenError(ClientError):
    pass


@dataclass(frozen=True)
class IngressOptions:
    store_path: str
    http_address: str = "127.0.0.1:80"
    https_address: str = "127.0.0.1:443"
    ingress_class: str = routes.CLASS_NAME
    default_ssl_certificate: str | None = None  # NS/NAME
    access_log: str = "-"  # "-": stderr; "off": none; else a file path (appended)
    http: HTTPConfig = field(default_factory=HTTPConfig)
    poll_interval: float = 0.015
    drain_seconds: float = 5.0
    update_status: bool = True
    verbosity: int = 0
    workers: int = 1  # processes sharing the listening sockets (SO_REUSEPORT) when > 1; see workers.py
    worker_of: int = 0  # set in a worker process: the primary's pid
    healthz_bind_address: str | None = None  # /healthz of the primary; None: HEALTHZ_DEFAULT (best effort), "": off


HEALTHZ_DEFAULT = "127.0.0.1:10254"  # ingress-nginx's /healthz port


def parse_address(text: str, flag: str) -> tuple[str, int] | None:
    from kubesvc.dataplane import runtime

    return runtime.parse_address(text, flag, "127.0.0.1:8080", allow_empty=True)


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def status_ip(host: str) -> str:
    ip = ipaddress.ip_address(host)
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "::1"
    return host


# ------------------------------------------------------------------------------------------ store side


def ensure_ingress_class(store: Store, name: str) -> None:
    from kubesvc.registry.generic import Registry

    ic = store.get("IngressClass", "", name)
    if ic is None:
        obj = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubesvc-ingress"}},
               "spec": {"controller": routes.CONTROLLER}}
        try:
            Registry(store).create(obj)
        except AlreadyExists:
            pass
        except KubesvcError as e:
            raise ClientError(f'cannot create the IngressClass "{name}": {e}') from None
    elif (ic.get("spec") or {}).get("controller") != routes.CONTROLLER:
        log.warning(f'IngressClass "{name}" has controller {(ic.get("spec") or {}).get("controller")!r}, not {routes.CONTROLLER}: '
                    "its Ingresses are not served")


@dataclass
class Snapshot:
    revision: int
    table: routes.RouteTable
    backends: dict[str, list[tuple[str, int]] | None]
    secrets: dict[tuple[str, str], dict[str, Any]]


def take_snapshot(store: Store) -> Snapshot:
    rev, objs = endpointslices.list_with_revision(store, SNAPSHOT_KINDS)  # Endpoints: merged EndpointSlices
    table = routes.build(objs["Ingress"], objs["IngressClass"])
    backends = routes.resolve_backends(table, objs["Service"], objs["Endpoints"])
    secrets = {(s["metadata"].get("namespace", ""), s["metadata"]["name"]): s for s in objs["Secret"]}
    return Snapshot(rev, table, backends, secrets)


def sync_status(store: Store, table: routes.RouteTable, ip: str | None, all_ingresses: list[dict[str, Any]]) -> int:
    """Make owned Ingresses show ``ip`` and others not; ``ip=None`` removes it everywhere. Returns writes."""
    from kubesvc.registry.generic import Registry

    reg = Registry(store)
    mine = {(i["metadata"].get("namespace"), i["metadata"]["name"]) for i in table.ingresses}
    writes = 0
    for ing in all_ingresses:
        key = (ing["metadata"].get("namespace"), ing["metadata"]["name"])
        status = dict(ing.get("status") or {})
        lb = dict(status.get("loadBalancer") or {})
        current = lb.get("ingress") or []
        others = [e for e in current if e.get("ip") not in _OURS and (ip is None or e.get("ip") != ip)]
        entries = [{"ip": ip}, *others] if ip is not None and key in mine else others
        if entries == current:
            continue
        if entries:
            lb["ingress"] = entries
        else:
            lb.pop("ingress", None)
        status["loadBalancer"] = lb
        try:
            def set_status(obj: dict[str, Any], st: dict[str, Any] = status) -> None:
                obj["status"] = st

            reg.update_status("Ingress", key[0], key[1], set_status)
            writes += 1
        except KubesvcError as e:
            log.warning("cannot write Ingress status", extra={"kv": {"ingress": f"{key[0]}/{key[1]}", "error": str(e)}})
    return writes


_OURS: set[str] = set()  # the status IPs this process wrote (for the removal on stop)


class Follower:
    """Rebuilds the snapshot on its own thread when ``runtime.StoreFollower`` (on the loop) saw a commit: a thread
    waking every poll interval would take the GIL from the serving loop. A failure propagates to the supervisor
    (logged with its cause, retried with back-off)."""

    def __init__(self, opts: IngressOptions, apply: Callable[[Snapshot], None], revision: int, status_ip: str | None) -> None:
        self.opts, self.apply, self.revision, self.status_ip = opts, apply, revision, status_ip
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="kubesvc-ingress-follow")
        self.store: Store | None = None

    async def sync(self, _probe: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.sync_now)

    def sync_now(self) -> None:
        if self.store is None:
            self.store = Store(self.opts.store_path)
        if self.store.revision() != self.revision:
            self.step(self.store)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self.store is not None:
            self.store.close()

    def step(self, store: Store) -> None:
        snap = take_snapshot(store)
        self.revision = snap.revision
        self.apply(snap)
        if self.opts.update_status and self.status_ip:
            sync_status(store, snap.table, self.status_ip, store.list("Ingress"))


# ------------------------------------------------------------------------------------------ I/O


class AccessLog:
    def __init__(self, target: str) -> None:
        self.file: TextIO | None
        self.own = False
        if target == "off":
            self.file = None
        elif target == "-":
            self.file = sys.stderr
        else:
            try:
                self.file = open(target, "a", buffering=1 << 16, encoding="utf-8")
            except OSError as e:
                raise ClientError(f"--access-log: cannot open {target}: {e.strerror}") from None
            self.own = True
        self.buf: list[str] = []

    def write(self, line: str) -> None:
        self.buf.append(line)
        if len(self.buf) >= 256:
            self.flush()

    def flush(self) -> None:
        if self.buf and self.file is not None:
            try:
                self.file.write("".join(self.buf))
                self.file.flush()
            except (OSError, ValueError):
                pass
        self.buf.clear()

    def close(self) -> None:
        self.flush()
        if self.own and self.file is not None:
            self.file.close()


def _bind_message(host: str, port: int, flag: str, e: OSError) -> str:
    why = os.strerror(e.errno) if e.errno else str(e)
    hint = ""
    if port < 1024 and e.errno in (13, 1):
        hint = f" (ports below 1024 need root or CAP_NET_BIND_SERVICE; try {flag} 127.0.0.1:{8080 if flag == '--http-address' else 8443})"
    elif e.errno == 98:
        hint = " (another process listens there)"
    elif e.errno == 99:
        hint = " (the address is not on this machine)"
    return f"cannot listen on {_fmt(host, port)} ({flag}): {why}{hint}"


async def serve(opts: IngressOptions, stop: asyncio.Event) -> int:
    http_addr = parse_address(opts.http_address, "--http-address")
    https_addr = parse_address(opts.https_address, "--https-address")
    if http_addr is None and https_addr is None:
        raise ClientError("nothing to serve: --http-address and --https-address are both empty")
    default_ref = None
    if opts.default_ssl_certificate:
        ns, sep, name = opts.default_ssl_certificate.partition("/")
        if not sep or not ns or not name:
            raise ClientError(f'invalid --default-ssl-certificate "{opts.default_ssl_certificate}": want NAMESPACE/NAME')
        default_ref = (ns, name)
    worker = opts.worker_of != 0
    with Store(opts.store_path) as store:
        if not worker:
            ensure_ingress_class(store, opts.ingress_class)
        selector = None
        if https_addr is not None:
            try:
                selector = tls.CertSelector(tls.ensure_default_secret(store, default_ref))
            except tls.CertError as e:
                raise ClientError(str(e)) from None
        snap = take_snapshot(store)

    alog = AccessLog(opts.access_log)
    shared = Shared(opts.http, alog.write if alog.file is not None else None)
    loop = asyncio.get_running_loop()

    def apply(s: Snapshot) -> None:
        if selector is not None:
            selector.update(s.table, s.secrets)
        loop.call_soon_threadsafe(_swap, s)

    def _swap(s: Snapshot) -> None:
        shared.install(s.table, s.backends)
        log.debug("routes synced", extra={"kv": {"revision": s.revision, "ingresses": len(s.table.ingresses)}})

    if selector is not None:
        selector.update(snap.table, snap.secrets)
    shared.install(snap.table, snap.backends)

    shared.https_port = 0  # set below when an HTTPS listener is bound
    servers: list[asyncio.Server] = []
    fields: dict[str, str] = {}
    try:
        for addr, scheme, flag in ((http_addr, "http", "--http-address"), (https_addr, "https", "--https-address")):
            if addr is None:
                continue
            try:
                srv = await loop.create_server(
                    (lambda sch=scheme: ClientConn(shared, sch)), addr[0], addr[1], backlog=1024, reuse_address=True,
                    ssl=selector.default if scheme == "https" and selector is not None else None,
                    ssl_handshake_timeout=10.0 if scheme == "https" else None,
                    reuse_port=opts.workers > 1 or None,
                )
            except OSError as e:
                raise ListenError(_bind_message(addr[0], addr[1], flag, e)) from None
            servers.append(srv)
            port = srv.sockets[0].getsockname()[1]
            fields[scheme] = _fmt(addr[0], port)
            if scheme == "https":
                shared.https_port = port
    except BaseException:
        for s in servers:
            s.close()
        alog.close()
        raise

    health = runtime.Health()
    try:
        health_srv, health_addr = await runtime.serve_health("" if worker else opts.healthz_bind_address, HEALTHZ_DEFAULT,
                                                             "--healthz-bind-address", "ingress", health, logger=log)
    except BaseException:
        for s in servers:
            s.close()
        alog.close()
        raise
    if health_srv is not None:
        servers.append(health_srv)  # closed with the listeners
        fields["healthz"] = health_addr  # type: ignore[assignment]

    crew: Workers | None = None
    if opts.workers > 1 and not worker:
        crew = Workers(dataclasses.replace(opts, http_address=fields.get("http", ""), https_address=fields.get("https", "")),
                       opts.workers)
        try:
            await crew.start()
        except BaseException:
            crew.stop(1.0)
            for s in servers:
                s.close()
            alog.close()
            raise

    ip = status_ip((http_addr or https_addr)[0]) if opts.update_status and not worker else None  # type: ignore[index]
    if ip:
        _OURS.add(ip)
    with Store(opts.store_path) as store:
        if ip:
            sync_status(store, snap.table, ip, store.list("Ingress"))
        rev = store.revision()
    follower = Follower(opts, apply, snap.revision, ip)
    following = loop.create_task(runtime.StoreFollower(opts.store_path, opts.poll_interval, follower.sync, health, logger=log).run())

    async def sweep() -> None:
        shared.reap()
        alog.flush()
        if crew is not None:
            crew.supervise()
        elif worker and os.getppid() != opts.worker_of:  # the primary is gone (PDEATHSIG is the fast path)
            stop.set()

    sweeper = loop.create_task(runtime.supervise("sweep", sweep, Clock.SLACK, health, log))
    gc.collect()
    gc.freeze()  # start-up objects (typer, the store, the first table) never need scanning again
    extra = {"workers": opts.workers} if opts.workers > 1 else {}
    await observe.HUB.start(opts.store_path, "ingress", observe.ingress_snapshot)  # `kubesvc top`/`trace`
    runtime.announce_ready("ingress-worker" if worker else "ingress", {**fields, "class": opts.ingress_class, "revision": rev, **extra})
    if not worker:
        log.info("serving", extra={"kv": {**fields, "class": opts.ingress_class, **extra}})
    try:
        await stop.wait()
    finally:
        observe.HUB.stop()
        for s in servers:
            s.close()
        if crew is not None:
            crew.terminate()  # the workers drain their own requests meanwhile
        deadline = time.monotonic() + opts.drain_seconds
        while any(c.busy() for c in shared.conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for c in list(shared.conns):
            c.abort()
        shared.pool.close_all()
        for t in list(shared.tasks):
            t.cancel()
        sweeper.cancel()
        following.cancel()
        await asyncio.gather(sweeper, following, return_exceptions=True)
        await loop.run_in_executor(None, follower.close)
        if crew is not None:
            await loop.run_in_executor(None, crew.stop, opts.drain_seconds + 2.0)
        if ip:
            try:
                with Store(opts.store_path) as store:
                    sync_status(store, routes.RouteTable(), None, store.list("Ingress"))
            except Exception:
                log.exception("cannot clear Ingress status")
        alog.close()
        if not worker:
            log.info("stopped")
    return 0


def run(opts: IngressOptions) -> int:
    """Serve until SIGTERM/SIGINT. Raises ListenError/ClientError for clear one-line failures."""
    runtime.setup_logging(opts.verbosity)
    return runtime.run(lambda stop: serve(opts, stop))
