"""`kubesvc scale` and `kubesvc rollout status|restart|undo`: thin flag parsing around
kubesvc.dataplane.kubelet.rollout."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option
Arg = typer.Argument


def _target(args: list[str], verb: str) -> tuple[str, str]:
    """``TYPE/NAME`` or ``TYPE NAME`` -> (Kind, name)."""
    from kubesvc.api.kinds import resolve

    if len(args) == 1 and "/" in args[0]:
        word, name = args[0].split("/", 1)
    elif len(args) == 2:
        word, name = args
    else:
        raise ClientError(f"you must specify the type of resource and its name, e.g. `kubesvc {verb} deployment/web`")
    return resolve(word).kind, name


def scale(
    target: Annotated[list[str] | None, Arg(help="TYPE NAME..., TYPE/NAME... (deployment, replicaset, statefulset, replicationcontroller).")] = None,
    filename: common.FilenameOpt = None,
    recursive: common.RecursiveOpt = False,
    replicas: Annotated[int, Opt("--replicas", help="The new desired number of replicas. Required.")] = -1,
    current_replicas: Annotated[int, Opt("--current-replicas", help="Precondition for current size. Requires that the current size of the resource match this value in order to scale. -1 (default) for no condition.")] = -1,
    resource_version: Annotated[str, Opt("--resource-version", help="Precondition for resource version. Requires that the current resource version match this value in order to scale.")] = "",
    namespace: NamespaceOpt = None,
    output: common.OutputOpt = None,
    dry_run: common.DryRunOpt = "none",
    store: StoreOpt = None,
) -> None:
    """Set a new size for a deployment, replica set, stateful set or replication controller (kubesvc.registry.scale)."""
    import copy

    from kubesvc.api.kinds import BY_KIND
    from kubesvc.errors import NotFound
    from kubesvc.registry import scale as scalelib

    if replicas < 0:
        raise ClientError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    ns, explicit = common.namespace(namespace)
    refs: list[tuple[str, str, str]] = []  # (kind, namespace, name), in the order given
    if filename:
        from kubesvc.cli import resources

        for item in resources.load(filename, recursive, ns, explicit, "scale"):
            meta = item.obj.get("metadata") or {}
            refs.append((item.obj["kind"], meta.get("namespace") or ns, meta.get("name", "")))
    elif target and (len(target) == 1 and "/" not in target[0]):
        _target(target, "scale")  # TYPE alone: the usage error
    elif target:
        from kubesvc.cli.commands.get import parse_targets

        for kind, names in parse_targets(target):
            refs.extend((kind, ns, n) for n in names or [])
    if not refs:
        raise ClientError("you must specify the type of resource and its name, e.g. `kubesvc scale deployment/web`")
    for kind, where, name in refs:
        try:
            if mode == "client":  # kubectl reads the object, checks nothing and writes nothing
                obj = copy.deepcopy(common.read_object(common.read_registry(store), kind, where, name))
            else:
                obj = scalelib.scale(common.registry(store), kind, where, name, replicas, current=current_replicas,
                                     resource_version=resource_version, dry_run=mode == "server")
        except NotFound as e:
            raise ClientError(f"no objects passed to scale {e}") from None
        if out_fmt:
            common.print_objects([obj], out_fmt, True)
        else:
            common.out(f"{BY_KIND[kind].type_name}/{name} scaled{common.dry_run_suffix(mode)}\n")


rollout = typer.Typer(help="Manage the rollout of a deployment: status, restart, undo.", no_args_is_help=True)


def _deployment(target: list[str], verb: str) -> str:
    kind, name = _target(target, f"rollout {verb}")
    if kind != "Deployment":
        raise ClientError(f"no {verb} rollout for {kind}: kubesvc rolls out deployments only")
    return name


@rollout.command("status")
def rollout_status(
    target: Annotated[list[str], Arg(help="deployment/NAME or deployment NAME.")],
    watch: Annotated[bool, Opt("--watch/--no-watch", "-w", help="Watch the rollout until it is done.")] = True,
    timeout: Annotated[str, Opt("--timeout", help="How long to wait before giving up, e.g. 60s or 2m (0: forever).")] = "0",
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Show the status of the rollout, waiting for it to finish."""
    from kubesvc.dataplane.kubelet import rollout as ops

    name = _deployment(target, "status")
    ns, _ = common.namespace(namespace)

    def write(text: str) -> None:
        common.out(text)
        sys.stdout.flush()

    ops.status(common.registry(store), ns, name, watch=watch, timeout=common.parse_timeout(timeout), write=write)


@rollout.command("restart")
def rollout_restart(
    target: Annotated[list[str], Arg(help="deployment/NAME or deployment NAME.")],
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Restart a deployment's pods with a rolling update."""
    from kubesvc.dataplane.kubelet import rollout as ops

    name = _deployment(target, "restart")
    ns, _ = common.namespace(namespace)
    common.out(ops.restart(common.registry(store), ns, name))


@rollout.command("undo")
def rollout_undo(
    target: Annotated[list[str], Arg(help="deployment/NAME or deployment NAME.")],
    to_revision: Annotated[int, Opt("--to-revision", help="The revision to roll back to (default: the previous one).")] = 0,
    output: common.OutputOpt = None,
    dry_run: common.DryRunOpt = "none",
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Roll a deployment back to a previous revision."""
    from kubesvc.dataplane.kubelet import rollout as ops

    name = _deployment(target, "undo")
    ns, _ = common.namespace(namespace)
    mode, out_fmt = common.dry_run_mode(dry_run), common.check_output(output)
    if mode == "none":
        text = ops.undo(common.registry(store), ns, name, to_revision)
        common.out(f"deployment.apps/{name}\n" if out_fmt == "name" else text)
        return
    # a dry run: kubectl finds the revision, then (client) prints its pod template or (server) says rolled back
    reg = common.registry(store)
    rs = _undo_target(reg, ns, name, to_revision)
    if out_fmt == "name":
        common.out(f"deployment.apps/{name}\n")
    elif mode == "server":
        common.out(f"deployment.apps/{name} rolled back (server dry run)\n")
    else:
        common.out(f"deployment.apps/{name} {_template_text(rs)} (dry run)\n")


def _undo_target(reg: object, ns: str, name: str, to_revision: int) -> dict:
    """The ReplicaSet `rollout undo` goes back to, with kubectl's errors (as dataplane.kubelet.rollout.undo)."""
    history = _history(reg, ns, name)
    if to_revision:
        if to_revision not in history:
            raise ClientError(f"unable to find specified revision {to_revision} in history")
        return history[to_revision]
    if len(history) < 2:  # kubectl: the second-highest revision
        raise ClientError(f'no rollout history found for deployment "{name}"')
    return history[sorted(history)[-2]]


def _template_text(rs: dict) -> str:
    """A ReplicaSet's pod template as kubectl's printTemplate prints it (describe's lines, no tabwriter)."""
    from kubesvc.cli.describe import _Writer
    from kubesvc.cli.describe_workloads import _pod_template

    w = _Writer()
    _pod_template(w, (rs.get("spec") or {}).get("template") or {})
    return "".join(w.parts)


# ------------------------------------------------------------------------ rollout history|pause|resume

CHANGE_CAUSE = "kubernetes.io/change-cause"


def _history(reg: object, ns: str, name: str) -> dict[int, dict]:
    """revision -> ReplicaSet owned by the Deployment (kubectl's DeploymentHistoryViewer)."""
    from kubesvc.controllers import replicas as rp

    deploy = reg.get("Deployment", ns, name)  # type: ignore[attr-defined]
    out: dict[int, dict] = {}
    for rs in reg.list("ReplicaSet", ns):  # type: ignore[attr-defined]
        if rp.owned(rs, deploy):
            rev = rp.revision_of(rs)
            out.setdefault(rev, rs)
    return out


def history_text(ref: str, history: dict[int, dict], revision: int) -> str:
    """``rollout history``'s text: the REVISION/CHANGE-CAUSE table, or one revision's pod template."""
    import copy

    from kubesvc.cli.describe import _Writer
    from kubesvc.cli.describe_workloads import _pod_template
    from kubesvc.cli.printers import tabwrite

    if revision > 0:
        rs = history.get(revision)
        if rs is None:
            raise ClientError("unable to find the specified revision")
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        cause = (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
        if cause is not None:
            template.setdefault("metadata", {}).setdefault("annotations", {})[CHANGE_CAUSE] = cause
        w = _Writer()
        _pod_template(w, template)
        return f"{ref} with revision #{revision}\n" + "".join(w.parts) + "\n"
    if not history:
        return f"{ref} \nNo rollout history found.\n"
    rows = "REVISION\tCHANGE-CAUSE\n" + "".join(
        f"{rev}\t{(rs['metadata'].get('annotations') or {}).get(CHANGE_CAUSE) or '<none>'}\n"
        for rev, rs in sorted(history.items()))
    return f"{ref} \n" + tabwrite(rows, minwidth=0, padding=2) + "\n"


@rollout.command("history")
def rollout_history(
    target: Annotated[list[str], Arg(help="deployment/NAME or deployment NAME.")],
    revision: Annotated[int, Opt("--revision", help="See the details, including podTemplate of the revision specified")] = 0,
    output: common.OutputOpt = None,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """View previous rollout revisions and configurations."""
    kind, name = _target(target, "rollout history")
    out_fmt = common.check_output(output)
    ns, _ = common.namespace(namespace)
    reg = common.registry(store)
    if kind != "Deployment":
        reg.get(kind, ns, name)  # kubectl reads the object first: a missing one is NotFound
        raise ClientError(f'error retrieving history for "{kind}", no visitor method exists for {{ {kind}}}')
    history = _history(reg, ns, name)
    if out_fmt:
        if revision > 0:
            if revision not in history:
                raise ClientError("unable to find the specified revision")
            common.print_objects([history[revision]], out_fmt, True)
        else:
            common.print_objects([rs for _, rs in sorted(history.items())], out_fmt, False)
        return
    common.out(history_text(f"deployment.apps/{name}", history, revision))


def _pause(target: list[str], namespace: str | None, store: str | None, verb: str, paused: bool) -> None:
    name = _deployment(target, verb)
    ns, _ = common.namespace(namespace)
    reg = common.registry(store)
    obj = reg.get("Deployment", ns, name)
    if bool((obj.get("spec") or {}).get("paused")) == paused:
        raise ClientError(f'deployments.apps "{name}" is {"already paused" if paused else "not paused"}')

    def fn(o: dict) -> None:
        if paused:
            o.setdefault("spec", {})["paused"] = True
        else:
            o.setdefault("spec", {}).pop("paused", None)

    reg.mutate("Deployment", ns, name, fn, manager="kubectl-rollout")
    common.out(f"deployment.apps/{name} {'paused' if paused else 'resumed'}\n")


@rollout.command("pause")
def rollout_pause(
    target: Annotated[list[str], Arg(help="deployment/NAME or deployment NAME.")],
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Mark the provided resource as paused: changes to its template start no rollout until it is resumed."""
    _pause(target, namespace, store, "pause", True)


@rollout.command("resume")
def rollout_resume(
    target: Annotated[list[str], Arg(help="deployment/NAME or deployment NAME.")],
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Resume a paused resource."""
    _pause(target, namespace, store, "resume", False)
