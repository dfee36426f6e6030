"""`kubesvc expose`: a Service for a pod, service, rc, deployment or replicaset, as kubectl generates it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import FilenameOpt, NamespaceOpt, OutputOpt, RecursiveOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option


def expose(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE NAME or TYPE/NAME")] = None,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    port: Annotated[str | None, Opt("--port", help="The port(s) the service serves on (comma list).")] = None,
    target_port: Annotated[str | None, Opt("--target-port", help="Name or number of the port on the pods.")] = None,
    protocol: Annotated[str | None, Opt("--protocol", help="TCP, UDP or SCTP for all ports.")] = None,
    type_: Annotated[str | None, Opt("--type", help="ClusterIP, NodePort, LoadBalancer or ExternalName.")] = None,
    name: Annotated[str | None, Opt("--name", help="The name of the new Service.")] = None,
    selector: Annotated[str | None, Opt("--selector", help="k=v,... selector for the Service.")] = None,
    labels: Annotated[str | None, Opt("--labels", "-l", help="Labels for the Service.")] = None,
    session_affinity: Annotated[str | None, Opt("--session-affinity", help="None or ClientIP.")] = None,
    cluster_ip: Annotated[str | None, Opt("--cluster-ip", help="ClusterIP to use, or None for headless.")] = None,
    external_ip: Annotated[str | None, Opt("--external-ip", help="An external IP for the Service.")] = None,
    load_balancer_ip: Annotated[str | None, Opt("--load-balancer-ip", help="IP for a LoadBalancer Service.")] = None,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
    dry_run: common.DryRunOpt = "none",
    store: StoreOpt = None,
) -> None:
    """Expose a resource as a new Kubernetes Service."""
    from kubesvc.api import expose as exposelib
    from kubesvc.cli.commands.get import parse_targets

    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    ns, explicit = common.namespace(namespace)
    sources: list[dict[str, Any]] = []
    if filename:
        from kubesvc.cli import resources

        sources = [i.obj for i in resources.load(filename, recursive, ns, explicit, "expose")]
    elif args:
        # the sources are read, as kubectl GETs them; with --dry-run=client a missing store is not created
        reg = common.read_registry(store) if mode == "client" else common.registry(store)
        for kind, names in parse_targets(args):
            if not names:
                raise ClientError("resource(s) were provided, but no name was specified")
            sources.extend(common.read_object(reg, kind, ns, n) for n in names)
    else:
        raise ClientError(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n"
            "   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'"
        )
    opts = exposelib.ExposeOptions(
        port=port or "", target_port=target_port or "", protocol=protocol or "", type=type_ or "", name=name or "",
        selector=selector or "", labels=labels or "", session_affinity=session_affinity or "",
        cluster_ip=cluster_ip or "", external_ip=external_ip or "", load_balancer_ip=load_balancer_ip or "",
    )
    for src in sources:
        svc = exposelib.expose(src, opts)
        common.print_or_create(svc, src["metadata"].get("namespace") or ns, mode, out_fmt, "exposed", store,
                               explicit=explicit, manager="kubectl-expose")
