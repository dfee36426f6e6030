"""`kubesvc wait`: block until objects meet a condition, as kubectl wait.

Rules kept here (kubectl ``wait.go``, v1.32):
- ``--for=delete``: until the object is gone (already gone, or nothing matched: success, silently).
- ``--for=condition=Ready[=true]``: ``status.conditions[type=Ready].status`` equals the value (default true,
  compared without case).
- ``--for=jsonpath='{.status.phase}'=Running``: the JSONPath's value equals the text; with no ``=value``,
  the field exists.
- ``--for=create``: the object exists.
- Each object met prints ``service/web condition met``; a timeout is ``error: timed out waiting for the
  condition on services/web`` (several: one line each), exit 1. ``--timeout`` defaults to 30s; 0 checks once.
- Targets: ``TYPE NAME``, ``TYPE/NAME``, ``-f``, ``-l``, ``--all`` (``-A``); nothing matched (not for
  delete): ``error: no matching resources found``.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, FilenameOpt, NamespaceOpt, RecursiveOpt, SelectorOpt, StoreOpt
from kubesvc.errors import ClientError


def parse_for(text: str) -> tuple[str, Any]:
    """(kind of wait, argument): ("delete", None), ("create", None), ("condition", (type, value)),
    ("jsonpath", (compiled, value or None))."""
    if text == "delete":
        return "delete", None
    if text == "create":
        return "create", None
    if text.startswith("condition="):
        cond, eq, value = text[len("condition="):].partition("=")
        return "condition", (cond, value if eq else "true")
    if text.startswith("jsonpath="):
        from kubesvc.cli import printers

        spec = text[len("jsonpath="):]
        expr, want = spec, None  # type: str, str | None
        # the value follows the last '=' outside the braces
        close = spec.rfind("}")
        rest = spec[close + 1:] if close >= 0 else spec
        if "=" in rest:
            cut = (close + 1 if close >= 0 else 0) + rest.index("=")
            expr, want = spec[:cut], spec[cut + 1:]
        if not expr:
            raise ClientError("jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 or --for=jsonpath='{.status.readyReplicas}'")
        return "jsonpath", (printers.compile_jsonpath(printers._relaxed(expr), allow_missing_keys=True), want)
    raise ClientError(f'unrecognized condition: "{text}"')


def met(obj: dict[str, Any] | None, how: str, arg: Any) -> bool:
    if how == "delete":
        return obj is None
    if obj is None:
        return False
    if how == "create":
        return True
    if how == "condition":
        cond, value = arg
        for c in (obj.get("status") or {}).get("conditions") or []:
            if isinstance(c, dict) and c.get("type") == cond:
                return str(c.get("status", "")).lower() == value.lower()
        return False
    path, value = arg
    try:
        groups = path.find_results(obj)
    except Exception:
        return False
    values = [v for g in groups for v in g]
    if value is None:
        return bool(values)
    if len(values) != 1:
        return False
    from kubesvc.api.jsonpath import go_text

    v = values[0]
    return (v if isinstance(v, str) else go_text(v)) == value


def wait(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE NAME, TYPE/NAME or TYPE with -l / --all")] = None,
    for_: Annotated[str, typer.Option("--for", help="The condition to wait on: [create|delete|condition=condition-name[=condition-value]|jsonpath='{JSONPath expression}'=[JSONPath value]].")] = "",
    timeout: Annotated[str, typer.Option("--timeout", help="The length of time to wait before giving up. Zero means check once and don't wait.")] = "30s",
    filename: FilenameOpt = None,
    recursive: RecursiveOpt = False,
    namespace: NamespaceOpt = None,
    selector: SelectorOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Select all resources in the namespace of the specified resource types.")] = False,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Across all namespaces.")] = False,
    output: common.OutputOpt = None,
    store: StoreOpt = None,
) -> None:
    """Experimental: Wait for a specific condition on one or many resources."""
    from kubesvc.api import selectors
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.cli.commands.get import parse_targets

    how, arg = parse_for(for_)
    out_fmt = common.check_output(output)
    limit = common.parse_timeout(timeout)
    ns, explicit = common.namespace(namespace)
    reg = common.registry(store)
    keys: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + max(0.0, limit)
    if filename:
        from kubesvc.cli import resources

        keys = [(i.kind.kind, i.namespace, i.name) for i in resources.load(filename, recursive, ns, explicit, "wait")]
    else:
        if not args:
            raise ClientError("You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
        sel = selectors.parse(selector) if selector else None
        for kind, names in parse_targets(args):
            k = BY_KIND[kind]
            if names:
                keys.extend((kind, ns if k.namespaced else "", n) for n in names)
            elif all_ or sel is not None:
                scope = None if (all_namespaces or not k.namespaced) else ns
                keys.extend((kind, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                            for o in reg.list(kind, scope, sel))
            else:
                raise ClientError("resource(s) were provided, but no name was specified")
        if not keys and how != "delete":
            raise ClientError("no matching resources found")
    if how not in ("delete", "create"):
        # kubectl's builder GETs each named object first: a missing one is the server's NotFound
        for kind, obj_ns, name in keys:
            reg.get(kind, obj_ns, name)
    failures: list[str] = []
    for kind, obj_ns, name in keys:
        k = BY_KIND[kind]
        first = True
        while True:
            obj = reg.store.get(kind, obj_ns, name)
            if met(obj, how, arg):
                if how == "delete" and first:
                    break  # already gone: nothing to report
                if out_fmt and obj is not None:
                    common.print_objects([obj], out_fmt, True)
                else:
                    common.out(f"{k.type_name}/{name} condition met\n")
                sys.stdout.flush()
                break
            first = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append(f"timed out waiting for the condition on {k.resource}/{name}" if obj is not None or how == "delete"
                                else "timed out waiting for the condition")
                break
            reg.store.wait_for_change(reg.store.revision(), min(remaining, 1.0), interval=0.05)
    if failures:
        if len(failures) == 1:
            sys.stderr.write(f"error: {failures[0]}\n")
        else:
            sys.stderr.write("".join(f"{f}\n" for f in failures))
        raise Exit(1)
