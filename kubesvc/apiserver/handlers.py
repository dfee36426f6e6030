"""Routing and the REST verbs over ``Registry``: one function per verb, no HTTP plumbing.

Rules kept here (kubectl-wire.md §4, §5, §7, §9):
- Paths: ``/api/v1[/namespaces/{ns}]/{resource}[/{name}]`` and ``/apis/{group}/{version}/...``; names and
  namespaces are single path segments (``/``, ``%``, ``.`` and ``..`` are refused with a 400 before any
  lookup), unknown resources get the 404 Status.
- Bodies: JSON (a missing Content-Type means JSON: the Python client sends none on create and replace; the
  transport, server.py, lets that through only for a request with a credential), YAML for apply-patch.
  ``kind``/``apiVersion`` default from the URL and must match it; ``metadata.namespace`` defaults from
  the URL and must match it; ``metadata.name`` on PUT must match the URL.
- Writes call ``Registry`` only (validation, defaulting, allocation, endpoints: the CLI's code path).
  ``dryRun=All`` runs the pipeline and rolls back; ``fieldValidation`` Strict/Warn/Ignore maps to the
  registry's strict/warn/ignore (absent = Warn, as on a real apiserver); warnings become ``Warning``
  response headers.
- PATCH: merge / JSON / strategic patch onto the live object, then a replace carrying the live
  resourceVersion (retried on a concurrent change unless the patch named a resourceVersion).
- Field managers: every write names one, ``?fieldManager=`` or else the User-Agent before its first
  ``/`` (``kubectl``, ``OpenAPI-Generator``); at most 128 printable characters (422 otherwise). The
  registry keeps ``metadata.managedFields`` (``api.managedfields``).
- Server-side apply (``application/apply-patch+yaml``, ``fieldManager`` required, ``force`` only
  there): creates a missing object (201) or merges the applied configuration into the live one with
  field ownership; conflicts are the apiserver's 409 with one ``FieldManagerConflict`` cause per field.
- Reads: ``as=Table`` in Accept gives a server-side Table (``views.table``), else objects and lists.
  ``limit``/``continue`` page by (namespace, name).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from kubesvc.api.kinds import Kind
from kubesvc.apiserver import discovery, views
from kubesvc.apiserver import patch as patchlib
from kubesvc.apiserver.discovery import Resource
from kubesvc.apiserver.selection import Filter, parse_fields, parse_labels
from kubesvc.apiserver.status import ApiError, bad_request, not_found_path, status, success
from kubesvc.errors import Conflict, KubesvcError
from kubesvc.registry.generic import Registry

JSON = "application/json"
MAX_BODY = 3 * 1024 * 1024  # the apiserver's request size limit
_VALIDATION = {"Strict": "strict", "Warn": "warn", "Ignore": "ignore"}
_STREAMING = {"Pod": ("log", "exec", "attach", "portforward", "proxy"), "Service": ("proxy",)}  # streams.py


@dataclass
class Request:
    method: str
    path: str  # raw path, still percent-encoded
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Request:
        path, _, qs = target.partition("?")
        return cls(method, path, parse_qs(qs, keep_blank_values=True), {k.lower(): v for k, v in headers.items()}, body)

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str) -> bool:
        """Go's strconv.ParseBool (the Python client 33.x sends ``watch=True``)."""
        return self.param(name).strip() in ("1", "t", "T", "TRUE", "true", "True")

    @property
    def wants_table(self) -> bool:
        return views.TABLE_ACCEPT in self.headers.get("accept", "")


@dataclass
class Response:
    code: int
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | Any | None = None  # chunked, one JSON line per event; a watch.WatchStream for watches


def json_response(code: int, obj: Any, warnings: list[str] | None = None) -> Response:
    # a newline after the document, as Go's json.Encoder writes it (clients compare error bodies byte for byte)
    try:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from the request: escaped, still valid JSON
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()
    resp = Response(code, body + b"\n")
    for w in warnings or ():
        # a quoted-string of ASCII only: control bytes or CR/LF from a field name must never reach the head
        resp.headers.append(("Warning", "299 - " + json.dumps(w, ensure_ascii=True)))
    return resp


@dataclass
class Context:
    registry: Registry
    server_address: str
    stop: threading.Event
    alive: Callable[[], bool] = lambda: True
    bookmark_interval: float = 30.0
    watch_timeout: float = 1800.0


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------- routing


def _segments(path: str) -> list[str]:
    raw = [s for s in path.split("/")]
    if raw and raw[0] == "":
        raw = raw[1:]
    if raw and raw[-1] == "" and len(raw) > 1:
        raw = raw[:-1]
    return raw


def _name_segment(raw: str, what: str) -> str:
    value = unquote(raw)
    if value in (".", ".."):
        raise bad_request(f'{what} "{value}" is invalid: may not be \'{value}\'')
    for bad in ("/", "%"):
        if bad in value:
            raise bad_request(f'{what} "{value}" is invalid: may not contain \'{bad}\'')
    if not value:
        raise not_found_path()
    return value


def handle(req: Request, ctx: Context) -> Response:
    try:
        return _route(req, ctx)
    except ApiError as e:
        return json_response(e.code, status(e.code, e.reason, e.message, e.details))
    except KubesvcError as e:
        from kubesvc.apiserver.status import from_error

        st = from_error(e)
        return json_response(st["code"], st)


def _route(req: Request, ctx: Context) -> Response:
    segs = _segments(req.path)
    if req.method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    if not segs or segs == [""]:
        return json_response(200, {"paths": ["/api", "/api/v1", "/apis", *[f"/apis/{gv}" for gv in discovery.group_versions() if "/" in gv],
                                             "/openapi/v2", "/openapi/v3", "/healthz", "/livez", "/readyz", "/version"]})
    head = segs[0]
    if head in ("healthz", "livez", "readyz") and len(segs) == 1:
        return Response(200, b"ok", "text/plain; charset=utf-8")
    if head == "version" and len(segs) == 1:
        return json_response(200, discovery.SERVER_VERSION)
    if head == "openapi":
        return _openapi(req, segs[1:])
    if head == "api":
        if len(segs) == 1:
            return json_response(200, discovery.api_versions(ctx.server_address))
        return _group_version(req, ctx, segs[1], segs[2:])
    if head == "apis":
        if len(segs) == 1:
            return json_response(200, discovery.api_group_list())
        if len(segs) == 2:
            group = discovery.api_group(segs[1])
            if group is None:
                raise not_found_path()
            return json_response(200, group)
        return _group_version(req, ctx, f"{segs[1]}/{segs[2]}", segs[3:])
    raise not_found_path()


def _openapi(req: Request, rest: list[str]) -> Response:
    from kubesvc.apiserver import openapi  # built from schemas/ on first use, then cached

    found = openapi.answer(rest, req.headers.get("accept", ""), req.headers.get("if-none-match", ""), req.param("hash"))
    if found is None:
        raise not_found_path()
    code, body, content_type, headers = found
    return Response(code, body, content_type, headers)


def _group_version(req: Request, ctx: Context, gv: str, rest: list[str]) -> Response:
    if not rest:
        listing = discovery.resource_list(gv)
        if listing is None:
            raise not_found_path()
        return json_response(200, listing)
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        res = discovery.lookup(gv, rest[2])
        if res is not None and res.kind.namespaced:
            namespace = _name_segment(rest[1], "namespace")
            return _resource(req, ctx, res, namespace, rest[3:])
    res = discovery.lookup(gv, rest[0])
    if res is None:
        raise not_found_path()
    tail = rest[1:]
    if res.kind.namespaced and tail:
        raise not_found_path()
    return _resource(req, ctx, res, None, tail)


def _resource(req: Request, ctx: Context, res: Resource, namespace: str | None, tail: list[str]) -> Response:
    if (len(tail) >= 2 and namespace is not None and tail[1] in _STREAMING.get(res.kind.kind, ())
            and not res.converted):
        from kubesvc.apiserver import streams  # log, exec, attach, portforward, proxy

        _name_segment(tail[0], "name")
        return streams.route(req, ctx, res.kind.kind, namespace, tail[0], tail[1], tail[2:])
    if len(tail) > 2:
        raise not_found_path()
    if res.converted:  # autoscaling/v1 HPA: converted to and from the stored version
        from kubesvc.apiserver import versions

        return versions.serve(req, ctx, res, namespace, tail)
    name = _name_segment(tail[0], "name") if tail else None
    sub = tail[1] if len(tail) == 2 else None
    if sub == "scale" and name is not None:  # the workloads' autoscaling/v1 Scale
        from kubesvc.apiserver import scale as scaleapi

        return scaleapi.serve(req, ctx, res, namespace or "", name)
    if sub is not None and sub != "status":
        raise not_found_path()
    verb = req.method
    if res.derived and verb not in ("GET", "HEAD"):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    if sub is not None and verb != "GET":
        raise ApiError(405, "MethodNotAllowed", "kubesvc does not serve writes to the status subresource")
    k = res.kind
    if name is None:
        if verb in ("GET", "HEAD"):
            if req.flag("watch"):
                from kubesvc.apiserver.watch import watch

                return watch(req, ctx, res, namespace)
            return _list(req, ctx, res, namespace)
        if verb == "POST":
            if namespace is None and k.namespaced:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            return _create(req, ctx, k, namespace or "")
        if verb == "DELETE":
            return _delete_collection(req, ctx, res, namespace)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    ns = namespace or ""
    if verb in ("GET", "HEAD"):
        obj = _get(ctx, res, ns, name)
        if req.wants_table:
            return json_response(200, views.table(k, [obj], None, now(), req.param("includeObject", "Metadata")))
        return json_response(200, views.with_type(obj, k))
    if verb == "PUT":
        return _replace(req, ctx, k, ns, name)
    if verb == "PATCH":
        return _patch(req, ctx, k, ns, name)
    if verb == "DELETE":
        return _delete(req, ctx, k, ns, name)
    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


# ----------------------------------------------------------------------------------------------- reads


def snapshot(ctx: Context, res: Resource, flt: Filter) -> tuple[int, list[dict[str, Any]]]:
    """A consistent (revision, matching objects) pair."""
    rev, by_kind = ctx.registry.store.list_with_revision((res.kind.kind,))
    return rev, [o for o in by_kind[res.kind.kind] if flt.matches(o)]


def _get(ctx: Context, res: Resource, ns: str, name: str) -> dict[str, Any]:
    found = ctx.registry.store.get(res.kind.kind, ns if res.kind.namespaced else "", name)
    return found if found is not None else ctx.registry.get(res.kind.kind, ns, name)


def request_filter(req: Request, k: Kind, namespace: str | None) -> Filter:
    return Filter(namespace if k.namespaced else None, parse_labels(req.param("labelSelector")),
                  parse_fields(req.param("fieldSelector"), k.kind))


def _key(obj: dict[str, Any]) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def _list(req: Request, ctx: Context, res: Resource, namespace: str | None) -> Response:
    k = res.kind
    rev, items = snapshot(ctx, res, request_filter(req, k, namespace))
    cont = req.param("continue")
    if cont:
        try:
            after = json.loads(base64.urlsafe_b64decode(cont.encode()).decode())["after"]
        except (ValueError, KeyError, TypeError):
            raise ApiError(410, "Expired", "the provided continue parameter is too old to display a consistent list result") from None
        items = [o for o in items if _key(o) > after]
    token = ""
    limit_text = req.param("limit")
    if limit_text:
        try:
            limit = int(limit_text)
        except ValueError:
            raise bad_request(f'invalid value for limit: "{limit_text}"') from None
        if 0 < limit < len(items):
            items = items[:limit]
            token = base64.urlsafe_b64encode(json.dumps({"after": _key(items[-1])}).encode()).decode()
    if req.wants_table:
        return json_response(200, views.table(k, items, rev, now(), req.param("includeObject", "Metadata"), token))
    return json_response(200, views.list_body(k, items, rev, token))


# ---------------------------------------------------------------------------------------------- writes


def _options(req: Request) -> tuple[bool, str]:
    dry = req.query.get("dryRun", [])
    for d in dry:
        if d != "All":
            raise bad_request(f'Invalid dryRun value: "{d}"; supported values: "All"')
    fv = req.param("fieldValidation", "Warn")
    if fv not in _VALIDATION:
        raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", not "{fv}"')
    return bool(dry), _VALIDATION[fv]


PROTOBUF = "application/vnd.kubernetes.protobuf"


def decode_body(req: Request, yaml_ok: bool = False) -> Any:
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in ("application/json", "*/*", *patchlib.PATCH_TYPES, "application/yaml", PROTOBUF):
        raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: "
                       f"application/json, application/yaml, {PROTOBUF}")
    if len(req.body) > MAX_BODY:
        raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
    if ctype == PROTOBUF:  # decoded to the dict the JSON of the same object gives
        from kubesvc.apiserver import protobuf  # its tables load on the first protobuf body

        try:
            return protobuf.decode(req.body)
        except protobuf.ProtobufError as e:
            raise bad_request(f"the request body is not valid protobuf: {e}") from None
    if not req.body.strip():
        raise bad_request("the request body is empty: a JSON object is required")
    from kubesvc.api import untrusted

    try:
        return untrusted.loads(req.body)
    except ValueError as e:
        if not (yaml_ok or ctype == "application/yaml"):
            raise bad_request(f"the request body is not valid JSON: {e}") from None
    from kubesvc.api import yamlload  # the manifests' reader: YAML 1.1, aliases bounded before they expand

    try:
        return yamlload.load(req.body.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the request body is not valid YAML: it is not UTF-8 text") from None
    except yamlload.YAMLLoadError as e:
        raise bad_request(f"the request body is not valid YAML: {e}") from None


def _typed_object(body: Any, k: Kind, namespace: str) -> dict[str, Any]:
    """The request object with kind/apiVersion/namespace defaulted from the URL and checked against it."""
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, not {type(body).__name__}")
    obj = copy.deepcopy(body)
    api_version = obj.get("apiVersion") or k.api_version
    kind = obj.get("kind") or k.kind
    if api_version != k.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the expected API version ({k.api_version})")
    if kind != k.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({k.kind})")
    obj["apiVersion"], obj["kind"] = api_version, kind
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request(f"{k.kind} in version \"{k.version}\" cannot be handled as a {k.kind}: "
                          f"json: cannot unmarshal {type(meta).__name__} into Go struct field {k.kind}.metadata of type v1.ObjectMeta")
    if k.namespaced:
        given = meta.get("namespace")
        if given and given != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if meta.get("creationTimestamp", "") is None:
        del meta["creationTimestamp"]
    return obj


def field_manager(req: Request, options: str, apply: bool = False) -> str:
    """The request's manager: ``fieldManager``, else the User-Agent's prefix (upstream managerOrUserAgent),
    with ValidatePatchOptions' checks (422 ``<options>.meta.k8s.io "" is invalid``)."""
    from kubesvc.api import managedfields as mf

    given = req.param("fieldManager")
    causes: list[tuple[str, str, str]] = []
    if options == "PatchOptions":
        if not apply and "force" in req.query:
            causes.append(("FieldValueForbidden", "Forbidden: may not be specified for non-apply patch", "force"))
        if apply and not given:
            causes.append(("FieldValueRequired", "Required value: is required for apply patch", "fieldManager"))
    causes += [("FieldValueInvalid", e.split(": ", 1)[1], "fieldManager") for e in mf.manager_errors(given)]
    if causes:
        text = ", ".join(f"{f}: {m}" for _, m, f in causes)
        message = f'{options}.meta.k8s.io "" is invalid: {text if len(causes) == 1 else "[" + text + "]"}'
        raise ApiError(422, "Invalid", message, {"group": "meta.k8s.io", "kind": options,
                                                  "causes": [{"reason": r, "message": m, "field": f} for r, m, f in causes]})
    return given or mf.manager_from_user_agent(req.headers.get("user-agent", ""))


def _create(req: Request, ctx: Context, k: Kind, namespace: str) -> Response:
    dry, validate = _options(req)
    manager = field_manager(req, "CreateOptions")
    obj = _typed_object(decode_body(req), k, namespace)
    name = (obj["metadata"] or {}).get("name")
    if name:
        _name_segment(str(name), "name")
    if k.kind == "Service":
        obj.pop("status", None)  # server-owned (kubectl expose sends an empty one)
    result = ctx.registry.create(obj, dry_run=dry, validate=validate, manager=manager)
    return json_response(201, views.with_type(result.object, k), result.warnings)


def _replace(req: Request, ctx: Context, k: Kind, ns: str, name: str) -> Response:
    dry, validate = _options(req)
    manager = field_manager(req, "UpdateOptions")
    obj = _typed_object(decode_body(req), k, ns)
    given = obj["metadata"].get("name")
    if given != name:
        raise bad_request(f"the name of the object ({given}) does not match the name on the URL ({name})")
    result = ctx.registry.replace(obj, dry_run=dry, validate=validate, manager=manager)
    return json_response(200, views.with_type(result.object, k), result.warnings)


def _patch(req: Request, ctx: Context, k: Kind, ns: str, name: str) -> Response:
    dry, validate = _options(req)
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in patchlib.PATCH_TYPES:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: {', '.join(patchlib.PATCH_TYPES)}")
    manager = field_manager(req, "PatchOptions", apply=ctype == patchlib.APPLY_YAML)
    body = decode_body(req, yaml_ok=ctype == patchlib.APPLY_YAML)
    if ctype == patchlib.APPLY_YAML:
        return _server_side_apply(req, ctx, k, ns, name, body, dry, validate, manager)
    for attempt in range(5):
        live = ctx.registry.get(k.kind, ns, name)
        patched = patchlib.apply(views.with_type(live, k), ctype, body)
        _check_identity(patched, k, ns, name)
        pinned = patched["metadata"].get("resourceVersion") != live["metadata"].get("resourceVersion")
        if not pinned:
            patched["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        try:
            result = ctx.registry.replace(patched, dry_run=dry, validate=validate, manager=manager)
        except Conflict:
            if pinned or attempt == 4:
                raise
            continue
        return json_response(200, views.with_type(result.object, k), result.warnings)
    raise AssertionError("unreachable")


def _check_identity(obj: dict[str, Any], k: Kind, ns: str, name: str) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("the patched object has no metadata")
    if obj.get("kind") != k.kind or obj.get("apiVersion") != k.api_version:
        raise bad_request(f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({k.kind})")
    if meta.get("name") != name:
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    if k.namespaced and meta.get("namespace", ns) != ns:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")


def _server_side_apply(req: Request, ctx: Context, k: Kind, ns: str, name: str, body: Any, dry: bool,
                       validate: str, manager: str) -> Response:
    """Server-side apply through ``Registry.server_side_apply`` (field ownership, conflicts, ``force``)."""
    from kubesvc.api.managedfields import ApplyConflict

    obj = _typed_object(body, k, ns)
    if obj["metadata"].get("name") != name:
        raise bad_request(f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})")
    if k.kind == "Service":
        obj.pop("status", None)
    for attempt in range(5):
        try:
            result = ctx.registry.server_side_apply(obj, manager=manager, force=req.flag("force"), dry_run=dry,
                                                    validate=validate)
        except ApplyConflict as e:
            raise ApiError(409, "Conflict", e.message, {"causes": e.causes()}) from None
        except Conflict:
            if attempt == 4:
                raise
            continue
        return json_response(201 if result.action == "created" else 200, views.with_type(result.object, k), result.warnings)
    raise AssertionError("unreachable")


def _delete_options(req: Request) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if req.body.strip():
        body = decode_body(req)
        if not isinstance(body, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        opts = body
    policy = req.param("propagationPolicy") or opts.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported values: "Background", "Foreground", "Orphan"')
    dry = opts.get("dryRun") or []
    if isinstance(dry, list) and dry:
        req.query.setdefault("dryRun", []).extend(str(d) for d in dry)
    return opts


def _delete(req: Request, ctx: Context, k: Kind, ns: str, name: str) -> Response:
    opts = _delete_options(req)
    dry, _ = _options(req)
    pre = opts.get("preconditions") or {}
    if pre:
        live = ctx.registry.get(k.kind, ns, name)
        meta = live["metadata"]
        for key, word in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if pre.get(key) and pre[key] != meta.get(key):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {k.resource} "{name}": Precondition failed: '
                                                f'{word} in precondition: {pre[key]}, {word} in object meta: {meta.get(key)}',
                               {"name": name, "group": k.group, "kind": k.plural})
    policy = req.param("propagationPolicy") or opts.get("propagationPolicy")
    if policy is None and opts.get("orphanDependents") is True:  # the older DeleteOptions field
        policy = "Orphan"
    grace = req.param("gracePeriodSeconds") or opts.get("gracePeriodSeconds")
    try:
        grace_period = None if grace is None or grace == "" else int(grace)
    except (TypeError, ValueError):
        raise bad_request(f'gracePeriodSeconds: Invalid value: "{grace}": must be an integer') from None
    old = ctx.registry.delete(k.kind, ns, name, dry_run=dry, propagation=policy or "Background", grace_period=grace_period)
    return json_response(200, views.with_type(old, k))


def _delete_collection(req: Request, ctx: Context, res: Resource, namespace: str | None) -> Response:
    k = res.kind
    _delete_options(req)
    dry, _ = _options(req)
    _, items = snapshot(ctx, res, request_filter(req, k, namespace))
    deleted = []
    for obj in items:
        meta = obj["metadata"]
        try:
            deleted.append(ctx.registry.delete(k.kind, meta.get("namespace", ""), meta["name"], dry_run=dry))
        except KubesvcError:
            continue  # deleted meanwhile (or protected): the collection delete goes on
    return json_response(200, views.list_body(k, deleted, ctx.registry.store.revision()))


__all__ = ["Context", "Request", "Response", "handle", "json_response", "success", "MAX_BODY"]
