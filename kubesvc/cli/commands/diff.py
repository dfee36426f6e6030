"""`kubesvc diff -f FILE`: what `apply -f FILE` would change, as kubectl diff shows it.

Rules kept here (kubectl ``diff.go``, v1.32):
- For each object, the live object and the one `apply` would store (the whole apply pipeline, rolled back) are
  written as YAML (managedFields left out) to ``<tmp>/LIVE-<n>/`` and ``<tmp>/MERGED-<n>/``, one file each
  named ``[group.]version.Kind.namespace.name``; an object that does not exist yet has no LIVE file.
- Then ``$KUBECTL_EXTERNAL_DIFF LIVE MERGED`` runs (its value split on spaces: a program and its flags), or
  ``diff -u -N LIVE MERGED``, writing to our stdout; its exit code is ours: 0 no differences, 1 differences,
  >1 an error (kubesvc's own errors exit 1... as kubectl's do, after printing them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, FilenameOpt, NamespaceOpt, RecursiveOpt, StoreOpt
from kubesvc.errors import ClientError, KubesvcError, NotFound


def file_name(obj: dict) -> str:
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    meta = obj.get("metadata") or {}
    parts = [group, version] if group else [version]
    return ".".join([*parts, str(obj.get("kind", "")), *( [meta["namespace"]] if meta.get("namespace") else []),
                     str(meta.get("name", ""))])


def diff(
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
    validate: Annotated[str, typer.Option("--validate", help="strict (default), warn, ignore (or true/false).")] = "strict",
) -> None:
    """Diff the live version against a would-be applied version."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.api.manifests import to_yaml
    from kubesvc.cli import printers, resources

    vmode = common.validate_mode(validate)
    ns, explicit = common.namespace(namespace)
    items = resources.load(filename, recursive, ns, explicit, "diff")
    reg = common.registry(store)
    tmp = tempfile.gettempdir()
    live_dir = tempfile.mkdtemp(prefix="LIVE-", dir=tmp)
    merged_dir = tempfile.mkdtemp(prefix="MERGED-", dir=tmp)
    try:
        for item in items:
            k = BY_KIND[item.kind.kind]
            try:
                live = reg.get(k.kind, item.namespace, item.name)
            except NotFound:
                live = None
            try:
                merged = reg.apply(item.obj, dry_run=True, validate=vmode).object
            except KubesvcError as e:
                common.print_error(e, "")
                raise Exit(1) from None
            name = file_name(merged)
            if live is not None:
                with open(os.path.join(live_dir, name), "w", encoding="utf-8") as f:
                    f.write(to_yaml(printers.strip_managed_fields(live)))
            with open(os.path.join(merged_dir, name), "w", encoding="utf-8") as f:
                f.write(to_yaml(printers.strip_managed_fields(merged)))
        external = os.environ.get("KUBECTL_EXTERNAL_DIFF", "").split()
        cmd = [*external, live_dir, merged_dir] if external else ["diff", "-u", "-N", live_dir, merged_dir]
        if shutil.which(cmd[0]) is None:
            raise ClientError(f'failed to run "{cmd[0]}": executable file not found in $PATH')
        sys.stdout.flush()
        code = subprocess.call(cmd)
    finally:
        shutil.rmtree(live_dir, ignore_errors=True)
        shutil.rmtree(merged_dir, ignore_errors=True)
    if code != 0:
        raise Exit(code if code > 0 else 2)
