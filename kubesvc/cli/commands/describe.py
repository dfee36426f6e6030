"""`kubesvc describe TYPE [NAME...]`: kubectl's describe layouts, with related Endpoints and Events."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, Failure, NamespaceOpt, SelectorOpt, StoreOpt
from kubesvc.errors import KubesvcError, NotFound


def describe(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE [NAME_PREFIX...] or TYPE/NAME")] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    selector: SelectorOpt = None,
    show_events_flag: Annotated[str, typer.Option("--show-events", help="true (default) or false: show events.")] = "true",
    store: StoreOpt = None,
) -> None:
    """Show details of a specific resource or group of resources."""
    from kubesvc.api import selectors
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli import describe as describers
    from kubesvc.cli.commands.get import parse_targets

    targets = parse_targets(args or [])
    show_events = common.parse_bool("--show-events", show_events_flag)
    ns, _ = common.namespace(namespace)
    reg = common.registry(store)
    sel = selectors.parse(selector) if selector else None
    objs: list[dict[str, Any]] = []
    failures: list[Failure] = []
    for kind, names in targets:
        k = BY_KIND[kind]
        scope = None if (all_namespaces or not k.namespaced) else ns
        if names:
            for n in names:
                try:
                    objs.append(reg.get(kind, ns, n))
                except NotFound as e:
                    # kubectl describe treats a name as a prefix when no exact match exists
                    matches = [o for o in reg.list(kind, scope) if o["metadata"]["name"].startswith(n)]
                    if matches:
                        objs.extend(matches)
                    else:
                        failures.append(Failure(e))
        else:
            objs.extend(reg.list(kind, scope, sel))
    events = reg.list("Event", None) if show_events else []

    def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return reg.get(kind, namespace, name)
        except KubesvcError:
            return None

    texts = []
    for o in objs:
        mine = [e for e in events if _involves(e, o)] if show_events else None
        pods = reg.list("Pod", o["metadata"].get("namespace")) if o["kind"] in ("ReplicaSet", "ReplicationController", "Deployment") else ()
        slices = None
        if o["kind"] == "Service":  # kubectl reads the Service's EndpointSlices, by label
            slices = [s for s in reg.list("EndpointSlice", o["metadata"].get("namespace"))
                      if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == o["metadata"]["name"]]
        texts.append(describers.describe(o, lookup=lookup, events=mine, now=common.now(), pods=pods, endpoint_slices=slices))
    if texts:
        common.out(describers.join_descriptions(texts))
    elif not failures:
        import sys

        sys.stderr.write(f"No resources found in {ns} namespace.\n")
    if failures:
        common.print_failures(failures)
        raise Exit(1)


def _involves(event: dict[str, Any], obj: dict[str, Any]) -> bool:
    ref = event.get("involvedObject") or {}
    m = obj["metadata"]
    if ref.get("uid") and m.get("uid"):
        return ref["uid"] == m["uid"]
    return ref.get("kind") == obj["kind"] and ref.get("name") == m["name"] and ref.get("namespace", "") == m.get("namespace", "")

