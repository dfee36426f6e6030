"""The proxy's reconcile loop: follow the store, rebuild the plan from a snapshot, apply the diff.

Rules kept here (STYLE rule 3; spec dataplane.md §1.9):
- Start-up and every change take one path: snapshot -> plan -> apply. The snapshot (``snapshot.PlanSource``) is
  incremental: the change log since the last sync, and only the Services that changed re-planned
  (``plan.Planner``); a full read (``list_with_revision`` -> ``Planner.rebuild``) on the first sync, after log
  compaction and periodically. The snapshot and the plan are built on a worker thread with its own store
  connection, so a big store never stalls forwarding; the loop thread only applies the result.
- The store is followed by ``runtime.StoreFollower`` (``data_version()`` every ``poll_interval``, 10 ms): a change is
  in force one poll plus one sync later. One sync runs at a time; changes during a sync trigger another.
- Supervised (``runtime.supervise``): the store follower, the housekeeping (affinity expiry, bind retries,
  workers) and the status-file writer are separate tasks; a failure of one is logged with its cause, retried with
  back-off, and ``/healthz`` answers 503 naming it until it recovers, while the others go on (a read-only run
  directory stops the status file, never the serving of new Services).
- Endpoint changes update the balancer in place; listeners open and close only when their address is
  added or removed. A sync after an incremental read touches only the service ports ``Plan.changed`` names and their
  addresses (and those still waiting to bind); after a full read, or when the previous apply failed, all of them.
  Established connections are never cut by a sync.
- An address that cannot be bound is reported for its service port (log, status file, metrics) and
  retried every ``RETRY_BIND_SECONDS``; every other listener keeps serving.
- ``workers > 1``: this process (the primary) binds first, then starts ``workers - 1`` worker processes
  (``worker_main``) that follow the same store and bind the same addresses with SO_REUSEPORT, so the kernel
  spreads new connections; the ready line waits for every worker. Each process has its own balancers
  (round robin per process; ClientIP affinity kept whole by steering a client IP to one process, see
  tcp.py). Workers leave their counters in a directory every second; the primary's ``/metrics`` adds them.
  Only the primary serves HTTP and writes the status file. A worker that dies is restarted
  (``runtime.WorkerProcesses``); workers stop with the primary (SIGTERM, or PR_SET_PDEATHSIG when it is killed).
- ``mode="nftables"``: the same loop, but a sync renders the plan into one nftables table (``nft.render``) and applies
  it as one transaction on the snapshot thread instead of opening listeners; the first sync replaces any table of
  that name (one a killed proxy left), shutdown deletes it. Syncs are partial (only changed chains and map elements,
  nothing at all when the table already matches) except the first, the one after a refused transaction and one every
  ``NFT_FULL_SYNC_SECONDS`` (60; env ``KUBESVC_PROXY_NFT_FULL_SYNC_SECONDS``), which rewrite the whole table. A failed apply is a failed sync (logged, retried,
  ``/healthz`` 503 until it applies). The health-check node ports, /healthz and /metrics are served as in userspace.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import logging
import os
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubesvc.dataplane import observe, runtime
from kubesvc.dataplane.proxy import nft
from kubesvc.dataplane.proxy import plan as planning
from kubesvc.dataplane.proxy.balancer import Balancer
from kubesvc.dataplane.proxy.metrics import (
    Histogram,
    PortMetrics,
    SyncStats,
    render,
    serve_http,
)
from kubesvc.dataplane.proxy.snapshot import PlanSource
from kubesvc.dataplane.proxy.tcp import Pair, TcpListener
from kubesvc.dataplane.proxy.udp import UdpListener

log = logging.getLogger("kubesvc.proxy")

RETRY_BIND_SECONDS = 2.0
WORKER_READY_SECONDS = 60.0
STATUS_WRITE_SECONDS = 0.5
SHUTDOWN_GRACE_SECONDS = 1.0
NFT_FULL_SYNC_SECONDS = float(os.environ.get("KUBESVC_PROXY_NFT_FULL_SYNC_SECONDS", "60"))  # nftables: full resync period

Listener = TcpListener | UdpListener


@dataclass(frozen=True)
class ProxyOptions:
    nodeport_addresses: tuple[str, ...] = ("127.0.0.0/8",)
    healthz_bind_address: str = "127.0.0.1:10256"  # "" disables
    metrics_bind_address: str = "127.0.0.1:10249"  # "" disables
    udp_timeout: float = 10.0
    poll_interval: float = 0.01
    verbosity: int = 0
    status_file: str | None = None
    workers: int = 1  # processes sharing every listening socket (SO_REUSEPORT) when > 1
    worker_dir: str | None = None  # set only in worker processes: where they leave their counters
    node_name: str = "kubesvc-node"  # --hostname-override: which endpoints are local (traffic policies)
    mode: str = "userspace"  # or "nftables": program the kernel (nft.py) instead of proxying in this process
    nft_table: str = nft.DEFAULT_TABLE  # nftables mode: the inet table this proxy owns


@dataclass
class PortState:
    """Live state of one service port: balancer, counters and open connections."""

    spn: planning.SPN
    protocol: str
    balancer: Balancer = field(default_factory=Balancer)
    metrics: PortMetrics = field(default_factory=PortMetrics)
    conns: set[Pair] = field(default_factory=set)
    config: planning.ServicePort | None = None
    ext_balancer: Balancer = field(default_factory=Balancer)  # NodePort/LB/external IPs when their policy differs

    def balancer_for(self, kind: str) -> Balancer:
        config = self.config
        if kind != "cluster" and config is not None and config.external_endpoints is not None:
            return self.ext_balancer
        return self.balancer

    @property
    def label(self) -> str:
        return planning.spn_text(self.spn)


def split_host_port(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{flag}: {text!r} is not host:port (port 0 picks a free one)")
    return host.strip("[]") or "0.0.0.0", int(port)


def local_ipv4_addresses() -> list[str]:
    """The primary IPv4 address of each interface (SIOCGIFADDR), plus 127.0.0.1."""
    import fcntl
    import struct

    out = ["127.0.0.1"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            ip = socket.inet_ntoa(raw[20:24])
            if ip not in out:
                out.append(ip)
    return out


def is_local_address(ip: str) -> bool:
    """True when ip can be bound here (127/8 always can on Linux)."""
    if ip.startswith("127."):
        return True
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def bind_error_text(proto: str, ip: str, port: int, e: OSError) -> str:
    reason = {
        errno.EADDRINUSE: "address already in use",
        errno.EADDRNOTAVAIL: "cannot assign requested address (not a local address)",
        errno.EACCES: "permission denied (privileged port)",
    }.get(e.errno or 0, e.strerror or str(e))
    return f"listen {proto.lower()} {ip}:{port}: bind: {reason}"


class HealthCheckRoutes(dict):  # type: ignore[type-arg]
    """Every path of a health-check node port answers (as kube-proxy's handler does)."""

    def __init__(self, server: ProxyServer, port: int) -> None:
        super().__init__()
        self.route = lambda: server.health_check(port)

    def get(self, path: str, default: Any = None) -> Any:
        return self.route


class ProxyServer:
    def __init__(self, store_path: str, options: ProxyOptions) -> None:
        self.store_path = store_path
        self.options = options
        self.states: dict[planning.SPN, PortState] = {}
        self.listeners: dict[planning.ListenerKey, Listener] = {}
        self.failed: dict[planning.ListenerKey, tuple[str, float]] = {}  # key -> (error, when)
        self.plan = planning.Plan()
        self._applied: planning.Plan | None = None  # the plan last applied in full (userspace: Plan.changed builds on it)
        self._last_read = self.plan  # the plan the last snapshot gave
        self.revision = -1
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sync_stats = SyncStats(Histogram())
        self.http: list[asyncio.AbstractServer] = []
        self.bound: dict[str, str] = {}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="proxy-snapshot")
        self._source: PlanSource | None = None
        self._status_dirty = False
        self._status_written = 0.0
        self._syncing = asyncio.Lock()
        self.workers: runtime.WorkerProcesses | None = None  # primary only
        self._worker_dir: tempfile.TemporaryDirectory[str] | None = None
        self.health = runtime.Health()
        self._parent = os.getppid()
        self._stop: asyncio.Event | None = None
        self.hc_servers: dict[int, list[asyncio.AbstractServer]] = {}
        self.hc_counts: dict[int, tuple[str, str, int]] = {}
        self.ruleset: nft.Ruleset | None = None  # nftables mode: what the last sync applied
        self._nft_failed = False  # the last nftables transaction was refused: the next sync is a full one
        self._nft_full_at = 0.0  # monotonic time of the last full nftables sync
        self.last_sync_seconds = 0.0

    @property
    def nftables(self) -> bool:
        return self.options.mode == "nftables"

    @property
    def is_worker(self) -> bool:
        return self.options.worker_dir is not None

    # ------------------------------------------------------------------------------- snapshot side

    def _snapshot(self) -> tuple[int, planning.Plan]:
        """Snapshot thread: the plan at the store's revision (``snapshot.PlanSource``: from the change log since the
        last sync, re-planning only the Services that changed; a full read on the first sync and when it must)."""
        if self._source is None:
            self._source = PlanSource(self.store_path, self.options.node_name, self.options.nodeport_addresses,
                                      local_ipv4_addresses, is_local_address)
        return self._source.read()

    # ------------------------------------------------------------------------------- loop side

    async def sync(self) -> None:
        async with self._syncing:
            t0 = time.monotonic()
            loop = asyncio.get_running_loop()
            rev, plan = await loop.run_in_executor(self._executor, self._snapshot)
            full_read = plan.changed is None
            if self._last_read is not self.plan:  # the plan the last read gave was not applied: changed counts from it
                plan.changed = None
            self._last_read = plan
            # What a full read builds (and the listeners and balancers of its apply) lives until the next one: no
            # collections while it is made, then out of the collector's reach, or every full collection walks it
            # (10,000 Services: 0.4-0.8 s pauses of the loop, forwarding included).
            collecting = full_read and gc.isenabled()
            if collecting:
                gc.disable()
            try:
                opened, closed = await self._apply(plan)
            finally:
                if collecting:
                    gc.enable()
                    gc.collect(1)
                    gc.freeze()
            self.revision = rev
            took = time.monotonic() - t0
            self.last_sync_seconds = took
            self.sync_stats.duration.observe(took)
            self.sync_stats.last_timestamp = time.time()
            self.sync_stats.syncs += 1
            self._status_dirty = True
            if self.options.verbosity >= 1:
                log.info(
                    "synced",
                    extra={"kv": {"revision": rev, "servicePorts": len(plan.ports), "listeners": len(self.listeners),
                                  "opened": opened, "closed": closed, "bindErrors": len(self.failed), "seconds": f"{took:.4f}"}},
                )

    async def _apply(self, plan: planning.Plan) -> tuple[int, int]:
        if self.nftables:
            return await self._apply_nft(plan)
        # plan.changed is relative to the plan before it: usable only when that one was applied in full
        changed = plan.changed if self._applied is not None and self._applied is self.plan else None
        self._applied = None
        spns = plan.ports.keys() if changed is None else changed
        for spn in spns:
            sp = plan.ports.get(spn)
            if sp is None:
                self.states.pop(spn, None)  # open connections keep their own reference until they end
                continue
            st = self.states.get(spn)
            if st is None or st.protocol != sp.protocol:
                st = self.states[spn] = PortState(spn, sp.protocol)
            st.config = sp
            st.balancer.configure(sp.affinity, sp.affinity_seconds)
            st.balancer.set_endpoints(sp.endpoints)
            st.ext_balancer.configure(sp.affinity, sp.affinity_seconds)
            st.ext_balancer.set_endpoints(sp.external_endpoints or ())
        if changed is None:
            for spn in [s for s in self.states if s not in plan.ports]:
                del self.states[spn]
        known = set(self.plan.problems)
        for problem_spn, msg in plan.problems:
            if (problem_spn, msg) not in known:
                log.warning("service port not served", extra={"kv": {"service": planning.spn_text(problem_spn), "error": msg}})
        prev, self.plan = self.plan, plan
        if changed is None:
            serving = planning.serving(plan)  # no ready endpoint: no socket, so the kernel refuses (REJECT)
            to_open, to_close = planning.diff(self.listeners.keys(), plan, serving)
            stale = [k for k in self.failed if k not in serving]
            retarget = list(self.listeners)
        else:  # only the addresses of the service ports that changed (before or now), and those still to bind
            keys = set(self.failed)
            for spn in changed:
                for sp in (prev.ports.get(spn), plan.ports.get(spn)):
                    if sp is not None:
                        keys.update((sp.protocol, ip, port) for ip, port, _ in sp.addresses)
            serving = {k: plan.listeners[k] for k in keys if k in plan.listeners
                       and plan.ports[plan.listeners[k]].endpoints_for(planning.listener_kind(plan, k))}
            to_open = sorted(k for k in serving if k not in self.listeners)
            to_close = sorted(k for k in keys if k in self.listeners and k not in serving)
            stale = [k for k in self.failed if k not in serving]
            retarget = [k for k in serving if k in self.listeners]
        for key in to_close:
            self.listeners.pop(key).close()
        for key in stale:
            del self.failed[key]
        for key in retarget:
            listener = self.listeners[key]
            listener.state = self.states[plan.listeners[key]]
            listener.configure(planning.listener_kind(plan, key))
            listener.steer()
        now = time.monotonic()
        opened = 0
        for key in to_open:
            failed = self.failed.get(key)
            if failed is not None and now - failed[1] < RETRY_BIND_SECONDS:
                continue
            if await self._open(key, self.states[plan.listeners[key]], planning.listener_kind(plan, key)):
                opened += 1
        await self._health_checks(plan)
        self._applied = plan
        return opened, len(to_close)

    def _render_apply_nft(self, plan: planning.Plan) -> nft.Ruleset:
        """Snapshot thread: render and apply one transaction (all or nothing: on failure the kernel keeps the last good
        rules and the next sync is a full one). Partial syncs write only what changed; a full sync (the first, after a
        failure, and every ``NFT_FULL_SYNC_SECONDS``) rewrites every chain and map and deletes chains and sets of ours
        that the model does not know, repairing a table edited behind our back."""
        table, prev = self.options.nft_table, self.ruleset
        now = time.monotonic()
        full = prev is None or self._nft_failed or now - self._nft_full_at >= NFT_FULL_SYNC_SECONDS
        existing = nft.list_objects(table) if full and prev is not None else None
        ruleset = nft.render(plan, table, prev, fresh=prev is None, partial=not full, existing=existing, changed=plan.changed)
        self._nft_failed = True
        if ruleset.text:
            nft.apply(ruleset)
        self._nft_failed = False
        if full:
            self._nft_full_at = now
        return ruleset

    async def _apply_nft(self, plan: planning.Plan) -> tuple[int, int]:
        ruleset = await asyncio.get_running_loop().run_in_executor(self._executor, self._render_apply_nft, plan)
        before = self.ruleset.chains if self.ruleset is not None else set()
        self.ruleset = ruleset
        known = set(self.plan.problems)
        for problem_spn, msg in plan.problems:
            if (problem_spn, msg) not in known:
                log.warning("service port not served", extra={"kv": {"service": planning.spn_text(problem_spn), "error": msg}})
        self.plan = plan
        await self._health_checks(plan)
        return len(ruleset.chains - before), len(before - ruleset.chains)

    async def _health_checks(self, plan: planning.Plan) -> None:
        """kube-proxy's service health server: one HTTP listener per healthCheckNodePort on each node address,
        answering kube-proxy's JSON body with 200 while the Service has local endpoints, else 503."""
        if self.is_worker:
            return
        want = planning.health_checks(plan)
        self.hc_counts = want
        for port in [p for p in self.hc_servers if p not in want]:
            for srv in self.hc_servers.pop(port):
                srv.close()
        nodes = planning.node_addresses(self.options.nodeport_addresses, local_ipv4_addresses())
        for port in want:
            if port in self.hc_servers:
                continue
            servers: list[asyncio.AbstractServer] = []
            for ip in nodes:
                try:
                    servers.append(await serve_http(ip, port, HealthCheckRoutes(self, port)))  # type: ignore[arg-type]
                except OSError as e:
                    log.warning("cannot serve health check", extra={"kv": {"address": f"{ip}:{port}", "error": str(e)}})
            self.hc_servers[port] = servers

    def health_check(self, port: int) -> tuple[int, str, str]:
        ns, name, count = self.hc_counts.get(port, ("", "", 0))
        healthy = self.health.ok
        body = (f'{{\n\t"service": {{\n\t\t"namespace": {json.dumps(ns)},\n\t\t"name": {json.dumps(name)}\n\t}},\n'
                f'\t"localEndpoints": {count},\n\t"serviceProxyHealthy": {"true" if healthy else "false"}\n}}')
        return (200 if count and healthy else 503), "application/json", body

    async def _open(self, key: planning.ListenerKey, state: PortState, kind: str = "cluster") -> bool:
        proto, ip, port = key
        listener: Listener
        workers = self.options.workers
        if proto == "TCP":
            listener = TcpListener(key, state, self.tasks, workers)
        else:
            listener = UdpListener(key, state, self.options.udp_timeout, workers)
        listener.configure(kind)
        try:
            await listener.open()
        except OSError as e:
            msg = bind_error_text(proto, ip, port, e)
            if key not in self.failed:
                log.warning("cannot listen", extra={"kv": {"service": state.label, "error": msg}})
            self.failed[key] = (msg, time.monotonic())
            return False
        if key in self.failed:
            del self.failed[key]
            log.info("listening after retry", extra={"kv": {"service": state.label, "address": f"{ip}:{port}/{proto}"}})
        self.listeners[key] = listener
        return True

    async def _follow(self, store: Any) -> None:
        """``StoreFollower``'s sync: the store moved; sync when the revision is not the one applied."""
        if store.revision() != self.revision:
            await self.sync()

    async def _write_status_if_dirty(self) -> None:
        if self._status_dirty:
            self.write_status()

    async def _housekeeping(self) -> None:
        for st in self.states.values():
            st.balancer.cleanup()
        if self.failed:
            await self._apply(self.plan)
            self._status_dirty = True
        if self.nftables and self.ruleset is not None and time.monotonic() - self._nft_full_at >= NFT_FULL_SYNC_SECONDS:
            await self.sync()  # the periodic full resync (repairs a table edited behind our back)
        if self.is_worker:
            if os.getppid() != self._parent and self._stop is not None:  # primary gone (PDEATHSIG is the fast path)
                self._stop.set()
            self._write_counters()
        elif self.workers is not None:
            self.workers.supervise()

    # ------------------------------------------------------------------------------- observability

    def _counters(self) -> dict[planning.SPN, dict[str, int]]:
        out = {}
        for spn, st in self.states.items():
            m = st.metrics
            vals = {a: getattr(m, a) for a in m.__slots__}
            for pair in st.conns:
                i, o = pair.live_bytes()
                vals["bytes_in"] += i
                vals["bytes_out"] += o
            out[spn] = vals
        return out

    def _write_counters(self) -> None:
        """Worker side: leave this process's counters for the primary's /metrics (atomic replace)."""
        assert self.options.worker_dir is not None
        path = os.path.join(self.options.worker_dir, f"{os.getpid()}.json")
        with open(f"{path}.tmp", "w") as f:
            json.dump([[list(spn), vals] for spn, vals in self._counters().items()], f)
        os.replace(f"{path}.tmp", path)

    def _worker_counters(self) -> list[tuple[planning.SPN, dict[str, int]]]:
        if self._worker_dir is None:
            return []
        out = []
        for pid in self.workers.pids() if self.workers is not None else []:
            try:
                with open(os.path.join(self._worker_dir.name, f"{pid}.json")) as f:
                    out += [(tuple(spn), vals) for spn, vals in json.load(f)]
            except (OSError, ValueError):
                continue
        return out  # type: ignore[return-value]

    def _metrics_text(self) -> str:
        counters = self._counters()
        for spn, vals in self._worker_counters():
            mine = counters.get(spn)
            if mine is not None:
                for k, v in vals.items():
                    if k in mine:
                        mine[k] += v
        rows = [(spn, self.states[spn].protocol, counters[spn]) for spn in sorted(counters)]
        text = render(rows, self.sync_stats, len(self.listeners), len(self.failed))
        if self.nftables:
            rs = self.ruleset
            text += ("# HELP kubesvc_proxy_syncs_total Syncs applied.\n# TYPE kubesvc_proxy_syncs_total counter\n"
                     f"kubesvc_proxy_syncs_total {self.sync_stats.syncs}\n"
                     "# HELP kubesvc_proxy_nftables_rules Rules and map elements in the proxy's nftables table.\n"
                     f"# TYPE kubesvc_proxy_nftables_rules gauge\nkubesvc_proxy_nftables_rules {rs.rules if rs else 0}\n"
                     "# HELP kubesvc_proxy_nftables_chains Per-Service chains in the table.\n"
                     f"# TYPE kubesvc_proxy_nftables_chains gauge\nkubesvc_proxy_nftables_chains {len(rs.chains) if rs else 0}\n"
                     "# HELP kubeproxy_sync_proxy_rules_last_duration_seconds Latency of the last sync.\n"
                     "# TYPE kubeproxy_sync_proxy_rules_last_duration_seconds gauge\n"
                     f"kubeproxy_sync_proxy_rules_last_duration_seconds {self.last_sync_seconds:.6f}\n")
        return text

    def _healthz(self) -> tuple[int, str, str]:
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        last = datetime.fromtimestamp(self.sync_stats.last_timestamp, UTC).strftime(fmt)
        now = datetime.now(UTC).strftime(fmt)
        ok = self.sync_stats.syncs > 0 and self.health.ok
        body: dict[str, Any] = {"lastUpdated": last, "currentTime": now, "revision": self.revision}
        if not self.health.ok:
            body["failing"] = self.health.reasons()
        return (200 if ok else 503), "application/json", json.dumps(body) + "\n"

    def status(self) -> dict[str, Any]:
        ports = []
        for spn, sp in self.plan.ports.items():
            addrs = [f"{ip}:{port}/{sp.protocol} ({kind})" for ip, port, kind in sp.addresses
                     if (sp.protocol, ip, port) in self.listeners or (self.nftables and sp.endpoints_for(kind))]
            entry: dict[str, Any] = {"service": planning.spn_text(spn), "addresses": addrs, "endpoints": len(sp.endpoints)}
            if not sp.endpoints:
                entry["rejecting"] = [f"{ip}:{port}/{sp.protocol} ({kind})" for ip, port, kind in sp.addresses]
            ports.append(entry)
        errors = [{"service": planning.spn_text(self.plan.listeners[k]), "error": e} for k, (e, _) in sorted(self.failed.items()) if k in self.plan.listeners]
        errors += [{"service": planning.spn_text(spn), "error": msg} for spn, msg in self.plan.problems]
        errors += [{"service": "", "error": why} for why in self.health.reasons()]
        mode = {"mode": "nftables", "nftTable": self.options.nft_table,
                "nftRules": self.ruleset.rules if self.ruleset else 0} if self.nftables else {}
        return {"component": "proxy", "pid": os.getpid(), "revision": self.revision, **self.bound, **mode,
                "listeners": len(self.listeners), "servicePorts": ports, "errors": errors}

    def write_status(self) -> None:
        """Write the status file (atomic replace). Raises OSError (read-only directory, full disk): the caller's
        supervisor logs it and retries; the file stays marked dirty until a write succeeds."""
        path = self.options.status_file
        self._status_written = time.monotonic()
        if not path:
            self._status_dirty = False
            return
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                json.dump(self.status(), f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._status_dirty = False

    async def _serve_http(self) -> None:
        for name, text, routes in (
            ("healthz", self.options.healthz_bind_address, {"/healthz": self._healthz, "/livez": self._healthz}),
            ("metrics", self.options.metrics_bind_address,
             {"/metrics": lambda: (200, "text/plain; version=0.0.4", self._metrics_text()), "/healthz": self._healthz}),
        ):
            if not text:
                continue
            host, port = split_host_port(text, f"--{name}-bind-address")
            try:
                srv = await serve_http(host, port, routes)  # type: ignore[arg-type]
            except OSError as e:
                raise OSError(e.errno, f"--{name}-bind-address {text}: {e.strerror}") from None
            self.http.append(srv)
            h, p = srv.sockets[0].getsockname()[:2]
            self.bound[name] = f"{h}:{p}"

    # ------------------------------------------------------------------------------- lifecycle

    async def run(self, stop: asyncio.Event, on_ready: Any = None) -> int:
        self._stop = stop
        if not self.is_worker:
            await self._serve_http()
        try:
            await self.sync()
        except nft.NftError:
            for srv in self.http:
                srv.close()
            raise
        try:
            self.write_status()
        except OSError:
            pass  # still dirty: the status-file task retries at once, logs the cause and turns /healthz 503
        await observe.HUB.start(self.store_path, "proxy", lambda: observe.proxy_snapshot(self))  # `kubesvc top`/`trace`
        if self.options.workers > 1 and not self.is_worker:
            await self._start_workers()
        if on_ready is not None:
            extra: dict[str, Any] = {"workers": self.options.workers} if self.options.workers > 1 else {}
            if self.nftables:
                extra.update(mode="nftables", nftTable=self.options.nft_table)
            on_ready({**self.bound, "listeners": len(self.listeners), "servicePorts": len(self.plan.ports), "bindErrors": len(self.failed), **extra})
        loop = asyncio.get_running_loop()
        follower = runtime.StoreFollower(self.store_path, self.options.poll_interval, self._follow, self.health, logger=log)
        tasks = [loop.create_task(follower.run(), name="store"),
                 loop.create_task(runtime.supervise("housekeeping", self._housekeeping, 1.0, self.health, log), name="housekeeping"),
                 loop.create_task(runtime.supervise("status-file", self._write_status_if_dirty, STATUS_WRITE_SECONDS, self.health, log),
                                  name="status-file")]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.shutdown()
        return 0

    # ------------------------------------------------------------------------------- worker processes

    def _worker_argv(self) -> list[str]:
        assert self._worker_dir is not None
        opts = {k: getattr(self.options, k) for k in ProxyOptions.__dataclass_fields__}
        opts.update(healthz_bind_address="", metrics_bind_address="", status_file=None, worker_dir=self._worker_dir.name)
        return [sys.executable, "-c", "from kubesvc.dataplane.proxy.server import worker_main; worker_main()",
                json.dumps({"store": self.store_path, "options": opts})]

    async def _start_workers(self) -> None:
        self._worker_dir = tempfile.TemporaryDirectory(prefix="kubesvc-proxy-workers-")
        self.workers = runtime.WorkerProcesses("proxy worker", self._worker_argv, self.options.workers,
                                               b"kubesvc proxy-worker ready", WORKER_READY_SECONDS, log)
        await self.workers.start()

    def _stop_workers(self) -> None:
        if self.workers is not None:
            self.workers.stop(5.0)
        if self._worker_dir is not None:
            self._worker_dir.cleanup()
            self._worker_dir = None

    async def shutdown(self) -> None:
        observe.HUB.stop()
        self._stop_workers()
        for srv in self.http + [s for servers in self.hc_servers.values() for s in servers]:
            srv.close()
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while any(st.conns for st in self.states.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self.tasks):
            task.cancel()
        for st in self.states.values():
            for pair in list(st.conns):
                for t in (pair.client, pair.backend):
                    if t is not None:
                        t.abort()
        await asyncio.sleep(0)
        self._executor.shutdown(wait=True)
        if self.nftables:
            try:
                nft.delete_table(self.options.nft_table)
            except nft.NftError as e:
                log.warning("cannot remove the nftables table", extra={"kv": {"table": self.options.nft_table, "error": str(e)}})
        if self._source is not None:
            self._source.close()
        if self.options.status_file:
            try:
                os.unlink(self.options.status_file)
            except FileNotFoundError:
                pass


def worker_main() -> None:
    """Entry point of a worker process (started by the primary with its options as JSON in argv[1])."""
    args = json.loads(sys.argv[1])
    opts = args["options"]
    opts["nodeport_addresses"] = tuple(opts["nodeport_addresses"])
    options = ProxyOptions(**opts)
    runtime.die_with_parent()
    runtime.setup_logging(options.verbosity)

    async def main(stop: asyncio.Event) -> int:
        server = ProxyServer(args["store"], options)
        return await server.run(stop, on_ready=lambda fields: runtime.announce_ready("proxy-worker", fields))

    sys.exit(runtime.run(main))
