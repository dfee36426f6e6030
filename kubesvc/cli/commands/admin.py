"""`kubesvc version` and `kubesvc init` (cluster settings, before first use)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import OutputOpt, StoreOpt
from kubesvc.errors import ClientError

KUBERNETES_VERSION = "v1.32.0"


def version(output: OutputOpt = None, client: Annotated[bool, typer.Option("--client", help="Client version only.")] = False) -> None:
    """Print the kubesvc version and the Kubernetes API version it follows."""
    from kubesvc import __version__

    info = {"clientVersion": {"gitVersion": f"v{__version__}", "kubernetesVersion": KUBERNETES_VERSION}}
    if output == "json":
        common.out(json.dumps(info, indent=2) + "\n")
    elif output == "yaml":
        from kubesvc.api.manifests import to_yaml

        common.out(to_yaml(info))
    elif output:
        raise ClientError("--output must be 'yaml' or 'json'")
    else:
        common.out(f"Client Version: v{__version__}\nKubernetes API: {KUBERNETES_VERSION}\n")


def init(
    service_cluster_ip_range: Annotated[str | None, typer.Option("--service-cluster-ip-range", help="CIDR for cluster IPs (default 127.96.0.0/12).")] = None,
    service_node_port_range: Annotated[str | None, typer.Option("--service-node-port-range", help="NodePort range (default 30000-32767).")] = None,
    load_balancer_ip_pool: Annotated[str | None, typer.Option("--load-balancer-ip-pool", help="CIDR for LoadBalancer addresses (default 127.240.0.0/16).")] = None,
    pod_ip_range: Annotated[str | None, typer.Option("--pod-ip-range", help="CIDR for pod IPs (default 127.244.0.0/16).")] = None,
    cluster_domain: Annotated[str | None, typer.Option("--cluster-domain", help="Cluster DNS domain (default cluster.local).")] = None,
    store: StoreOpt = None,
) -> None:
    """Create the store (if needed) and set the cluster settings; ranges only change before first use."""
    import dataclasses
    import ipaddress

    reg = common.registry(store)
    current = reg.store.settings()
    given = {
        "service_cluster_ip_range": service_cluster_ip_range,
        "service_node_port_range": service_node_port_range,
        "load_balancer_ip_pool": load_balancer_ip_pool,
        "pod_ip_range": pod_ip_range,
        "cluster_domain": cluster_domain,
    }
    changes: dict[str, str] = {k: v for k, v in given.items() if v is not None and v != getattr(current, k)}
    for key in ("service_cluster_ip_range", "load_balancer_ip_pool", "pod_ip_range"):
        if key in changes:
            try:
                net = ipaddress.ip_network(changes[key], strict=False)
            except ValueError:
                raise ClientError(f"--{key.replace('_', '-')}: invalid CIDR {changes[key]!r}") from None
            if net.version != 4:
                raise ClientError(f"--{key.replace('_', '-')}: only IPv4 ranges are supported")
            changes[key] = str(net)
    if "service_node_port_range" in changes:
        lo, sep, hi = changes["service_node_port_range"].partition("-")
        if not (sep and lo.isdigit() and hi.isdigit() and 1 <= int(lo) <= int(hi) <= 65535):
            raise ClientError(f"--service-node-port-range: invalid port range {changes['service_node_port_range']!r} (want e.g. 30000-32767)")
    if changes:
        if not reg.store.set_settings(dataclasses.replace(current, **changes), before_first_use=True):
            raise ClientError("the store already holds allocated addresses; cluster settings can only be changed before first use (delete the Services and Pods, or use a new --store)")
    s = reg.store.settings()
    common.out(
        f"store: {reg.store.path}\n"
        f"service-cluster-ip-range: {s.service_cluster_ip_range}\n"
        f"service-node-port-range: {s.service_node_port_range}\n"
        f"load-balancer-ip-pool: {s.load_balancer_ip_pool}\n"
        f"pod-ip-range: {s.pod_ip_range}\n"
        f"cluster-domain: {s.cluster_domain}\n"
    )
