"""The node agent's shared state: which pods run here, store writes, events, pod networking.

Rules kept here:
- A Pod is ours when ``spec.claims`` says so (a command, controller-owned, or native images; see
  there) and ``spec.nodeName`` is empty or our node name; we bind it (``spec.nodeName``) before starting it. Pods already Succeeded/Failed are
  not started again; a pod whose uid changed (deleted and re-created) is stopped and started anew.
- A pod deleted gracefully (``deletionTimestamp``, Terminating) is stopped by its worker (preStop hooks,
  SIGTERM, the rest of ``deletionGracePeriodSeconds``, SIGKILL) and then deleted with grace 0, as the
  kubelet's status manager does; one with nothing running here is deleted at once.
- A pod that disappears from the store (force-deleted, or deleted while no agent ran) is stopped in the
  background with its ``terminationGracePeriodSeconds`` (it already left the Endpoints in the delete
  transaction) and its log directory is removed afterwards.
- Status writes go through ``Registry.update_status`` (status subresource); a pod deleted meanwhile
  is not an error.
- Network: ``loopback`` (default) uses the pod IP the registry allocated (127.244.0.0/16) and the
  host's network namespace; ``netns`` (root) gives each pod a namespace, a veth pair and the address
  with the same low 16 bits in ``--pod-cidr`` (see ``netns.py``).
- Nothing orphaned: pod workers adopt the containers a previous kubelet left running (``tracking``);
  after the first sync, recorded containers that no worker claimed (their pod was deleted, finished,
  or moved meanwhile) are stopped, and directories of pods gone from the store are removed.
- The pods directory and each pod's directory may be searched but not listed by others (0711): a pod's
  user must reach its volumes and runtime files there; each container's directory (logs, records) is
  private to the kubelet's user (0700; files 0600): a container's output may hold its secrets.
  Containers write their logs through the inherited file.
- Pod-visible files live under the pod's directory: ``volumes/<name>`` (``volumes.py``) and ``run/``
  (resolv.conf, agnhost, generated nginx configuration: ``images.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesvc.controllers import scheduler
from kubesvc.dataplane.kubelet import identity, images, logs, spec, status, tracking, volumes
from kubesvc.dataplane.kubelet.events import Recorder
from kubesvc.dataplane.kubelet.pod import PodWorker, now_rfc3339
from kubesvc.errors import KubesvcError, NotFound
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.kubelet")
HOST_IP = "127.0.0.1"  # a single node (no Node object, or one without an InternalIP): the machine's loopback


@dataclass(frozen=True)
class KubeletOptions:
    store_path: str
    node_name: str = "kubesvc-node"
    isolation: str = "loopback"  # loopback | netns
    pod_cidr: str = "10.244.0.0/16"
    backoff_base: float = 10.0
    backoff_cap: float = 300.0
    sync_period: float = 1.0
    default_workdir: str = "."
    controllers: bool = True
    verbosity: int = 0
    run_as_root: bool = False  # when the kubelet is root: containers without runAsUser run as root, not nobody
    cluster_dns: str = ""  # HOST[:PORT] of the cluster DNS (default: the kube-dns Service's cluster IP, port 53)
    healthz_bind_address: str | None = None  # /healthz; None: 127.0.0.1:10248 (best effort), "": off


class Node:
    def __init__(self, opts: KubeletOptions) -> None:
        self.opts = opts
        self.store = Store(opts.store_path)
        self.registry = Registry(self.store)
        self.recorder = Recorder(self.registry, "kubelet", opts.node_name)
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.stopping: set[asyncio.Task[None]] = set()
        self.netns: Any = None
        self.relay: Any = None
        self.swept = False
        self._host_ip, self._host_ip_at = HOST_IP, -1e9
        pods = logs.pods_dir(opts.store_path)
        pods.mkdir(parents=True, exist_ok=True)
        os.chmod(pods, 0o711)
        if opts.isolation == "netns":
            from kubesvc.dataplane.kubelet import netns

            self.netns = netns.PodNetworks(opts.pod_cidr)

    # ------------------------------------------------------------------ sync

    @property
    def host_ip(self) -> str:
        """This node's InternalIP from its Node object (``up --nodes N``: 172.30.0.(10+i)), read at most once a
        second; the machine's loopback when there is none. Pods' ``status.hostIP`` and ``fieldRef: status.hostIP``."""
        now = time.monotonic()
        if now - self._host_ip_at >= 1.0:
            self._host_ip_at = now
            node = self.store.get("Node", "", self.opts.node_name) or {}
            addrs = (node.get("status") or {}).get("addresses") or []
            self._host_ip = next((str(a.get("address")) for a in addrs if isinstance(a, dict)
                                  and a.get("type") == "InternalIP" and a.get("address")), HOST_IP)
        return self._host_ip

    def sync_pods(self) -> None:
        seen: set[tuple[str, str]] = set()
        all_pods = self.store.list("Pod")
        nodes: list[dict[str, Any]] | None = None
        for pod in all_pods:
            meta, pspec = pod["metadata"], pod.get("spec") or {}
            if not spec.claims(pod, self.opts.node_name):
                continue
            key = (meta.get("namespace", "default"), meta["name"])
            worker = self.workers.get(key)
            if worker is not None and worker.uid != meta.get("uid", ""):
                self._stop_worker(worker)
                worker = None
            if meta.get("deletionTimestamp"):
                self._terminate(key, worker, pod)
                seen.add(key)
                continue
            if worker is None:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                try:
                    if not pspec.get("nodeName"):
                        # several nodes (`up --nodes N`): bind only the pods the scheduler places here
                        nodes = self.store.list("Node") if nodes is None else nodes
                        if len(nodes) > 1 and scheduler.pick_node(pod, nodes, all_pods) != self.opts.node_name:
                            continue
                        pod = self.registry.bind_pod(key[0], key[1], self.opts.node_name)  # type: ignore[attr-defined]
                        all_pods.append(pod)
                except KubesvcError:  # gone, or another node's agent bound it first
                    continue
                worker = PodWorker(self, pod)
                if worker.adopt():
                    log.info("pod adopted", extra={"kv": {"pod": f"{key[0]}/{key[1]}"}})
                self.workers[key] = worker
                self._keep(asyncio.create_task(worker.start(), name=f"start {key[1]}"))
                log.info("pod started", extra={"kv": {"pod": f"{key[0]}/{key[1]}"}})
            else:
                worker.pod["metadata"] = pod["metadata"]
            seen.add(key)
        for key in [k for k in self.workers if k not in seen]:
            self._stop_worker(self.workers[key])
        if not self.swept:
            self.swept = True
            self._sweep_unclaimed()

    def _sweep_unclaimed(self) -> None:
        """Once, after the first sync: stop recorded containers no worker adopted; drop dirs of pods gone."""
        pods = logs.pods_dir(self.opts.store_path)
        claimed = {logs.pod_dir(self.opts.store_path, w.pod) for w in self.workers.values()}
        listed = self.store.list("Pod")
        known = {logs.pod_dir(self.opts.store_path, p) for p in listed}
        # containers of pods bound to another node belong to that node's agent (`up --nodes N`)
        elsewhere = {logs.pod_dir(self.opts.store_path, p) for p in listed
                     if (p.get("spec") or {}).get("nodeName") not in (None, "", self.opts.node_name)}
        stray = {path for path, _ in tracking.records(pods) if path.parent.parent not in claimed | elsewhere}
        gone = [d for d in pods.iterdir() if d.is_dir() and d not in known]
        if not stray and not gone:
            return

        async def sweep() -> None:
            found = await asyncio.to_thread(tracking.sweep, pods, 30.0, stray)
            for rec in found:
                log.info("orphan stopped", extra={"kv": {"pid": rec.get("pid"), "container": rec.get("container")}})
            for d in gone:
                if self.netns is not None:
                    await asyncio.to_thread(self.netns.teardown, d.name.rsplit("_", 1)[-1])
                shutil.rmtree(d, ignore_errors=True)

        self._keep(asyncio.create_task(sweep(), name="sweep orphans"))

    def _stop_worker(self, worker: PodWorker) -> None:
        self.workers.pop(worker.key, None)
        log.info("pod stopping", extra={"kv": {"pod": f"{worker.namespace}/{worker.name}"}})

        async def stop() -> None:
            await worker.stop("deleted")
            shutil.rmtree(logs.pod_dir(self.opts.store_path, worker.pod), ignore_errors=True)

        self._keep(asyncio.create_task(stop(), name=f"stop {worker.name}"))

    def _terminate(self, key: tuple[str, str], worker: PodWorker | None, pod: Obj) -> None:
        """Graceful deletion: the worker stops its containers (preStop, SIGTERM, the rest of
        ``deletionGracePeriodSeconds``, SIGKILL), then the pod is deleted with grace 0 (uid precondition). A pod
        with nothing running here (not started yet, or a previous agent's, none left) is deleted at once."""
        if worker is not None:
            worker.pod["metadata"] = pod["metadata"]
            if worker.terminating:
                return
        else:
            worker = PodWorker(self, pod)
            if not worker.adopt():
                self._finish_deletion(pod)
                return
            self.workers[key] = worker
        worker.terminating = True
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        log.info("pod terminating", extra={"kv": {"pod": f"{key[0]}/{key[1]}", "grace": grace}})

        async def terminate() -> None:
            await worker.stop("terminating", grace)
            self._finish_deletion(worker.pod)
            if self.workers.get(key) is worker:
                self.workers.pop(key, None)
            shutil.rmtree(logs.pod_dir(self.opts.store_path, worker.pod), ignore_errors=True)

        self._keep(asyncio.create_task(terminate(), name=f"terminate {key[1]}"))

    def _finish_deletion(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            self.registry.delete("Pod", meta.get("namespace", "default"), meta["name"], grace_period=0, uid=meta.get("uid"))
        except KubesvcError:  # gone already (force-deleted), or another pod of that name
            pass

    def _keep(self, task: asyncio.Task[None]) -> None:
        self.stopping.add(task)
        task.add_done_callback(self.stopping.discard)

    async def shutdown(self) -> None:
        """SIGTERM to the agent: stop every pod it runs (grace periods honoured), in parallel."""
        workers = list(self.workers.values())
        self.workers.clear()
        await asyncio.gather(*(w.stop("node-stopped") for w in workers), return_exceptions=True)
        while self.stopping:
            await asyncio.gather(*list(self.stopping), return_exceptions=True)
        if self.netns is not None:
            self.netns.cleanup_all()
        if self.relay is not None:
            self.relay.close()

    # ------------------------------------------------------------------ services for pod workers

    def container_env(self, worker: PodWorker, container: Obj) -> dict[str, str]:
        pod = dict(worker.pod)
        pod["status"] = {**(worker.pod.get("status") or {}), "podIP": worker.pod_ip,
                         "podIPs": [{"ip": worker.pod_ip}], "hostIP": self.host_ip, "hostIPs": [{"ip": self.host_ip}]}

        def lookup(kind: str, ns: str, name: str) -> Obj | None:
            return self.store.get(kind, ns, name)

        return spec.container_env(pod, container, lookup, self.store.list("Service", worker.namespace),
                                  master=self.store.get("Service", "default", "kubernetes"))

    def lookup(self, kind: str, ns: str, name: str) -> Obj | None:
        return self.store.get(kind, ns, name)

    def pod_dir(self, worker: PodWorker) -> Path:
        d = logs.pod_dir(self.opts.store_path, worker.pod)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o711)
        return d

    def run_dir(self, worker: PodWorker) -> Path:
        d = self.pod_dir(worker) / "run"
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o755)
        return d

    def bind_address(self, worker: PodWorker) -> str:
        return "0.0.0.0" if self.netns is not None else worker.pod_ip

    def image_context(self, worker: PodWorker, ident: identity.Identity) -> images.Context:
        run = self.run_dir(worker)
        low = os.geteuid() == 0 and (self.netns is not None or not ident.switch or self._setpriv() is not None)
        return images.Context(run_dir=run, reachable=identity.can_search(str(run), ident),
                              bind_address=self.bind_address(worker), uid=ident.uid, gid=ident.gid, low_ports_ok=low)

    def pod_volumes(self, worker: PodWorker, ident: identity.Identity) -> dict[str, str]:
        return volumes.materialise(worker.pod, self.lookup, self.pod_dir(worker), ident.uid, ident.gid)

    def resolv_conf(self, worker: PodWorker) -> str | None:
        """The pod's resolv.conf in netns mode (None: keep the host's), per dnsPolicy and dnsConfig."""
        pspec = worker.pod.get("spec") or {}
        policy = pspec.get("dnsPolicy") or "ClusterFirst"
        if policy == "ClusterFirstWithHostNet":
            policy = "ClusterFirst"
        cfg = pspec.get("dnsConfig") or {}
        zone = self.store.settings().cluster_domain.rstrip(".")
        servers: list[str] = []
        search: list[str] = []
        options: list[str] = []
        if policy == "ClusterFirst":
            from kubesvc.dataplane.kubelet.netns import GATEWAY

            servers = [GATEWAY]
            search = [f"{worker.namespace}.svc.{zone}", f"svc.{zone}", zone]
            options = ["ndots:5"]
        elif policy == "Default":
            if not cfg:
                return None
            try:
                for line in Path("/etc/resolv.conf").read_text().splitlines():
                    parts = line.split()
                    if parts and parts[0] == "nameserver":
                        servers += parts[1:2]
                    elif parts and parts[0] == "search":
                        search = parts[1:]
            except OSError:
                pass
        servers += [str(x) for x in cfg.get("nameservers") or [] if str(x) not in servers]
        search += [str(x) for x in cfg.get("searches") or [] if str(x) not in search]
        for o in cfg.get("options") or []:
            name = str(o.get("name", ""))
            options = [x for x in options if x.split(":")[0] != name]
            options.append(f"{name}:{o['value']}" if o.get("value") is not None else name)
        text = "".join(f"nameserver {x}\n" for x in servers[:3])
        if search:
            text += "search " + " ".join(search) + "\n"
        if options:
            text += "options " + " ".join(options) + "\n"
        path = self.run_dir(worker) / "resolv.conf"
        path.write_text(text)
        os.chmod(path, 0o644)
        return str(path)

    def cluster_dns(self) -> tuple[str, int]:
        if self.opts.cluster_dns:
            host, _, port = self.opts.cluster_dns.rpartition(":")
            if not host:
                return self.opts.cluster_dns, 53
            return host.strip("[]"), int(port)
        svc = self.store.get("Service", "kube-system", "kube-dns")
        ip = ((svc or {}).get("spec") or {}).get("clusterIP")
        if ip and ip != "None":
            return str(ip), 53
        from kubesvc.registry.allocators import IPRange

        return IPRange(self.store.settings().service_cluster_ip_range).nth(10), 53

    @staticmethod
    def _setpriv() -> str | None:
        import shutil as sh

        return sh.which("setpriv")

    def write_status(self, worker: PodWorker) -> None:
        def fn(pod: Obj) -> None:
            if pod["metadata"].get("uid") != worker.uid:
                return
            views: list[status.ContainerView] = [c.view for c in worker.containers]
            pod["status"] = status.compose(pod, views, pod_ip=worker.pod_ip, host_ip=self.host_ip,
                                           start_time=worker.start_time, now=now_rfc3339(),
                                           node_stopped=worker.node_stopped)

        try:
            stored = self.registry.update_status("Pod", worker.namespace, worker.name, fn)  # type: ignore[attr-defined]
            if stored["metadata"].get("uid") == worker.uid:
                worker.pod["status"] = stored.get("status")
        except NotFound:
            pass
        except KubesvcError as e:
            log.warning("status not written", extra={"kv": {"pod": worker.name, "error": str(e)}})

    def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        self.recorder.event(pod, type_, reason, message)

    def log_path(self, worker: PodWorker, container: str, restart: int) -> Path:
        return logs.log_path(self.opts.store_path, worker.pod, container, restart)

    def record_path(self, worker: PodWorker, container: str) -> Path:
        return tracking.record_path(logs.pod_dir(self.opts.store_path, worker.pod) / container)

    def wrap_argv(self, worker: PodWorker, ident: identity.Identity, mounts: list[volumes.Mount] | None = None,
                  low_ports: bool = False) -> list[str]:
        """The argv prefix of a container's processes. Loopback: none, or ``setpriv`` granting
        CAP_NET_BIND_SERVICE for a native web server on a port below 1024. netns: ``ip netns exec`` (which
        needs root), the mounts (volumes, resolv.conf), then ``setpriv`` to change to another user."""
        if self.netns is None:
            setpriv = self._setpriv()
            if low_ports and ident.switch and setpriv and os.geteuid() == 0:
                return ident.setpriv_argv(setpriv, caps=True)
            return []
        from kubesvc.dataplane.kubelet.netns import mount_prefix

        binds = [(m.source, m.target, m.read_only) for m in mounts or []]
        prefix = mount_prefix(binds, self.resolv_conf(worker), str(self.pod_dir(worker)))
        return list(self.netns.wrap(worker.uid, prefix + ident.setpriv_argv(self.netns.setpriv())))

    def user_kwargs(self, ident: identity.Identity, wrapped: bool = False) -> dict[str, Any]:
        """How Popen changes to the container's user; none when setpriv does (netns mode, or capabilities)."""
        return {} if self.netns is not None or wrapped else ident.popen_kwargs()

    async def spawn(self, argv: list[str], log_file: Path, *, env: dict[str, str], cwd: str, stdin: int | None = None,
                    tty: int | None = None, **kw: Any) -> asyncio.subprocess.Process:
        """Start one container process: its own session, output appended to its private log file, stdin
        ``stdin`` (a descriptor: its attach FIFO) or /dev/null; or, with ``tty`` (the terminal end of the pty
        ``execs.Tty`` keeps), that terminal as stdin, stdout and stderr (the Tty copies its output to the log)."""
        if tty is not None:
            return await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, stdin=tty, stdout=tty, stderr=tty,
                                                        start_new_session=True, **kw)
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            return await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin, stdout=fd,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, **kw)
        finally:
            os.close(fd)

    async def prepare_network(self, worker: PodWorker, adopted: bool = False) -> str:
        loopback_ip = (worker.pod.get("status") or {}).get("podIP", "")
        if self.netns is None:
            return str(loopback_ip)
        if self.relay is None:
            from kubesvc.dataplane.kubelet.dnsrelay import Relay
            from kubesvc.dataplane.kubelet.netns import GATEWAY

            self.relay = Relay(GATEWAY, 53, self.cluster_dns)
            try:
                await self.relay.start()
            except OSError as e:
                log.warning("dns relay not started", extra={"kv": {"error": str(e)}})
        if adopted:
            return str(await asyncio.to_thread(self.netns.adopt, worker.uid, loopback_ip))
        return str(await asyncio.to_thread(self.netns.setup, worker.uid, loopback_ip))

    async def release_network(self, worker: PodWorker) -> None:
        if self.netns is not None:
            await asyncio.to_thread(self.netns.teardown, worker.uid)
