"""Shared pieces of the commands: options, opening the store, kubectl's error lines, -o printing.

Rules kept here (kubectl cmd/util/helpers.go):
- A lone error prints in the standard form: Invalid as ``The Service "x" is invalid: ...`` (bullets for
  several causes), other server errors as ``Error from server (<Reason>): [error when <verb> "<file>": ]<msg>``,
  client errors as ``error: <msg>``.
- Several errors print one line each in the server form (``Service "x" is invalid: [a, b]``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kubesvc.errors import ClientError, Invalid, KubesvcError

if TYPE_CHECKING:
    from kubesvc.registry.generic import Registry


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


@dataclass
class Failure:
    error: KubesvcError
    context: str = ""  # e.g. 'error when creating "x.yaml": '


def standard_message(err: KubesvcError, context: str = "") -> str:
    if isinstance(err, ClientError):
        return f"error: {err.message}"
    if isinstance(err, Invalid):
        return err.cli_message()
    return f"Error from server ({err.reason}): {context}{err.message}"


def multi_message(err: KubesvcError, context: str = "") -> str:
    if isinstance(err, ClientError):
        return f"error: {err.message}"
    if isinstance(err, Invalid):
        return f"Error from server (Invalid): {context}{err.status_message()}"
    return f"Error from server ({err.reason}): {context}{err.message}"


def print_error(err: KubesvcError, context: str = "") -> None:
    sys.stderr.write(standard_message(err, context) + "\n")


def print_failures(failures: list[Failure]) -> None:
    if len(failures) == 1:
        f = failures[0]
        sys.stderr.write(standard_message(f.error, f.context) + "\n")
        return
    for f in failures:
        sys.stderr.write(multi_message(f.error, f.context) + "\n")


def out(text: str) -> None:
    sys.stdout.write(text)


def warn(text: str) -> None:
    sys.stderr.write(f"Warning: {text}\n")


# ---------------------------------------------------------------------------------------- options

NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="If present, the namespace scope for this request.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Path of the SQLite store (default $KUBESVC_STORE, else ~/.kubesvc/store.db).", envvar=None)]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="Output format: json|yaml|name|wide|jsonpath=...|custom-columns=...")]
FilenameOpt = Annotated[list[str] | None, typer.Option("--filename", "-f", help="Files, directories or - (stdin) containing the resources.")]
RecursiveOpt = Annotated[bool, typer.Option("--recursive", "-R", help="Process the directory used in -f recursively.")]
DryRunOpt = Annotated[str, typer.Option("--dry-run", help="none, client or server: only print what would be sent.")]
ValidateOpt = Annotated[str, typer.Option("--validate", help="strict (default), warn, ignore (or true/false).")]
SelectorOpt = Annotated[str | None, typer.Option("--selector", "-l", help="Label selector to filter on (k=v, k!=v, k in (a,b), k, !k).")]


@dataclass
class Context:
    store_path: str | None = None
    namespace: str | None = None


_GLOBAL = Context()


def set_global(ctx: Context) -> None:
    """The root callback records the options given before the verb (-n, --store)."""
    global _GLOBAL
    _GLOBAL = ctx


def global_ctx() -> Context:
    return _GLOBAL


def store_path(flag: str | None) -> str:
    from kubesvc.config import default_store_path

    return flag or global_ctx().store_path or default_store_path()


def namespace(flag: str | None) -> tuple[str, bool]:
    """(namespace, explicit?) from -n on the command, then -n before the command, then default."""
    ns = flag or global_ctx().namespace
    return (ns, True) if ns else ("default", False)


_registries: dict[str, Registry] = {}


def registry(flag: str | None) -> Registry:
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Store

    path = store_path(flag)
    if path not in _registries:
        if os.path.exists(path + ".d/store.json"):  # `kubesvc up` ran: refuse a store deleted or replaced since
            from kubesvc.dataplane.supervisor import check_store_unchanged

            check_store_unchanged(path)
        _registries[path] = Registry(Store.open(path))
    return _registries[path]


def read_registry(flag: str | None) -> Registry | None:
    """The store for the reads a --dry-run=client command still makes (kubectl GETs the live object for apply,
    label, annotate, scale, expose TYPE NAME): None when there is no store file, which is never created."""
    if not os.path.exists(store_path(flag)):
        return None
    return registry(flag)


def read_object(reg: Registry | None, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """``reg.get`` where there may be no store (NotFound then)."""
    if reg is None:
        from kubesvc.api.kinds import BY_KIND
        from kubesvc.errors import NotFound

        raise NotFound(BY_KIND[kind].resource, name)
    return reg.get(kind, namespace, name)


def dry_run_mode(value: str) -> str:
    v = value or "none"
    if v in ("none", "client", "server"):
        return v
    if v in ("true", "unchanged"):
        return "client"
    raise ClientError(f'Invalid dry-run value ({value}). Must be "none", "server", or "client".')


def validate_mode(value: str) -> str:
    v = (value or "strict").lower()
    if v in ("strict", "true"):
        return "strict"
    if v == "warn":
        return "warn"
    if v in ("ignore", "false"):
        return "ignore"
    raise ClientError(f'invalid - validate option "{value}"; must be one of: strict (or true), warn, ignore (or false)')


def parse_bool(flag: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "t", "yes"):
        return True
    if v in ("false", "0", "f", "no"):
        return False
    raise ClientError(f'invalid argument "{value}" for "{flag}" flag: strconv.ParseBool: parsing "{value}": invalid syntax')


def parse_timeout(text: str) -> float:
    """kubectl-style timeouts (`5s`, `250ms`, `2m`, `1h`, or bare seconds); 0 means no limit."""
    t = text.strip()
    try:
        for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
            if t.endswith(unit):
                return float(t[: -len(unit)]) * factor
        return float(t)
    except ValueError:
        raise ClientError(f"invalid timeout value {text!r}: use a number with a unit, e.g. 5s") from None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str, flag: str) -> float:
    """A positive server-flag duration (`250ms`, `10s`, `1m`, `1h`, or bare seconds) for ``flag``."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ClientError(f"{flag}: invalid duration {text!r} (want e.g. 250ms, 10s, 1m)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def now() -> datetime:
    return datetime.now(UTC)


# What -o takes, per verb: kubectl's printers (go-template is kubesvc.api.gotemplate's subset of Go's).
OBJECT_FORMATS = ("go-template", "go-template-file", "json", "jsonpath", "jsonpath-as-json", "jsonpath-file", "name",
                  "template", "templatefile", "yaml")  # create, apply, expose, label, annotate, scale, patch
GET_FORMATS = ("custom-columns", "custom-columns-file", "go-template", "go-template-file", "json", "jsonpath",
               "jsonpath-as-json", "jsonpath-file", "name", "template", "templatefile", "wide", "yaml")
_TEMPLATED = {"jsonpath": "template format specified but no template given",
              "jsonpath-as-json": "template format specified but no template given",
              "jsonpath-file": "template format specified but no template given",
              "go-template": "template format specified but no template given",
              "go-template-file": "template format specified but no template given",
              "template": "template format specified but no template given",
              "templatefile": "template format specified but no template given",
              "custom-columns": "custom-columns format specified but no custom columns given",
              "custom-columns-file": "custom-columns format specified but no custom columns given"}


def check_output(output: str | None, allowed: tuple[str, ...] = OBJECT_FORMATS) -> str:
    """The -o value, checked against ``allowed`` before anything is read or written (kubectl's
    ``PrintFlags.ToPrinter`` runs in Complete: `create -f x -o wide` writes nothing). The file forms
    (``go-template-file=``, ``jsonpath-file=``, ``custom-columns-file=``) are read here and returned as
    the inline form."""
    o = output or ""
    base, eq, arg = o.partition("=")
    if base in _TEMPLATED and base in allowed:
        if not arg:
            raise ClientError(_TEMPLATED[base])
        if base in ("go-template-file", "templatefile", "jsonpath-file", "custom-columns-file"):
            try:
                with open(arg, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                flag = "custom-columns-file" if base == "custom-columns-file" else "--template"
                raise ClientError(f"error reading {flag} {arg}, open {arg}: {(e.strerror or str(e)).lower()}") from None
            if base == "custom-columns-file":
                from kubesvc.cli.printers import custom_columns_from_file

                return "custom-columns=" + custom_columns_from_file(text)
            return ("jsonpath=" if base == "jsonpath-file" else "go-template=") + text
        if base == "template":
            return "go-template=" + arg
        return o
    if not o or (o in allowed and o not in _TEMPLATED):
        return o
    raise ClientError(
        f'unable to match a printer suitable for the output format "{o}", allowed formats are: {",".join(allowed)}'
    )


def print_objects(objs: list[dict[str, Any]], output: str, single: bool, typed: bool = False,
                  show_managed_fields: bool = False) -> None:
    """-o json|yaml|name|jsonpath=|jsonpath-as-json=|go-template=|custom-columns= for any command that prints
    objects (the -file forms arrive inline from ``check_output``). ``typed``: a generated object (dry-run
    generators), printed in field order as kubectl prints typed objects. ``metadata.managedFields`` is
    left out unless ``show_managed_fields``, as kubectl does."""
    from kubesvc.cli import printers

    if not show_managed_fields and output in ("json", "yaml"):  # kubectl keeps them for jsonpath, templates...
        objs = [printers.strip_managed_fields(o) for o in objs]
    data = objs[0] if single and len(objs) == 1 else _as_list(objs)
    if output == "json":
        out(printers.render_json(objs, single, sort_keys=not typed))
    elif output == "yaml":
        out(printers.render_yaml(objs, single))
    elif output == "name":
        out(printers.render_name(objs))
    elif output.startswith("jsonpath="):
        out(printers.render_jsonpath(output[len("jsonpath=") :], data))
    elif output.startswith("jsonpath-as-json="):
        out(printers.render_jsonpath_as_json(output[len("jsonpath-as-json=") :], data))
    elif output.startswith("go-template="):
        out(printers.render_go_template(output[len("go-template=") :], data))
    elif output.startswith("custom-columns="):
        out(printers.render_custom_columns(output[len("custom-columns=") :], objs))
    else:
        raise ClientError(f'output format "{output}" is not supported here')


def _as_list(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": objs, "kind": "List", "metadata": {"resourceVersion": ""}}


def type_name(obj: dict[str, Any]) -> str:
    from kubesvc.api.kinds import BY_KIND

    return f"{BY_KIND[obj['kind']].type_name}/{obj['metadata']['name']}"


def dry_run_suffix(mode: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(mode, "")


def print_or_create(obj: dict[str, Any], namespace: str, mode: str, out_fmt: str, verb: str, store: str | None,
                    explicit: bool = False, manager: str = "kubectl-create") -> None:
    """A generated object (`create <generator>`, `expose`): with --dry-run=client printed as kubectl prints it
    (typed, nothing from the store; metadata.namespace only when -n was given), else created in ``namespace``
    (--dry-run=server: checked, not stored) and reported as `type/name <verb>`, or in the -o format."""
    if mode == "client":
        if explicit:
            meta = obj["metadata"]
            # ObjectMeta's field order, as kubectl prints a typed object in JSON: name, namespace, ...
            obj["metadata"] = {"name": meta.get("name"), "namespace": namespace,
                               **{k: v for k, v in meta.items() if k not in ("name", "namespace")}}
        if out_fmt:
            print_objects([obj], out_fmt, True, typed=True)
        else:
            out(f"{type_name(obj)} {verb} (dry run)\n")
        return
    obj["metadata"].pop("creationTimestamp", None)
    obj["metadata"]["namespace"] = namespace
    obj.pop("status", None)
    result = registry(store).create(obj, dry_run=mode == "server", manager=manager)
    if out_fmt:
        print_objects([result.object], out_fmt, True)
    else:
        out(f"{type_name(obj)} {verb}{dry_run_suffix(mode)}\n")


def each_object(items: list[Any], write: Any, error_verb: Any, mode: str, out_fmt: str) -> None:
    """The -f loop of create/apply: write each object on its own, print `kind/name <action>` (or -o),
    collect failures with their source, print them last, exit 1 if any failed."""
    failures: list[Failure] = []
    for item in items:
        try:
            result = write(item.obj)
        except KubesvcError as e:
            failures.append(Failure(e, f'error when {error_verb(e)} "{item.source}": '))
            continue
        for w in result.warnings:
            warn(w)
        if out_fmt:
            print_objects([result.object], out_fmt, True)
        else:
            out(f"{type_name(result.object)} {result.action}{dry_run_suffix(mode)}\n")
    if failures:
        print_failures(failures)
        raise Exit(1)
