"""`kubesvc edit TYPE NAME`: edit a stored object in $KUBE_EDITOR / $EDITOR (default vi), as kubectl edit.

Rules kept here (kubectl ``editoptions.go``, v1.32):
- The file opens with kubectl's header comment and the object as YAML (managedFields left out); lines starting
  with ``#`` are ignored.
- Saved unchanged: ``Edit cancelled, no changes made.`` (exit 0). Saved invalid (or empty, or not YAML): the
  file re-opens with the errors as comments under the header (``# services "web" was not valid:`` ...) after
  ``error: services "web" is invalid``; saved again with the same content: ``A copy of your changes has been
  stored to "<tmp file>"`` and ``error: Edit cancelled, no valid changes were saved.`` (exit 1).
- The change is applied as a merge patch of what the user changed onto the object as stored *now*, in one
  store transaction: an object changed by someone else while the editor was open does not fail with a
  Conflict (kubectl retries its patch the same way); ``resourceVersion`` edits are ignored.
- Prints ``service/web edited`` (or ``-o``). Several objects are edited one after the other.
- The editor runs as ``$EDITOR FILE``; an editor value with spaces runs through ``sh -c`` (as kubectl does).
"""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
import sys
import tempfile
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, NamespaceOpt, StoreOpt
from kubesvc.errors import BadRequest, ClientError, Invalid, KubesvcError

HEADER = ("# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
          "# and an empty file will abort the edit. If an error occurs while saving this file will be\n"
          "# reopened with the relevant failures.\n"
          "#\n")


def strip_comments(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#"))


def merge_patch_between(original: Any, edited: Any) -> Any:
    """The RFC 7386 merge patch that turns ``original`` into ``edited`` (lists are replaced whole)."""
    if not (isinstance(original, dict) and isinstance(edited, dict)):
        return copy.deepcopy(edited)
    patch: dict[str, Any] = {}
    for k in original:
        if k not in edited:
            patch[k] = None
    for k, v in edited.items():
        if k not in original:
            patch[k] = copy.deepcopy(v)
        elif original[k] != v:
            patch[k] = merge_patch_between(original[k], v) if isinstance(v, dict) and isinstance(original[k], dict) \
                else copy.deepcopy(v)
    return patch


def run_editor(path: str) -> None:
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    args = ["sh", "-c", f"{editor} {shlex.quote(path)}"] if " " in editor else [editor, path]
    try:
        code = subprocess.call(args)
    except OSError:
        code = -1
    if code != 0:
        raise ClientError(f'there was a problem with the editor "{editor}"')


def _error_comments(err: KubesvcError, resource: str, name: str) -> str:
    lines = [f'{resource} "{name}" was not valid:']
    if isinstance(err, Invalid):
        lines += [f"* {c}" for c in err.causes]
    else:
        lines.append(f"* {err.message}")
    return "".join(f"# {line}\n" for line in lines) + "#\n"


def edit(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE NAME or TYPE/NAME")] = None,
    namespace: NamespaceOpt = None,
    output: common.OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Edit a resource on the server."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli.commands.get import parse_targets

    out_fmt = common.check_output(output)
    ns, _ = common.namespace(namespace)
    if not args:
        raise ClientError("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
    reg = common.registry(store)
    work: list[tuple[str, str]] = []
    for kind, names in parse_targets(args):
        if not names:
            raise ClientError("resource(s) were provided, but no name was specified")
        work.extend((kind, n) for n in names)
    objs = [(kind, reg.get(kind, ns, name)) for kind, name in work]  # all or nothing, before any editor opens
    failed = False
    for kind, live in objs:
        k = BY_KIND[kind]
        try:
            result = _edit_one(reg, k, live)
        except Exit:
            failed = True
            continue
        if result is None:
            continue
        if out_fmt:
            common.print_objects([result], out_fmt, True)
        else:
            common.out(f"{k.type_name}/{live['metadata']['name']} edited\n")
    if failed:
        raise Exit(1)


def _edit_one(reg: Any, k: Any, live: dict[str, Any]) -> dict[str, Any] | None:
    """One object through the editor loop: the stored object, or None when nothing changed."""
    from kubesvc.api import yamlload
    from kubesvc.api.manifests import to_yaml
    from kubesvc.cli import printers

    original = printers.strip_managed_fields(live)
    body = to_yaml(original)
    name, ns = live["metadata"]["name"], live["metadata"].get("namespace", "")
    errors = ""
    previous: str | None = None
    fd, path = tempfile.mkstemp(prefix="kubesvc-edit-", suffix=".yaml")
    os.close(fd)
    keep = False
    try:
        while True:
            with open(path, "w", encoding="utf-8") as f:
                f.write(HEADER + errors + body)
            run_editor(path)
            with open(path, encoding="utf-8") as f:
                edited_text = f.read()
            if previous is not None and strip_comments(edited_text) == strip_comments(previous):
                keep = True
                sys.stderr.write(f'A copy of your changes has been stored to "{path}"\n')
                sys.stderr.write("error: Edit cancelled, no valid changes were saved.\n")
                raise Exit(1)
            if strip_comments(edited_text) == body:
                sys.stderr.write("Edit cancelled, no changes made.\n")
                return None
            try:
                try:
                    edited = yamlload.load(strip_comments(edited_text))
                except yamlload.YAMLLoadError as e:
                    raise BadRequest(f"The edited file had a syntax error: {e}") from None
                if not isinstance(edited, dict):
                    raise BadRequest('<nil>: Invalid value: "The edited file failed validation": invalid object to validate')
                if edited.get("kind") != live.get("kind") or (edited.get("metadata") or {}).get("name") != name:
                    raise BadRequest("At least one of apiVersion, kind and name was changed")
                patch = merge_patch_between(original, edited)
                if isinstance(patch.get("metadata"), dict):
                    patch["metadata"].pop("resourceVersion", None)
                from kubesvc.cli.commands.patch import patch_stored

                stored, changed, warnings = patch_stored(reg, k.kind, ns, name, "merge", patch, dry_run=False)
                for w in warnings:
                    common.warn(w)
                if not changed:
                    sys.stderr.write("Edit cancelled, no changes made.\n")
                    return None
                return stored
            except KubesvcError as e:
                if isinstance(e, ClientError):
                    raise
                sys.stderr.write(f'error: {k.resource} "{name}" is invalid\n')
                errors = _error_comments(e, k.resource, name)
                previous = edited_text
                body = strip_comments(edited_text)
    finally:
        if not keep:
            os.unlink(path)
