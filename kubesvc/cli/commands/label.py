"""`kubesvc label` and `kubesvc annotate`: KEY=VAL to set, KEY- to remove, --overwrite to replace."""

from __future__ import annotations

import copy
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, Failure, NamespaceOpt, SelectorOpt, StoreOpt
from kubesvc.errors import ClientError, KubesvcError


def _split(args: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """kubectl's split: resource words first, then KEY=VAL / KEY- pairs."""
    resources: list[str] = []
    sets: dict[str, str] = {}
    removes: list[str] = []
    for i, a in enumerate(args):
        if "=" in a or (a.endswith("-") and i > 0 and (resources and ("/" in resources[0] or len(resources) >= 2))):
            break
        resources.append(a)
    for a in args[len(resources):]:
        if "=" in a:
            k, _, v = a.partition("=")
            if not k or "=" in v:
                raise ClientError(f"invalid label spec: {a}")
            sets[k] = v
        elif a.endswith("-") and len(a) > 1:
            removes.append(a[:-1])
        else:
            raise ClientError(f"invalid label spec: {a}")
    for k in removes:
        if k in sets:
            raise ClientError(f"can not both modify and remove the following label(s) in the same command: {k}")
    return resources, sets, removes


def _run(field: str, verb: str, args: list[str], overwrite: bool, all_: bool, selector: str | None,
         namespace: str | None, dry_run: str, store: str | None, output: str | None = None) -> None:
    from kubesvc.api import selectors
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli.commands.get import parse_targets

    resources, sets, removes = _split(args)
    if not sets and not removes:
        raise ClientError(f"at least one {'label' if field == 'labels' else 'annotation'} update is required")
    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    ns, _ = common.namespace(namespace)
    # --dry-run=client reads the objects (kubectl GETs them) and writes nothing; a missing store stays missing
    reg = common.read_registry(store) if mode == "client" else common.registry(store)
    targets = parse_targets(resources)
    sel = selectors.parse(selector) if selector else None
    work: list[tuple[str, str]] = []
    for kind, names in targets:
        if names:
            work.extend((kind, n) for n in names)
        elif all_ or sel is not None:
            work.extend((kind, o["metadata"]["name"]) for o in (reg.list(kind, ns, sel) if reg is not None else []))
        else:
            raise ClientError("resource(s) were provided, but no name was specified")
    failures: list[Failure] = []
    for kind, name in work:
        changed = {"msg": ""}

        def mutate(obj: dict[str, Any], changed: dict[str, str] = changed) -> None:
            current = dict(obj["metadata"].get(field) or {})
            before = dict(current)
            for k, v in sets.items():
                if k in current and current[k] != v and not overwrite:
                    raise ClientError(f"'{k}' already has a value ({current[k]}), and --overwrite is false")
                current[k] = v
            for k in removes:
                current.pop(k, None)
            if current:
                obj["metadata"][field] = current
            else:
                obj["metadata"].pop(field, None)
            if current == before:
                changed["msg"] = f"not {verb}"
            elif field == "labels" and not overwrite and len(current) < len(before):
                changed["msg"] = "unlabeled"
            else:
                changed["msg"] = verb

        try:
            if mode == "client" or reg is None:
                result = copy.deepcopy(common.read_object(reg, kind, ns, name))
                mutate(result)
            else:
                result = reg.mutate(kind, ns, name, mutate, dry_run=mode != "none",
                                    manager="kubectl-label" if field == "labels" else "kubectl-annotate")
        except ClientError:
            raise
        except KubesvcError as e:
            failures.append(Failure(e))
            continue
        if out_fmt:
            common.print_objects([result], out_fmt, True)
            continue
        suffix = common.dry_run_suffix(mode)
        common.out(f"{BY_KIND[kind].type_name}/{name} {changed['msg']}{suffix}\n")
    if failures:
        common.print_failures(failures)
        raise Exit(1)


ArgsArg = Annotated[list[str], typer.Argument(help="TYPE NAME KEY_1=VAL_1 ... KEY_N=VAL_N (KEY- removes)")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Allow existing values to be overwritten.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Select all resources of the given types in the namespace.")]


def label(args: ArgsArg, overwrite: OverwriteOpt = False, all_: AllOpt = False, selector: SelectorOpt = None,
          namespace: NamespaceOpt = None, output: common.OutputOpt = None, dry_run: common.DryRunOpt = "none",
          store: StoreOpt = None) -> None:
    """Update the labels on a resource."""
    _run("labels", "labeled", args, overwrite, all_, selector, namespace, dry_run, store, output)


def annotate(args: ArgsArg, overwrite: OverwriteOpt = False, all_: AllOpt = False, selector: SelectorOpt = None,
             namespace: NamespaceOpt = None, output: common.OutputOpt = None, dry_run: common.DryRunOpt = "none",
             store: StoreOpt = None) -> None:
    """Update the annotations on a resource."""
    _run("annotations", "annotated", args, overwrite, all_, selector, namespace, dry_run, store, output)
