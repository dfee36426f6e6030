"""`kubesvc patch`: strategic (default), merge or JSON patch of one or more objects, as kubectl patch.

Rules kept here (kubectl ``patch.go``):
- Targets: ``TYPE NAME``, ``TYPE/NAME`` or ``-f FILE`` (the objects the file names); ``-p`` (YAML or JSON, read as
  YAML as kubectl does) or ``--patch-file``, not both.
- Prints ``service/web patched``, or ``service/web patched (no change)`` when the stored object is unchanged
  (no new resourceVersion); no dry-run suffix (kubectl prints none for patch); ``-o`` prints the patched object.
- ``--dry-run=server`` runs the whole write and rolls it back; ``--dry-run=client`` patches the live object locally.
- ``--subresource=status`` patches only ``status`` (spec and metadata stay as stored); other subresources are
  the server's NotFound.
- The patch engines are the API server's (``kubesvc.apiserver.patch``): the CLI and kubectl through the API
  server patch the same way. The read-patch-write is one store transaction (no lost update, no conflict).
"""

from __future__ import annotations

import copy
import sys
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, Failure, FilenameOpt, NamespaceOpt, RecursiveOpt, StoreOpt
from kubesvc.errors import BadRequest, ClientError, KubesvcError

TYPES = {"json": "application/json-patch+json", "merge": "application/merge-patch+json",
         "strategic": "application/strategic-merge-patch+json"}


class PatchError(KubesvcError):
    """The API server's answer to a bad patch (its reason and message)."""

    def __init__(self, reason: str, code: int, message: str) -> None:
        super().__init__(message)
        self.reason, self.code = reason, code


def read_patch(patch: str | None, patch_file: str | None) -> Any:
    """The patch document from -p or --patch-file, read as YAML as kubectl reads it (JSON is YAML)."""
    if patch is not None and patch_file is not None:
        raise ClientError("cannot specify --patch and --patch-file together")
    if patch_file is not None:
        try:
            with open(patch_file, encoding="utf-8") as f:
                patch = f.read()
        except OSError as e:
            raise ClientError(f"unable to read patch file: open {patch_file}: {(e.strerror or str(e)).lower()}") from None
    if not patch:
        raise ClientError("must specify --patch or --patch-file containing the contents of the patch")
    return parse_patch(patch)


def parse_patch(text: str) -> Any:
    from kubesvc.api import yamlload

    try:
        return yamlload.load(text)
    except yamlload.YAMLLoadError as e:
        msg = str(e).removeprefix("error converting YAML to JSON: ")
        raise ClientError(f'unable to parse "{text}": {msg}') from None


def patch_object(live: dict[str, Any], ptype: str, body: Any) -> dict[str, Any]:
    """``live`` patched (the API server's engines); errors as the API server answers them."""
    from kubesvc.apiserver import patch as patchlib
    from kubesvc.apiserver.status import ApiError

    try:
        return patchlib.apply(copy.deepcopy(live), TYPES[ptype], body)
    except ApiError as e:
        raise PatchError(e.reason, e.code, e.message) from None


def _check_identity(obj: dict[str, Any], live: dict[str, Any]) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise BadRequest("the patched object has no metadata")
    if obj.get("kind") != live.get("kind") or obj.get("apiVersion") != live.get("apiVersion"):
        raise BadRequest(f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({live.get('kind')})")
    if meta.get("name") != live["metadata"]["name"]:
        raise BadRequest(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({live['metadata']['name']})")


def patch_stored(reg: Any, kind: str, ns: str, name: str, ptype: str, body: Any, *, dry_run: bool,
                 status: bool = False) -> tuple[dict[str, Any], bool, list[str]]:
    """Patch the stored object in one transaction: (stored object, changed?, warnings)."""
    warnings: list[str] = []
    seen: dict[str, str] = {}

    def fn(obj: dict[str, Any]) -> None:
        seen["rv"] = str(obj["metadata"].get("resourceVersion", ""))
        patched = patch_object(obj, ptype, body)
        _check_identity(patched, obj)
        if patched == obj:
            return
        decoded, warns = reg.decode(patched, "warn")
        warnings[:] = warns
        decoded["metadata"]["resourceVersion"] = obj["metadata"].get("resourceVersion")
        obj.clear()
        obj.update(decoded)

    if status:
        if dry_run:
            stored = reg._read_modify_write(kind, ns, name, fn, dry_run=True, status_only=True)
        else:
            stored = reg.update_status(kind, ns, name, fn)
    else:
        stored = reg.mutate(kind, ns, name, fn, dry_run=dry_run, manager="kubectl-patch")
    changed = str(stored["metadata"].get("resourceVersion", "")) != seen.get("rv") or (dry_run and stored is not None and _differs(reg, kind, ns, name, stored))
    return stored, changed, warnings


def _differs(reg: Any, kind: str, ns: str, name: str, stored: dict[str, Any]) -> bool:
    try:
        return bool(reg.get(kind, ns, name) != stored)
    except KubesvcError:
        return True


def patch(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE NAME or TYPE/NAME")] = None,
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    patch_: Annotated[str | None, typer.Option("--patch", "-p", help="The patch to be applied to the resource JSON file.")] = None,
    patch_file: Annotated[str | None, typer.Option("--patch-file", help="A file containing a patch to be applied to the resource.")] = None,
    type_: Annotated[str, typer.Option("--type", help="The type of patch being provided; one of [json merge strategic]")] = "strategic",
    subresource: Annotated[str, typer.Option("--subresource", help="If specified, patch will operate on the subresource of the requested object (status).")] = "",
    local: Annotated[bool, typer.Option("--local", help="If true, patch will operate on the content of the file, not the server-side resource.")] = False,
    dry_run: common.DryRunOpt = "none",
    output: common.OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Update fields of a resource using strategic merge patch, a JSON merge patch, or a JSON patch."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli.commands.get import parse_targets

    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    if type_ not in TYPES:
        raise ClientError(f'--type must be one of [json merge strategic], not "{type_}"')
    body = read_patch(patch_, patch_file)
    ns, explicit = common.namespace(namespace)
    work: list[tuple[str, str, str, dict[str, Any] | None]] = []  # kind, namespace, name, object from a file
    if filename:
        from kubesvc.cli import resources

        if args:
            raise ClientError("when paths, URLs, or stdin is provided as input, you may not specify resource arguments as well")
        for item in resources.load(filename, recursive, ns, explicit, "patch"):
            work.append((item.kind.kind, item.namespace, item.name, item.obj))
    else:
        if local:
            raise ClientError("cannot specify --local and server resources")
        if not args:
            raise ClientError("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
        for kind, names in parse_targets(args):
            if not names:
                raise ClientError("resource(s) were provided, but no name was specified")
            work.extend((kind, ns, n, None) for n in names)
    failures: list[Failure] = []
    for kind, obj_ns, name, file_obj in work:
        try:
            if local or mode == "client":
                if local:
                    assert file_obj is not None
                    live = file_obj
                else:
                    live = common.read_object(common.read_registry(store), kind, obj_ns, name)
                result = patch_object(live, type_, body)
                changed = result != live
            else:
                if subresource and subresource != "status":
                    raise PatchError("NotFound", 404, "the server could not find the requested resource")
                result, changed, warnings = patch_stored(common.registry(store), kind, obj_ns, name, type_, body,
                                                         dry_run=mode == "server", status=subresource == "status")
                for w in warnings:
                    common.warn(w)
        except KubesvcError as e:
            failures.append(Failure(e))
            continue
        if out_fmt:
            common.print_objects([result], out_fmt, True)
        else:
            common.out(f"{BY_KIND[kind].type_name}/{name} patched{'' if changed else ' (no change)'}\n")
    if failures:
        for f in failures:
            _print_failure(f.error)
        raise Exit(1)


def _print_failure(err: KubesvcError) -> None:
    if isinstance(err, PatchError) and err.reason == "Invalid":
        # the Status names no kind or name (` "" is invalid: patch: ...`): kubectl prints the cause alone
        cause = err.message.removeprefix(' "" is invalid: ')
        sys.stderr.write(f"The request is invalid: {cause}\n")
    elif isinstance(err, PatchError) and err.reason == "NotFound":
        sys.stderr.write(f"Error from server (NotFound): {err.message}\n")
    else:
        sys.stderr.write(common.standard_message(err) + "\n")
