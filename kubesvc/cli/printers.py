"""Pure printers: objects in, text out, for ``-o`` table/wide/name/json/yaml/jsonpath/custom-columns.

Rules kept here (cli-runtime ``pkg/printers``, kubectl ``get.go``, spec §6):
- Tables go through Go's ``text/tabwriter`` as kubectl configures it: min width 6, padding 3, spaces;
  a cell's column is as wide as its widest cell in the *block* of consecutive lines having that
  column; the last cell of a line is never padded. ``tabwrite`` reproduces that algorithm.
- Headers are the column names upper-cased; NAMESPACE comes first with -A (namespaced kinds only);
  ``-L`` columns and then LABELS come last; with several kinds names read ``service/web`` and
  tables are separated by one blank line (none with --no-headers).
- ``-o jsonpath`` output has no trailing newline; ``-o custom-columns`` prints ``<none>`` for a
  missing value and joins several values with commas, through the same tabwriter.
- Bad templates raise ClientError with kubectl's sentence. No Console, no store, no Typer here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from kubesvc.api import tables
from kubesvc.api.jsonpath import JSONPath, JSONPathError, go_sprint
from kubesvc.api.kinds import BY_KIND
from kubesvc.api.manifests import to_json, to_yaml
from kubesvc.errors import ClientError

TABLE_MIN_WIDTH = 6
TABLE_PADDING = 3


# ------------------------------------------------------------------------------------ tabwriter


def tabwrite(text: str, minwidth: int = TABLE_MIN_WIDTH, padding: int = TABLE_PADDING) -> str:
    """Go ``text/tabwriter`` (pad char space, no flags) over ``text``: tab-terminated cells aligned."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []

    def write_lines(widths: list[int], line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts = []
            for j, cell in enumerate(cells):
                if j < len(widths):
                    parts.append(cell + " " * (widths[j] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))

    def fmt(widths: list[int], line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(widths, line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(widths, line0, this)
            widths.pop()
            line0 = this
        write_lines(widths, line0, line1)

    fmt([], 0, len(lines))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------- tables


def _type_name(kind: str) -> str:
    found = BY_KIND.get(kind)
    return found.type_name if found else kind.lower()


def _namespaced(kind: str) -> bool:
    found = BY_KIND.get(kind)
    return found.namespaced if found else True


def _label_header(key: str) -> str:
    return key.split("/")[-1].upper()


def render_table(
    kind: str,
    objs: Sequence[dict[str, Any]],
    *,
    now: datetime,
    wide: bool = False,
    all_namespaces: bool = False,
    show_labels: bool = False,
    label_columns: Sequence[str] = (),
    no_headers: bool = False,
    show_kind: bool = False,
) -> str:
    """One kind's table as tab-separated lines (not yet aligned), each ending in a newline."""
    cols = tables.columns(kind)
    keep = [i for i, c in enumerate(cols) if wide or c.priority == 0]
    with_ns = all_namespaces and _namespaced(kind)
    name_ix = tables.name_column(kind)
    lines: list[str] = []
    if not no_headers:
        header = [cols[i].header for i in keep]
        if with_ns:
            header.insert(0, "NAMESPACE")
        header += [_label_header(k) for k in label_columns]
        if show_labels:
            header.append("LABELS")
        lines.append("\t".join(header))
    prefix = _type_name(kind) + "/"
    for obj in objs:
        cells = tables.row(obj, now)
        if show_kind and name_ix < len(cells):
            cells = list(cells)
            cells[name_ix] = prefix + cells[name_ix]
        row = [cells[i] if i < len(cells) else "" for i in keep]
        meta = obj.get("metadata") or {}
        if with_ns:
            row.insert(0, str(meta.get("namespace") or ""))
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = {}
        row += [str(labels.get(k, "")) for k in label_columns]
        if show_labels:
            row.append(tables.format_labels(labels))
        lines.append("\t".join(row))
    return "".join(line + "\n" for line in lines)


def render_tables(
    groups: list[tuple[str, list[dict[str, Any]]]],
    *,
    now: datetime,
    wide: bool = False,
    all_namespaces: bool = False,
    show_labels: bool = False,
    label_columns: Sequence[str] = (),
    no_headers: bool = False,
    show_kind: bool = False,
) -> str:
    """``kubectl get`` tables, one per (kind, objects) group, blank line between printed tables.

    Empty groups print nothing (the caller reports ``No resources found``).
    """
    out: list[str] = []
    for kind, objs in groups:
        if not objs:
            continue
        raw = render_table(
            kind, objs, now=now, wide=wide, all_namespaces=all_namespaces, show_labels=show_labels,
            label_columns=label_columns, no_headers=no_headers, show_kind=show_kind,
        )
        if out and not no_headers:
            out.append("\n")
        out.append(tabwrite(raw))
    return "".join(out)


# ----------------------------------------------------------------------------------- -o formats


def render_name(objs: Iterable[dict[str, Any]]) -> str:
    """``-o name``: ``service/web`` per line (``deployment.apps/web`` for grouped kinds)."""
    lines = []
    for obj in objs:
        name = (obj.get("metadata") or {}).get("name", "")
        lines.append(f"{_type_name(str(obj.get('kind', '')))}/{name}\n")
    return "".join(lines)


def as_list(objs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``kind: List`` wrapper kubectl prints around several objects."""
    return {"apiVersion": "v1", "items": list(objs), "kind": "List", "metadata": {"resourceVersion": ""}}


def _data(objs: Sequence[dict[str, Any]], single: bool) -> Any:
    if single and len(objs) == 1:
        return objs[0]
    return as_list(objs)


def render_json(objs: Sequence[dict[str, Any]], single: bool, sort_keys: bool = True) -> str:
    """``-o json``: one object as itself, several (or a list request) as a List. Keys are sorted as Go
    marshals the unstructured objects `get` prints; generators (typed objects) keep their field order."""
    return to_json(_data(objs, single), sort_keys=sort_keys)


def render_yaml(objs: Sequence[dict[str, Any]], single: bool) -> str:
    """``-o yaml``: one object as itself, several (or a list request) as a List."""
    return to_yaml(_data(objs, single))


def compile_jsonpath(template: str, allow_missing_keys: bool = True) -> JSONPath:
    """Parse a ``-o jsonpath`` template; ClientError ``error parsing jsonpath <t>, <why>``."""
    try:
        return JSONPath(template, allow_missing_keys=allow_missing_keys)
    except JSONPathError as exc:
        raise ClientError(f"error parsing jsonpath {template}, {exc}") from None


def render_jsonpath(template: str, data: Any, allow_missing_keys: bool = True) -> str:
    """``-o jsonpath=<template>`` over ``data`` (an object, or the List for several): no newline added."""
    path = compile_jsonpath(template, allow_missing_keys)
    try:
        return path.execute(data)
    except JSONPathError as exc:
        raise ClientError(
            f'error executing jsonpath "{template}": Error executing template: {exc}. '
            f"Printing more information for debugging the template:\n\ttemplate was:\n\t\t{template}\n"
        ) from None


def _relaxed(expr: str) -> str:
    """``RelaxedJSONPathExpression``: ``name.x``, ``.name.x``, ``{name.x}`` -> ``{.name.x}``."""
    if expr == "":
        return expr
    body = None
    if expr.startswith("{") and expr.endswith("}") and "{" not in expr[1:-1] and "}" not in expr[1:-1]:
        body = expr[1:-1]
        if body.startswith("."):
            body = body[1:]
    elif "{" not in expr and "}" not in expr:
        body = expr[1:] if expr.startswith(".") else expr
    if not body:
        raise ClientError(
            "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or "
            "'{.name1.name2}'"
        )
    return "{." + body + "}"


def parse_custom_columns(spec: str) -> list[tuple[str, JSONPath]]:
    """``NAME:.metadata.name,IP:.spec.clusterIP`` -> [(header, compiled path)]."""
    if not spec:
        raise ClientError("custom-columns format specified but no custom columns given")
    cols = []
    for part in spec.split(","):
        header, sep, expr = part.partition(":")
        if not sep:
            raise ClientError(f"unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>")
        cols.append((header, compile_jsonpath(_relaxed(expr), allow_missing_keys=True)))
    return cols


def render_custom_columns(spec: str, objs: Iterable[dict[str, Any]], no_headers: bool = False) -> str:
    """``-o custom-columns=<spec>``: one aligned row per object, ``<none>`` for missing values."""
    cols = parse_custom_columns(spec)
    lines: list[str] = []
    if not no_headers:
        lines.append("\t".join(h for h, _ in cols))
    for obj in objs:
        cells = []
        for _, path in cols:
            try:
                groups = path.find_results(obj)
            except JSONPathError as exc:
                raise ClientError(str(exc)) from None
            values = [v for g in groups for v in g]
            if not groups or not groups[0]:
                cells.append(",".join(["<none>"] + [go_sprint(v) for v in values]))
            else:
                cells.append(",".join(go_sprint(v) for v in values))
        lines.append("\t".join(cells))
    return tabwrite("".join(line + "\n" for line in lines))


# ------------------------------------------------------------------------- go-template, *-file, managed fields


def render_go_template(template: str, data: Any) -> str:
    """``-o go-template=<template>`` (``kubesvc.api.gotemplate``'s subset of Go's text/template)."""
    from kubesvc.api.gotemplate import Template, TemplateError, to_go_values

    try:
        parsed = Template(template)
    except TemplateError as exc:
        raise ClientError(f"error parsing template {template}, template: output:1: {exc}") from None
    try:
        return parsed.execute(to_go_values(data))
    except TemplateError as exc:
        raise ClientError(f'error executing template "{template}": template: output: executing "output": {exc}') from None


def render_jsonpath_as_json(template: str, data: Any) -> str:
    """``-o jsonpath-as-json=<template>``: each part's results as an indented JSON array (Go's
    ``json.MarshalIndent`` with four spaces), one array per part, as kubectl prints them."""
    import json

    path = compile_jsonpath(template, True)
    try:
        groups = path.find_results(data)
    except JSONPathError as exc:
        raise ClientError(f'error executing jsonpath "{template}": Error executing template: {exc}. '
                          f"Printing more information for debugging the template:\n\ttemplate was:\n\t\t{template}\n") from None
    out = []
    for g in groups:
        text = json.dumps(g, indent=4, sort_keys=True, ensure_ascii=False)
        out.append(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n")
    return "".join(out)


def custom_columns_from_file(text: str) -> str:
    """A ``custom-columns-file``: a line of headers and a line of field specs, whitespace-separated,
    turned into the ``-o custom-columns=`` spec."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != 2:
        raise ClientError(f"unexpected custom-columns-file format: expected 2 lines (headers and field specifications), got {len(lines)}")
    headers, specs = lines[0].split(), lines[1].split()
    if len(headers) != len(specs):
        raise ClientError(f"number of headers ({len(headers)}) and field specifications ({len(specs)}) don't match")
    return ",".join(f"{h}:{s}" for h, s in zip(headers, specs, strict=True))


def strip_managed_fields(obj: Any) -> Any:
    """kubectl drops ``metadata.managedFields`` from what it prints unless ``--show-managed-fields``
    (in objects and in a List's items); the object given is left as it was."""
    if not isinstance(obj, dict):
        return obj
    if isinstance(obj.get("items"), list):
        obj = {**obj, "items": [strip_managed_fields(i) for i in obj["items"]]}
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj
