"""`kubesvc kubelet`: the node agent's foreground loop.

Rules kept here:
- One agent per store: a lock file beside the store (``<store>.d/kubelet.lock``); a second agent
  exits with a one-line error naming the first one's pid.
- Reconcile from the store, never per event: whenever the store moves (``runtime.StoreFollower``, polled every
  50 ms) and at least every ``sync_period``, sync the pods this node runs, then the replica controllers; a
  failed pass is logged with its cause and retried with back-off (supervised).
- Ready line: ``kubesvc kubelet ready node=<name> isolation=<mode> pods=<dir>``, once the first
  sync is done.
- SIGTERM/SIGINT: stop every pod it runs (SIGTERM, grace period, SIGKILL; statuses written as not
  ready), then exit 0.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from typing import IO

from kubesvc.dataplane import runtime
from kubesvc.dataplane.kubelet import logs
from kubesvc.dataplane.kubelet.controllers import Controllers
from kubesvc.dataplane.kubelet.node import KubeletOptions, Node
from kubesvc.errors import ClientError

log = logging.getLogger("kubesvc.kubelet")

HEALTHZ_DEFAULT = "127.0.0.1:10248"  # the kubelet's own healthz port


def _lock(store_path: str, node_name: str = "kubesvc-node") -> IO[str]:
    d = logs.pods_dir(store_path).parent
    d.mkdir(parents=True, exist_ok=True)
    # one agent per node of a store (`up --nodes N` runs one per node)
    f = open(d / ("kubelet.lock" if node_name == "kubesvc-node" else f"kubelet-{node_name}.lock"), "a+")  # noqa: SIM115 (held open: the lock lives as long as the agent)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        other = f.read().strip() or "?"
        f.close()
        raise ClientError(f"another kubesvc kubelet (pid {other}) is running on this store") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def run(opts: KubeletOptions) -> int:
    if not os.path.exists(opts.store_path):
        raise ClientError(f"store {opts.store_path} does not exist (run `kubesvc init` or create an object first)")
    if opts.isolation == "netns":
        from kubesvc.dataplane.kubelet import netns

        netns.check_available()
    runtime.setup_logging(opts.verbosity)
    lock = _lock(opts.store_path, opts.node_name)
    try:
        return runtime.run(lambda stop: _main(stop, opts))
    finally:
        lock.close()


async def _main(stop: asyncio.Event, opts: KubeletOptions) -> int:
    node = Node(opts)
    ctrl = Controllers(node.registry, opts.node_name) if opts.controllers else None
    health = runtime.Health()
    health_srv = None

    async def sync_pods(_probe: object) -> None:
        node.sync_pods()  # a failure goes to the supervisor: logged with its cause, retried with back-off

    async def sync_controllers(_probe: object) -> None:
        assert ctrl is not None
        ctrl.sync()

    try:
        health_srv, health_addr = await runtime.serve_health(opts.healthz_bind_address, HEALTHZ_DEFAULT, "--healthz-bind-address",
                                                             "kubelet", health, logger=log)
        _sync(node, ctrl)
        runtime.announce_ready("kubelet", {"node": opts.node_name, "isolation": opts.isolation,
                                           "pods": str(logs.pods_dir(opts.store_path)),
                                           **({"healthz": health_addr} if health_addr else {})})
        log.info("kubelet started", extra={"kv": {"node": opts.node_name, "isolation": opts.isolation}})
        # the node's pods and the controllers follow the store as two supervised tasks: /healthz names the one
        # failing ("store: ..." or "controllers: ..."), and a failing controller does not stop the pods' sync
        loop = asyncio.get_running_loop()
        following = [loop.create_task(runtime.StoreFollower(opts.store_path, 0.05, sync_pods, health, period=opts.sync_period,
                                                            logger=log).run())]
        if ctrl is not None:
            following.append(loop.create_task(runtime.StoreFollower(opts.store_path, 0.05, sync_controllers, health,
                                                                    period=opts.sync_period, logger=log,
                                                                    task="controllers").run()))
        try:
            await stop.wait()
        finally:
            for t in following:
                t.cancel()
            await asyncio.gather(*following, return_exceptions=True)
    finally:
        if health_srv is not None:
            health_srv.close()
        await node.shutdown()
        log.info("kubelet stopped")
    return 0


def _sync(node: Node, ctrl: Controllers | None) -> None:
    # A node agent must outlive a transient store error (a busy database, a racing delete): log it
    # and let the next pass retry from a fresh read.
    try:
        node.sync_pods()
        if ctrl is not None:
            ctrl.sync()
    except Exception as e:  # noqa: BLE001
        log.warning("sync failed", extra={"kv": {"error": f"{e.__class__.__name__}: {e}"}})
