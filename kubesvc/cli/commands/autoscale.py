"""`kubesvc autoscale`: a HorizontalPodAutoscaler for a deployment, replica set, stateful set or replication
controller, as kubectl autoscale generates it (kubectl 1.32: an autoscaling/v1 object; stored as autoscaling/v2,
kubesvc.apiserver.versions converts).

Rules kept here (kubectl's autoscale.go):
- The target is read first (``Error from server (NotFound)`` when missing); a kind without a scale subresource
  is refused with kubectl's words. The HPA is named after the target unless ``--name``.
- ``--max`` is required and at least 1 and not below ``--min``; ``--min`` and ``--cpu-percent`` are set only
  when given (the server then defaults minReplicas to 1 and the target to 80 % CPU).
- Prints ``horizontalpodautoscaler.autoscaling/NAME autoscaled`` (with the dry-run suffix), or the v1 object
  with ``-o``. Nothing runs the autoscaler: the object is stored and listed, replicas are not changed.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import FilenameOpt, NamespaceOpt, OutputOpt, RecursiveOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option


def generate(target: dict[str, Any], name: str, min_replicas: int, max_replicas: int, cpu_percent: int) -> dict[str, Any]:
    """The autoscaling/v1 HorizontalPodAutoscaler kubectl builds (HPAGeneratorV1), field order kept."""
    spec: dict[str, Any] = {"scaleTargetRef": {"kind": target["kind"], "name": target["metadata"]["name"],
                                               "apiVersion": target.get("apiVersion", "")}}
    if min_replicas > 0:
        spec["minReplicas"] = min_replicas
    spec["maxReplicas"] = max_replicas
    if cpu_percent >= 0:
        spec["targetCPUUtilizationPercentage"] = cpu_percent
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "creationTimestamp": None}, "spec": spec,
            "status": {"currentReplicas": 0, "desiredReplicas": 0}}


def autoscale(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE NAME or TYPE/NAME (deployment, replicaset, statefulset, replicationcontroller).")] = None,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    min_replicas: Annotated[int, Opt("--min", help="The lower limit for the number of pods that can be set by the autoscaler. If it's not specified or negative, the server will apply a default value.")] = -1,
    max_replicas: Annotated[int | None, Opt("--max", help="The upper limit for the number of pods that can be set by the autoscaler. Required.")] = None,
    cpu_percent: Annotated[int, Opt("--cpu-percent", help="The target average CPU utilization (represented as a percent of requested CPU) over all the pods. If it's not specified or negative, a default autoscaling policy will be used.")] = -1,
    name: Annotated[str, Opt("--name", help="The name for the newly created object. If not specified, the name of the input resource will be used.")] = "",
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
    dry_run: common.DryRunOpt = "none",
    store: StoreOpt = None,
) -> None:
    """Create an autoscaler that automatically chooses and sets the number of pods of a workload."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.apiserver import versions
    from kubesvc.registry.scale import SCALABLE

    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    ns, explicit = common.namespace(namespace)
    if max_replicas is None:
        raise ClientError('required flag(s) "max" not set')
    if max_replicas < 1:
        raise ClientError(f"--max=MAXPODS is required and must be at least 1, max: {max_replicas}")
    if max_replicas < min_replicas:
        raise ClientError(f"--max=MAXPODS must be larger or equal to --min=MINPODS, max: {max_replicas}, min: {min_replicas}")
    targets: list[dict[str, Any]] = []
    if filename:
        from kubesvc.cli import resources

        targets = [i.obj for i in resources.load(filename, recursive, ns, explicit, "autoscale")]
    elif args:
        from kubesvc.cli.commands.get import parse_targets

        reg = common.read_registry(store) if mode == "client" else common.registry(store)
        for kind, names in parse_targets(args):
            if not names:
                raise ClientError("resource(s) were provided, but no name was specified")
            targets.extend(common.read_object(reg, kind, ns, n) for n in names)
    else:
        raise ClientError("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n"
                          "   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
    for target in targets:
        if target.get("kind") not in SCALABLE:
            k = BY_KIND[target["kind"]]
            raise ClientError(f"cannot autoscale a {k.kind}: could not find scale subresource for {k.api_version if k.group else '/' + k.version}, "
                              f"Resource={k.plural} in discovery information")
        hpa = generate(target, name or target["metadata"]["name"], min_replicas, max_replicas, cpu_percent)
        where = target["metadata"].get("namespace") or ns
        if mode == "client":
            if out_fmt:
                common.print_objects([hpa], out_fmt, True, typed=True)
            else:
                common.out(f"horizontalpodautoscaler.autoscaling/{hpa['metadata']['name']} autoscaled (dry run)\n")
            continue
        stored = versions.hpa_to_v2(hpa)
        stored["metadata"] = {"name": hpa["metadata"]["name"], "namespace": where}
        stored.pop("status", None)
        result = common.registry(store).create(stored, dry_run=mode == "server")
        if out_fmt:
            common.print_objects([versions.hpa_to_v1(result.object)], out_fmt, True)
        else:
            common.out(f"horizontalpodautoscaler.autoscaling/{hpa['metadata']['name']} autoscaled{common.dry_run_suffix(mode)}\n")

