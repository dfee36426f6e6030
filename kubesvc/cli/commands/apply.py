"""`kubesvc apply -f`: client-side apply with the last-applied-configuration annotation, or with
``--server-side`` server-side apply (field ownership, conflicts, ``--force-conflicts``) as kubectl does."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import DryRunOpt, FilenameOpt, NamespaceOpt, OutputOpt, RecursiveOpt, StoreOpt, ValidateOpt

_CONFLICT_HELP = """
Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts"""


def apply(
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = "none",
    validate: ValidateOpt = "strict",
    server_side: Annotated[bool, typer.Option("--server-side", help="If true, apply runs in the server instead of the client.")] = False,
    force_conflicts: Annotated[bool, typer.Option("--force-conflicts", help="If true, server-side apply will force the changes against conflicts.")] = False,
    field_manager: Annotated[str, typer.Option("--field-manager", help="Name of the manager used to track field ownership.")] = "",
    store: StoreOpt = None,
) -> None:
    """Apply a configuration to a resource by file name or stdin (create, configure or leave unchanged)."""
    from kubesvc.cli import resources
    from kubesvc.errors import ClientError

    if force_conflicts and not server_side:
        raise ClientError("--force-conflicts only works with --server-side")
    mode = common.dry_run_mode(dry_run)
    if server_side and mode == "client":
        raise ClientError("--dry-run=client doesn't work with --server-side (did you mean --dry-run=server instead?)")
    vmode = common.validate_mode(validate)
    out_fmt = common.check_output(output)
    ns, explicit = common.namespace(namespace)
    items = resources.load(filename, recursive, ns, explicit, "apply")
    if server_side:
        from kubesvc.api.managedfields import ApplyConflict, manager_errors

        manager = field_manager or "kubectl"
        if manager_errors(manager):
            raise ClientError(f'PatchOptions.meta.k8s.io "" is invalid: {manager_errors(manager)[0]}')
        reg = common.registry(store)

        def ssa(obj: dict[str, Any]) -> Any:
            try:
                result = reg.server_side_apply(obj, manager=manager, force=force_conflicts, dry_run=mode != "none",
                                               validate=vmode)
            except ApplyConflict as e:
                e.message = e.text() + _CONFLICT_HELP
                raise
            result.action = "serverside-applied"
            return result

        write = ssa
    elif mode == "client":  # the live objects are read (as kubectl GETs them), nothing is written
        from kubesvc.cli import dryrun

        live = common.read_registry(store)
        write = lambda obj: dryrun.apply(live, obj, vmode)  # noqa: E731
    else:
        reg = common.registry(store)
        manager = field_manager or "kubectl-client-side-apply"
        write = lambda obj: reg.apply(obj, dry_run=mode != "none", validate=vmode, manager=manager)  # noqa: E731
    common.each_object(
        items,
        write,
        lambda e: "applying" if e.reason == "Invalid" else "creating",
        mode,
        out_fmt,
    )
