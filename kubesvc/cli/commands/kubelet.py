"""`kubesvc kubelet`: run Pods that have a command as local processes, plus the replica controllers."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option


def kubelet(
    node_name: Annotated[str, Opt("--node-name", help="Name of this node (spec.nodeName of the pods it runs).")] = "kubesvc-node",
    isolation: Annotated[str, Opt("--isolation", help="loopback (default): pods share the host network on 127.244.0.0/16 addresses; netns (root): one network namespace and veth per pod.")] = "loopback",
    pod_cidr: Annotated[str, Opt("--pod-cidr", help="Pod addresses in netns mode (low 16 bits of the allocated pod IP).")] = "10.244.0.0/16",
    restart_backoff: Annotated[float, Opt("--restart-backoff", help="First crash-loop back-off in seconds (doubles per crash).")] = 10.0,
    max_restart_backoff: Annotated[float, Opt("--max-restart-backoff", help="Back-off cap in seconds.")] = 300.0,
    sync_period: Annotated[float, Opt("--sync-period", help="Full resync at least this often, in seconds.")] = 1.0,
    controllers: Annotated[bool, Opt("--controllers/--no-controllers", help="Also run the ReplicationController, ReplicaSet and Deployment controllers.")] = True,
    workdir: Annotated[str | None, Opt("--workdir", help="Working directory of containers without workingDir (default: the current one).")] = None,
    run_as_root: Annotated[bool, Opt("--run-as-root", help="When the kubelet runs as root: run containers without securityContext.runAsUser as root (default: as nobody, uid 65534).")] = False,
    cluster_dns: Annotated[str, Opt("--cluster-dns", help="HOST[:PORT] of the cluster DNS that netns pods reach through 169.254.1.1 (default: the kube-dns Service's cluster IP, port 53).")] = "",
    healthz_bind_address: Annotated[str | None, Opt("--healthz-bind-address", help="ADDR:PORT of /healthz (200, or 503 naming what fails: following the store, the controllers); port 0 picks one, \"\" disables. Default 127.0.0.1:10248 (a free port when taken: see the ready line).")] = None,
    verbose: Annotated[int, Opt("--verbose", "-v", count=True, help="More logs on stderr.")] = 0,
    store: StoreOpt = None,
) -> None:
    """Run the node agent in the foreground: pods with a command become local process groups."""
    from kubesvc.dataplane.kubelet import node, server

    if isolation not in ("loopback", "netns"):
        raise ClientError(f'invalid --isolation "{isolation}": must be loopback or netns')
    if restart_backoff < 0 or max_restart_backoff < restart_backoff:
        raise ClientError("invalid back-off: need 0 <= --restart-backoff <= --max-restart-backoff")
    if sync_period <= 0:
        raise ClientError(f"invalid --sync-period {sync_period}: must be > 0")
    if cluster_dns:
        host, sep, port = cluster_dns.rpartition(":")
        if sep and (not host or not port.isdigit() or not 0 < int(port) < 65536):
            raise ClientError(f'invalid --cluster-dns "{cluster_dns}": want HOST or HOST:PORT')
    opts = node.KubeletOptions(
        store_path=common.store_path(store), node_name=node_name, isolation=isolation, pod_cidr=pod_cidr,
        backoff_base=restart_backoff, backoff_cap=max_restart_backoff, sync_period=sync_period,
        default_workdir=os.path.abspath(workdir or "."), controllers=controllers, verbosity=verbose,
        run_as_root=run_as_root, cluster_dns=cluster_dns, healthz_bind_address=healthz_bind_address,
    )
    if healthz_bind_address:
        from kubesvc.dataplane import runtime

        runtime.parse_address(healthz_bind_address, "--healthz-bind-address", server.HEALTHZ_DEFAULT, allow_empty=True)
    code = server.run(opts)
    if code:
        raise common.Exit(code)
