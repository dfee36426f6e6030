"""HTTP side of the ``/scale`` subresource: GET, PUT and PATCH of ``<workload>/NAME/scale`` as an
autoscaling/v1 Scale; the rules live in ``kubesvc.registry.scale``.

Rules kept here:
- PUT bodies are Scales (a missing Content-Type is JSON: kubectl's ``scale --current-replicas`` PUT sends
  none); kind/apiVersion default to ``Scale``/``autoscaling/v1`` and must match; ``metadata.name`` must
  match the URL; wrong JSON types are the decoder's 400 (``json: cannot unmarshal string into Go struct
  field ScaleSpec.spec.replicas of type int32``).
- PATCH (merge, JSON, strategic; apply-patch merges the applied Scale) is applied to the live Scale, then
  written like a PUT carrying the live resourceVersion (retried on a concurrent change unless the patch
  named a resourceVersion).
- ``dryRun=All`` runs the whole write and stores nothing.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from kubesvc.apiserver import patch as patchlib
from kubesvc.apiserver.status import ApiError, bad_request, not_found_path
from kubesvc.errors import Conflict

if TYPE_CHECKING:
    from kubesvc.api.kinds import Kind
    from kubesvc.apiserver.discovery import Resource
    from kubesvc.apiserver.handlers import Context, Request, Response


def serve(req: Request, ctx: Context, res: Resource, ns: str, name: str) -> Response:
    from kubesvc.apiserver.handlers import _options, decode_body, json_response
    from kubesvc.registry import scale as scalelib

    k = res.kind
    if k.kind not in scalelib.SCALABLE or res.derived or res.converted:
        raise not_found_path()
    if req.method in ("GET", "HEAD"):
        return json_response(200, scalelib.get_scale(ctx.registry, k.kind, ns, name))
    if req.method not in ("PUT", "PATCH"):
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    dry, _ = _options(req)
    if req.method == "PUT":
        body = scale_object(decode_body(req), k, ns, name)
        return json_response(200, scalelib.update_scale(ctx.registry, k.kind, ns, name, body, dry_run=dry))
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in patchlib.PATCH_TYPES:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: {', '.join(patchlib.PATCH_TYPES)}")
    body = decode_body(req, yaml_ok=ctype == patchlib.APPLY_YAML)
    for attempt in range(5):
        live = scalelib.get_scale(ctx.registry, k.kind, ns, name)
        if ctype == patchlib.APPLY_YAML:  # the applied Scale's fields over the live one
            patched = patchlib.merge_patch(live, scale_object(body, k, ns, name))
        else:
            patched = patchlib.apply(live, ctype, body)
        patched = scale_object(patched, k, ns, name)
        pinned = patched["metadata"].get("resourceVersion") != live["metadata"].get("resourceVersion")
        if not pinned:
            patched["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion")
        try:
            return json_response(200, scalelib.update_scale(ctx.registry, k.kind, ns, name, patched, dry_run=dry))
        except Conflict:
            if pinned or attempt == 4:
                raise
    raise AssertionError("unreachable")


_CANNOT = 'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '


def scale_object(body: Any, k: Kind, ns: str, name: str) -> dict[str, Any]:
    """A Scale body checked as the apiserver's decoder and ScaleREST do (kind, version, name, namespace)."""
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, not {type(body).__name__}")
    obj = copy.deepcopy(body)
    api_version, kind = obj.get("apiVersion") or "autoscaling/v1", obj.get("kind") or "Scale"
    if kind != "Scale":
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind (Scale)")
    if api_version != "autoscaling/v1":
        raise bad_request(f"the API version in the data ({api_version}) does not match the expected API version (autoscaling/v1)")
    obj["apiVersion"], obj["kind"] = api_version, kind
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise bad_request(f"{_CANNOT}{_json_type(meta)} into Go struct field Scale.metadata of type v1.ObjectMeta")
    spec = obj.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise bad_request(f"{_CANNOT}{_json_type(spec)} into Go struct field Scale.spec of type v1.ScaleSpec")
    replicas = (spec or {}).get("replicas")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int)):
        if not (isinstance(replicas, float) and replicas.is_integer()):
            raise bad_request(f"{_CANNOT}{_json_type(replicas)} into Go struct field ScaleSpec.spec.replicas of type int32")
        obj["spec"]["replicas"] = int(replicas)
    given = meta.get("name") or name
    if given != name:
        raise bad_request(f"the name of the object ({given}) does not match the name on the URL ({name})")
    if k.namespaced and meta.get("namespace") and meta["namespace"] != ns:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    return obj


def _json_type(value: Any) -> str:
    if isinstance(value, float):
        return f"number {value:g}"
    return {str: "string", bool: "bool", list: "array", dict: "object"}.get(type(value), "value")
