"""`kubesvc replace -f FILE`: replace objects by their manifests, as kubectl replace.

Rules kept here (kubectl ``replace.go``):
- Each object must exist (``Error from server (NotFound): error when replacing "f.yaml": ...``); a
  ``metadata.resourceVersion`` in the file must be the stored one (Conflict), none means "whatever is stored".
- ``--force``: delete (printing ``service "web" deleted``; a missing object is no error), wait until it is gone,
  then create; prints ``service/web replaced``. ``--grace-period`` and ``--timeout`` are accepted with it.
- ``--dry-run=server|client`` prints ``replaced (server dry run)`` / ``replaced (dry run)``; ``-o`` prints the
  stored objects.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, Failure, FilenameOpt, NamespaceOpt, RecursiveOpt, StoreOpt
from kubesvc.errors import KubesvcError, NotFound


def replace(
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    force: Annotated[bool, typer.Option("--force", help="If true, immediately remove resources from API and bypass graceful deletion. Then re-create them.")] = False,
    grace_period: Annotated[int, typer.Option("--grace-period", help="Period of time in seconds given to the resource to terminate gracefully (only with --force).")] = -1,
    timeout: Annotated[str, typer.Option("--timeout", help="The length of time to wait before giving up on a delete (only with --force).")] = "0s",
    cascade: Annotated[str, typer.Option("--cascade", help='With --force: "background", "orphan", or "foreground".')] = "background",
    dry_run: common.DryRunOpt = "none",
    validate: common.ValidateOpt = "strict",
    output: common.OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Replace a resource by file name or stdin."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli import dryrun, resources
    from kubesvc.cli.commands.delete import _propagation, _wait_gone

    mode = common.dry_run_mode(dry_run)
    vmode = common.validate_mode(validate)
    out_fmt = common.check_output(output)
    propagation = _propagation(cascade)
    wait_for = common.parse_timeout(timeout) if timeout else 0.0
    ns, explicit = common.namespace(namespace)
    items = resources.load(filename, recursive, ns, explicit, "replace")
    reg = None if mode == "client" else common.registry(store)
    failures: list[Failure] = []
    suffix = common.dry_run_suffix(mode)
    for item in items:
        k = BY_KIND[item.kind.kind]
        try:
            if reg is None:
                result = dryrun.create(item.obj, vmode)
                result.action = "replaced"
            elif force and mode == "none":
                try:
                    reg.delete(k.kind, item.namespace, item.name, propagation=propagation)
                    common.out(f'{k.type_name} "{item.name}" deleted\n')
                    _wait_gone(reg, k.kind, item.namespace, item.name, wait_for)
                except NotFound:
                    pass
                obj = dict(item.obj)
                obj["metadata"] = {x: y for x, y in obj["metadata"].items() if x not in ("resourceVersion", "uid")}
                result = reg.create(obj, validate=vmode)
                result.action = "replaced"
            else:
                result = reg.replace(item.obj, dry_run=mode == "server", validate=vmode)
        except KubesvcError as e:
            failures.append(Failure(e, f'error when replacing "{item.source}": '))
            continue
        for w in result.warnings:
            common.warn(w)
        if out_fmt:
            common.print_objects([result.object], out_fmt, True)
        else:
            common.out(f"{k.type_name}/{item.name} replaced{suffix}\n")
    if failures:
        common.print_failures(failures)
        raise Exit(1)
