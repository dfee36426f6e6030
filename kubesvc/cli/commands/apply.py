"""`kubesvc apply -f`: client-side apply with the last-applied-configuration annotation."""

from __future__ import annotations

from kubesvc.cli import common
from kubesvc.cli.common import DryRunOpt, FilenameOpt, NamespaceOpt, OutputOpt, RecursiveOpt, StoreOpt, ValidateOpt


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
    if mode == "client":  # the live objects are read (as kubectl GETs them), nothing is written
        from kubesvc.cli import dryrun

        live = common.read_registry(store)
        write = lambda obj: dryrun.apply(live, obj, vmode)  # noqa: E731
    else:
        reg = common.registry(store)
        write = lambda obj: reg.apply(obj, dry_run=mode != "none", validate=vmode)  # noqa: E731
    common.each_object(
        items,
        write,
        lambda e: "applying" if e.reason == "Invalid" else "creating",
        mode,
        out_fmt,
    )
