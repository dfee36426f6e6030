"""`kubesvc delete`: by TYPE NAME..., TYPE/NAME, -f, -l or --all; prints `service "web" deleted`.

kubectl's deletion flags: ``--wait`` (default true: return once the object is gone), ``--now`` (grace period 1),
``--force`` (kubectl's immediate-deletion warning, ``force deleted``; grace period 0 unless given), ``--grace-period``
(the DeleteOptions' gracePeriodSeconds: a Pod a live kubelet runs is Terminating that long at most; 0 without
``--force`` means 1, as kubectl), ``--cascade=background|foreground|orphan`` (orphan keeps the dependents and drops their
ownerReferences to the deleted owner; foreground ends as background, in one transaction), ``--timeout``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, Failure, FilenameOpt, NamespaceOpt, RecursiveOpt, SelectorOpt, StoreOpt
from kubesvc.errors import ClientError, KubesvcError, NotFound


def delete(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE NAME... or TYPE/NAME...")] = None,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    selector: SelectorOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Delete all resources of the given types in the namespace.")] = False,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="With --all or -l: across all namespaces.")] = False,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found", help="Treat 'resource not found' as a successful delete.")] = False,
    dry_run: common.DryRunOpt = "none",
    output: common.OutputOpt = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="If true, wait for resources to be gone before returning.")] = True,
    now: Annotated[bool, typer.Option("--now", help="If true, resources are signaled for immediate shutdown (same as --grace-period=1).")] = False,
    force: Annotated[bool, typer.Option("--force", help="If true, immediately remove resources from API and bypass graceful deletion.")] = False,
    grace_period: Annotated[int, typer.Option("--grace-period", help="Period of time in seconds given to the resource to terminate gracefully. Ignored if negative.")] = -1,
    cascade: Annotated[str, typer.Option("--cascade", help='Must be "background", "orphan", or "foreground". Defaults to background.')] = "background",
    timeout: Annotated[str, typer.Option("--timeout", help="The length of time to wait before giving up on a delete, zero means determine a timeout from the size of the object")] = "0s",
    store: StoreOpt = None,
) -> None:
    """Delete resources by file names, stdin, resources and names, or by resources and label selector."""
    from kubesvc.api import selectors
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli.commands.get import parse_targets

    propagation = _propagation(cascade)
    if now and grace_period != -1:
        raise ClientError("--now and --grace-period cannot be specified together")
    if force and grace_period > 0:
        raise ClientError("--force and --grace-period greater than 0 cannot be specified together")
    wait_for = common.parse_timeout(timeout) if timeout else 0.0
    grace: int | None = 1 if now else (grace_period if grace_period >= 0 else None)
    if grace == 0 and not force:
        grace = 1  # kubectl: --grace-period=0 without --force means 1
    if force and grace is None:
        grace = 0
    if force:
        import sys

        sys.stderr.write("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
                         "terminated. The resource may continue to run on the cluster indefinitely.\n")
    mode = common.dry_run_mode(dry_run)
    if output and output != "name":
        raise ClientError(f"unexpected -o output mode: {output}. We only support '-o name'")
    out_fmt = output or ""
    ns, explicit = common.namespace(namespace)
    # --dry-run=client deletes by name without asking the store, as kubectl does; -l and --all still list
    # what they match (from the store as it is; a missing store is not created)
    client = mode == "client"
    reg = None if client else common.registry(store)
    work: list[tuple[str, str, str, str]] = []  # kind, namespace, name, context
    if filename:
        from kubesvc.cli import resources

        if args:
            raise ClientError("when paths, URLs, or stdin is provided as input, you may not specify resource arguments as well")
        for item in resources.load(filename, recursive, ns, explicit, "delete"):
            work.append((item.kind.kind, item.namespace, item.name, f'error when deleting "{item.source}": '))
    else:
        if not args:
            raise ClientError("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
        targets = parse_targets(args)
        sel = selectors.parse(selector) if selector else None
        for kind, names in targets:
            if names:
                work.extend((kind, ns, n, "") for n in names)
            elif all_ or sel is not None:
                scope = None if (all_namespaces or not BY_KIND[kind].namespaced) else ns
                lister = common.read_registry(store) if client else reg
                work.extend((kind, o["metadata"].get("namespace", ""), o["metadata"]["name"], "")
                            for o in (lister.list(kind, scope, sel) if lister is not None else []))
            else:
                raise ClientError('resource(s) were provided, but no name was specified')
    failures: list[Failure] = []
    deleted = 0
    suffix = common.dry_run_suffix(mode)
    for kind, obj_ns, name, context in work:
        try:
            if reg is None:  # --dry-run=client
                obj: dict[str, Any] = {"metadata": {"name": name}}
            else:
                obj = reg.delete(kind, obj_ns, name, dry_run=mode != "none", propagation=propagation, grace_period=grace)
        except NotFound as e:
            if not ignore_not_found:
                failures.append(Failure(e, context))
            continue
        except KubesvcError as e:
            failures.append(Failure(e, context))
            continue
        deleted += 1
        k = BY_KIND[kind]
        if wait and reg is not None and mode == "none":
            _wait_gone(reg, kind, obj_ns, name, wait_for)
        if out_fmt == "name":
            common.out(f"{k.type_name}/{name}\n")
        else:
            verb = "force deleted" if force else "deleted"
            common.out(f'{k.type_name} "{obj["metadata"]["name"]}" {verb}{suffix}\n')
    if not work and not failures and not filename:
        import sys

        sys.stderr.write("No resources found\n")
    if failures:
        common.print_failures(failures)
        raise Exit(1)


def _propagation(cascade: str) -> str:
    """kubectl's --cascade values (true/false are the deprecated spellings of background/orphan)."""
    value = {"true": "background", "false": "orphan"}.get(cascade, cascade)
    if value not in ("background", "foreground", "orphan"):
        raise ClientError(f'invalid cascade value ({cascade}). Must be "background", "foreground", or "orphan"')
    return value.capitalize()


def _wait_gone(reg: Any, kind: str, namespace: str, name: str, timeout: float) -> None:
    """--wait: until the object is gone from the store (a Terminating pod: once its kubelet stopped it), then
    kubectl's wait-for-deletion error if ``timeout`` (when set) passes first."""
    import time

    from kubesvc.api.kinds import BY_KIND

    k = BY_KIND[kind]
    deadline = time.monotonic() + (timeout if timeout > 0 else 3600.0)
    while reg.store.get(kind, namespace if k.namespaced else "", name) is not None:
        if time.monotonic() >= deadline:
            raise ClientError(f"timed out waiting for the condition on {k.resource}/{name}")
        reg.store.wait_for_change(reg.store.revision(), 0.5, interval=0.05)
