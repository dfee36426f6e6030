"""`kubesvc get`: list or fetch resources, kubectl's tables and -o formats, and -w watch."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import Exit, Failure, NamespaceOpt, OutputOpt, SelectorOpt, StoreOpt
from kubesvc.errors import ClientError, NotFound

NO_TYPE = (
    'You must specify the type of resource to get. Use "kubesvc get all" or one of: pods (po), services (svc), '
    "endpoints (ep), replicationcontrollers (rc), namespaces (ns), configmaps (cm), secrets, events (ev), "
    "deployments (deploy), replicasets (rs), ingresses (ing), ingressclasses"
)


def parse_targets(args: list[str]) -> list[tuple[str, list[str] | None]]:
    """kubectl's argument forms: `TYPE[,TYPE] [NAME...]`, `TYPE/NAME...`, `all`."""
    from kubesvc.api.kinds import ALL_CATEGORY, resolve

    if not args:
        raise ClientError(NO_TYPE)
    if "/" in args[0]:
        out: list[tuple[str, list[str] | None]] = []
        for a in args:
            if "/" not in a:
                raise ClientError("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubesvc get resource/<resource_name>' instead of 'kubesvc get resource resource/<resource_name>'")
            t, _, n = a.partition("/")
            kind = resolve(t).kind
            for existing in out:
                if existing[0] == kind and existing[1] is not None:
                    existing[1].append(n)
                    break
            else:
                out.append((kind, [n]))
        return out
    types: list[str] = []
    for t in args[0].split(","):
        if t == "all":
            types.extend(ALL_CATEGORY)
        elif t:
            types.append(resolve(t).kind)
    names = args[1:] or None
    seen: list[str] = []
    for t in types:
        if t not in seen:
            seen.append(t)
    return [(t, list(names) if names else None) for t in seen]


def get(
    args: Annotated[list[str] | None, typer.Argument(help="TYPE[,TYPE...] [NAME...] or TYPE/NAME...")] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces.")] = False,
    output: OutputOpt = None,
    selector: SelectorOpt = None,
    show_labels: Annotated[bool, typer.Option("--show-labels", help="Show all labels as the last column.")] = False,
    label_columns: Annotated[list[str] | None, typer.Option("--label-columns", "-L", help="Labels to show as columns.")] = None,
    no_headers: Annotated[bool, typer.Option("--no-headers", help="Don't print headers.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="After listing, watch for changes.")] = False,
    watch_only: Annotated[bool, typer.Option("--watch-only", help="Watch for changes without listing first.")] = False,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found", help="Treat 'not found' as success.")] = False,
    request_timeout: Annotated[str, typer.Option("--request-timeout", help="Stop watching after this long (e.g. 5s); 0 = forever.")] = "0",
    sort_by: Annotated[str | None, typer.Option("--sort-by", help="Sort list types using this field specification (a JSONPath expression, e.g. '{.metadata.name}').")] = None,
    field_selector: Annotated[str | None, typer.Option("--field-selector", help="Selector (field query) to filter on, supports '=', '==', and '!=' (e.g. --field-selector key1=value1,key2=value2).")] = None,
    show_managed_fields: Annotated[bool, typer.Option("--show-managed-fields", help="Keep the managedFields when printing objects in JSON or YAML format.")] = False,
    store: StoreOpt = None,
) -> None:
    """Display one or many resources."""
    from kubesvc.api import selectors
    from kubesvc.api.kinds import BY_KIND

    targets = parse_targets(args or [])
    out_fmt = common.check_output(output, common.GET_FORMATS)
    ns, _ = common.namespace(namespace)
    sel = selectors.parse(selector) if selector else None
    if sel is not None and any(names for _, names in targets):
        raise ClientError("selectors and the all flag cannot be used when passing resource/name arguments")
    sorter = _sorter(sort_by) if sort_by else None
    fields = {kind: _field_terms(field_selector, kind, selector) for kind, _ in targets} if field_selector else {}
    reg = common.registry(store)
    start_rev = reg.store.revision()
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    failures: list[Failure] = []
    for kind, names in targets:
        k = BY_KIND[kind]
        scope = None if (all_namespaces or not k.namespaced) else ns
        if names:
            objs = []
            for n in names:
                try:
                    objs.append(reg.get(kind, ns, n))
                except NotFound as e:
                    if not ignore_not_found:
                        failures.append(Failure(e))
        else:
            objs = reg.list(kind, scope, sel)
        if fields.get(kind):
            objs = [o for o in objs if _fields_match(o, fields[kind])]
        if sorter is not None:
            objs = sorter(objs)
        groups.append((kind, objs))
    single = len(targets) == 1 and targets[0][1] is not None and len(targets[0][1]) == 1
    show_kind = len(targets) > 1
    objs_all = [o for _, objs in groups for o in objs]
    per_object = (watch or watch_only) and out_fmt not in ("", "wide")  # -w -o json: one object per event
    if not watch_only:
        if per_object:
            for kind, objs in groups:
                for o in objs:
                    _print([(kind, [o])], [o], out_fmt, True, show_kind, all_namespaces, show_labels, label_columns or [],
                           True, show_managed_fields)
        else:
            _print(groups, objs_all, out_fmt, single, show_kind, all_namespaces, show_labels, label_columns or [],
                   no_headers, show_managed_fields)
        if not objs_all and not failures and not out_fmt.startswith(("json", "yaml")) and not ignore_not_found:
            cluster = all(not BY_KIND[k].namespaced for k, _ in targets)
            where = "" if (all_namespaces or cluster) else f" in {ns} namespace."
            sys.stderr.write(f"No resources found{where}\n")
    if failures:
        common.print_failures(failures)
    if watch or watch_only:
        _watch(reg, start_rev, targets, None if all_namespaces else ns, sel, out_fmt, show_kind, all_namespaces,
               show_labels, label_columns or [], common.parse_timeout(request_timeout), fields, show_managed_fields)
    if failures:
        raise Exit(1)


def _print(groups: list[tuple[str, list[dict[str, Any]]]], objs_all: list[dict[str, Any]], out_fmt: str,
           single: bool, show_kind: bool, all_namespaces: bool, show_labels: bool, label_columns: list[str],
           no_headers: bool, show_managed_fields: bool = False) -> None:
    from kubesvc.cli import printers

    if out_fmt in ("", "wide"):
        text = printers.render_tables(
            [(k, objs) for k, objs in groups if objs], now=common.now(), wide=out_fmt == "wide",
            all_namespaces=all_namespaces, show_labels=show_labels,
            label_columns=tuple(c for cols in label_columns for c in cols.split(",") if c),
            no_headers=no_headers, show_kind=show_kind,
        )
        common.out(text)
    elif out_fmt.startswith("custom-columns="):
        if objs_all:
            common.out(printers.render_custom_columns(out_fmt[len("custom-columns="):], objs_all, no_headers=no_headers))
    elif out_fmt in ("json", "yaml") or out_fmt.startswith(("jsonpath=", "jsonpath-as-json=", "go-template=")):
        common.print_objects(objs_all, out_fmt, single and len(objs_all) == 1, show_managed_fields=show_managed_fields)
    else:
        common.print_objects(objs_all, out_fmt, single, show_managed_fields=show_managed_fields)


def _watch(reg: Any, since: int, targets: list[tuple[str, list[str] | None]], ns: str | None, sel: Any,
           out_fmt: str, show_kind: bool, all_namespaces: bool, show_labels: bool, label_columns: list[str],
           timeout: float, fields: dict[str, Any] | None = None, show_managed_fields: bool = False) -> None:
    from kubesvc.api.kinds import BY_KIND

    wanted = {k: names for k, names in targets}
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while deadline is None or time.monotonic() < deadline:
        remaining = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        rev = reg.store.wait_for_change(since, remaining, interval=0.02)
        if rev <= since:
            continue
        for ch in reg.store.changes(since):
            if ch.kind not in wanted:
                continue
            names = wanted[ch.kind]
            if names is not None and ch.name not in names:
                continue
            if ns is not None and BY_KIND[ch.kind].namespaced and ch.namespace != ns:
                continue
            if sel is not None and not sel.matches(ch.object["metadata"].get("labels") or {}):
                continue
            if fields and fields.get(ch.kind) and not _fields_match(ch.object, fields[ch.kind]):
                continue
            _print([(ch.kind, [ch.object])], [ch.object], out_fmt, True, show_kind, all_namespaces, show_labels,
                   label_columns, True, show_managed_fields)
            sys.stdout.flush()
        since = rev


def _field_terms(text: str, kind: str, label_selector: str | None) -> list[Any]:
    """``--field-selector`` terms for ``kind``: the fields the apiserver supports for it (every kind:
    metadata.name and metadata.namespace; pods: status.phase, spec.nodeName...; secrets and events: type...),
    else the apiserver's BadRequest as kubectl prints it."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.apiserver.selection import parse_fields
    from kubesvc.apiserver.status import ApiError
    from kubesvc.errors import BadRequest

    try:
        return parse_fields(text, kind)
    except ApiError as e:
        k = BY_KIND[kind]
        group, _, version = k.api_version.rpartition("/")
        raise BadRequest(f'Unable to find "{group}/{version}, Resource={k.resource}" that match label selector '
                         f'"{label_selector or ""}", field selector "{text}": {e.message}') from None


def _fields_match(obj: dict[str, Any], terms: list[Any]) -> bool:
    from kubesvc.apiserver.selection import field_value

    return all((field_value(obj, t.field) == t.value) != t.negate for t in terms)


def _sorter(spec: str) -> Any:
    """``--sort-by``: kubectl's relaxed JSONPath; numbers compare as numbers, strings byte-wise
    (``s10`` before ``s9``, as kubectl), objects without the field first; no object having it is kubectl's error."""
    from kubesvc.cli import printers

    expr = printers._relaxed(spec)
    path = printers.compile_jsonpath(expr, allow_missing_keys=True)

    def key(obj: dict[str, Any]) -> Any:
        try:
            groups = path.find_results(obj)
        except Exception:
            return (0, 0, "")
        values = [v for g in groups for v in g]
        if not values:
            return (0, 0, "")
        v = values[0]
        if isinstance(v, bool):
            return (1, int(v), "")
        if isinstance(v, (int, float)):
            return (1, v, "")
        if isinstance(v, str):
            return (2, 0, v)
        return (3, 0, str(v))

    def sort(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [key(o) for o in objs]
        if objs and all(k[0] == 0 for k in keys):
            raise ClientError(f'couldn\'t find any field with path "{expr}" in the list of objects')
        order = sorted(range(len(objs)), key=lambda i: keys[i])
        return [objs[i] for i in order]

    return sort
