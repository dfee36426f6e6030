"""`kubesvc apply -f`: client-side apply with the last-applied-configuration annotation."""

from __future__ import annotations

from kubesvc.cli import common
from kubesvc.cli.common import (
    DryRunOpt, Exit, Failure, FilenameOpt, NamespaceOpt, OutputOpt, RecursiveOpt, StoreOpt, ValidateOpt,
)
from kubesvc.errors import KubesvcError


def apply(
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = "none",
    validate: ValidateOpt = "strict",
    store: StoreOpt = None,
) -> None:
    """Apply a configuration to a resource by file name or stdin (create, configure or leave unchanged)."""
    from kubesvc.cli import resources

    mode = common.dry_run_mode(dry_run)
    vmode = common.validate_mode(validate)
    out_fmt = common.check_output(output)
    ns, explicit = common.namespace(namespace)
    items = resources.load(filename, recursive, ns, explicit, "apply")
    reg = common.registry(store)
    failures: list[Failure] = []
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(mode, "")
    for item in items:
        try:
            result = reg.apply(item.obj, dry_run=mode != "none", validate=vmode)
        except KubesvcError as e:
            verb = "applying" if e.reason == "Invalid" else "creating"
            failures.append(Failure(e, f'error when {verb} "{item.source}": '))
            continue
        for w in result.warnings:
            common.warn(w)
        if out_fmt:
            common.print_objects([result.object], out_fmt, True)
        else:
            common.out(f"{common.type_name(result.object)} {result.action}{suffix}\n")
    if failures:
        common.print_failures(failures)
        raise Exit(1)
