"""Kinds served in a second version beside the one they are stored in, with the apiserver's conversion.

Rules kept here:
- ``autoscaling/v1`` HorizontalPodAutoscaler (what ``kubectl autoscale`` 1.32 POSTs) beside the stored
  ``autoscaling/v2`` (the group's preferred version, listed first in discovery).
- v1 -> v2: ``spec.targetCPUUtilizationPercentage`` becomes a ``Resource`` cpu ``Utilization`` metric;
  v2 -> v1: the first such metric becomes ``targetCPUUtilizationPercentage`` and
  ``status.currentMetrics``' cpu utilization ``status.currentCPUUtilizationPercentage``. Other metrics,
  the behavior and the conditions travel in the ``autoscaling.alpha.kubernetes.io/{metrics,behavior,
  conditions}`` annotations as upstream's conversion keeps them (as the v2 JSON here), so a v1 client's
  read-modify-write loses nothing.
- Requests are converted to the stored version and go through the ordinary handlers; object and list
  answers are converted back. Watches and Tables of the second version answer in the stored version.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubesvc.api.kinds import Kind

Obj = dict[str, Any]
HPA_V1 = Kind("HorizontalPodAutoscaler", "autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler", ("hpa",))
EXTRA: tuple[Kind, ...] = (HPA_V1,)
_ANN = "autoscaling.alpha.kubernetes.io/"


def _is_cpu_utilization(m: Obj) -> bool:
    res = m.get("resource") or {}
    return (m.get("type") == "Resource" and res.get("name") == "cpu"
            and (res.get("target") or {}).get("type") == "Utilization")


def hpa_to_v2(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    meta: Obj = out["metadata"] if isinstance(out.get("metadata"), dict) else {}
    ann: dict[str, Any] = meta["annotations"] if isinstance(meta.get("annotations"), dict) else {}
    spec = out.get("spec")
    if isinstance(spec, dict):
        metrics: list[Obj] = []
        cpu = spec.pop("targetCPUUtilizationPercentage", None)
        if cpu is not None:
            metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}})
        metrics.extend(_load(ann.pop(_ANN + "metrics", None), list))
        if metrics:
            spec["metrics"] = metrics
        behavior = _load(ann.pop(_ANN + "behavior", None), dict)
        if behavior:
            spec["behavior"] = behavior
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}]
        conditions = _load(ann.pop(_ANN + "conditions", None), list)
        if conditions:
            status["conditions"] = conditions
    for key in ("metrics", "behavior", "conditions"):
        ann.pop(_ANN + key, None)
    if "annotations" in meta and not ann:
        del meta["annotations"]
    return out


def hpa_to_v1(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    meta = out.setdefault("metadata", {})
    extra: dict[str, str] = {}
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"].get("averageUtilization")
    rest = [m for m in metrics if m is not cpu]
    if rest:
        extra["metrics"] = json.dumps(rest, separators=(",", ":"))
    behavior = spec.pop("behavior", None)
    if behavior:
        extra["behavior"] = json.dumps(behavior, separators=(",", ":"))
    status = out.get("status")
    if isinstance(status, dict):
        for m in status.pop("currentMetrics", None) or []:
            if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
                value = ((m["resource"].get("current") or {}).get("averageUtilization"))
                if value is not None:
                    status["currentCPUUtilizationPercentage"] = value
        conditions = status.pop("conditions", None)
        if conditions:
            extra["conditions"] = json.dumps(conditions, separators=(",", ":"))
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    if extra:
        meta.setdefault("annotations", {}).update({_ANN + k: v for k, v in extra.items()})
    return out


def _load(raw: Any, want: type) -> Any:
    if not isinstance(raw, str):
        return want()
    try:
        value = json.loads(raw)
    except ValueError:
        return want()
    return value if isinstance(value, want) else want()


TO_STORED = {"HorizontalPodAutoscaler": hpa_to_v2}
TO_SERVED = {"HorizontalPodAutoscaler": hpa_to_v1}


def request_to_stored(kind: str, body: Any) -> Any:
    """A served-version body (object) in the stored version; anything else is left to the handlers' checks."""
    if isinstance(body, dict) and body.get("apiVersion", "autoscaling/v1") == "autoscaling/v1" and body.get("kind", kind) == kind:
        body = TO_STORED[kind](body)
    return body


def answer_to_served(kind: str, body: Any) -> Any:
    """An answer (object or list of the stored version) in the served version; Status and Tables unchanged."""
    if not isinstance(body, dict):
        return body
    if body.get("kind") == kind:
        return TO_SERVED[kind](body)
    if body.get("kind") == f"{kind}List":
        out = dict(body)
        out["apiVersion"] = "autoscaling/v1"
        out["items"] = [_item(kind, i) for i in body.get("items") or []]
        return out
    return body


def _item(kind: str, item: Obj) -> Obj:
    converted = TO_SERVED[kind]({**item, "kind": kind})
    for key in ("kind", "apiVersion"):
        if key not in item:
            converted.pop(key, None)
    return converted


def serve(req: Any, ctx: Any, res: Any, namespace: str | None, tail: list[str]) -> Any:
    """A request to a second version: its body in the stored version through the ordinary handlers
    (kubesvc.apiserver.handlers), the answer back in the served version. PATCH is applied to the served
    version of the live object, then written as a PUT carrying its resourceVersion."""
    from kubesvc.api.kinds import BY_KIND
    from kubesvc.apiserver import discovery, handlers, views
    from kubesvc.apiserver import patch as patchlib
    from kubesvc.apiserver.status import ApiError, not_found_path

    k = res.kind
    stored = discovery.lookup(BY_KIND[k.kind].api_version, k.plural)
    if stored is None or len(tail) == 2:
        raise not_found_path()
    inner = handlers.Request(req.method, req.path, req.query, dict(req.headers), req.body)
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if req.method in ("POST", "PUT"):
        body = request_to_stored(k.kind, handlers.decode_body(req))
        inner.body, inner.headers["content-type"] = json.dumps(body).encode(), handlers.JSON
    elif req.method == "PATCH" and tail and ctype != patchlib.APPLY_YAML:
        if ctype not in patchlib.PATCH_TYPES:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: {', '.join(patchlib.PATCH_TYPES)}")
        name = handlers._name_segment(tail[0], "name")
        live = answer_to_served(k.kind, views.with_type(ctx.registry.get(k.kind, namespace or "", name), stored.kind))
        patched = request_to_stored(k.kind, patchlib.apply(live, ctype, handlers.decode_body(req)))
        inner.method, inner.body, inner.headers["content-type"] = "PUT", json.dumps(patched).encode(), handlers.JSON
    elif req.method == "PATCH":
        inner.body = json.dumps(request_to_stored(k.kind, handlers.decode_body(req, yaml_ok=True))).encode()
    resp = handlers._resource(inner, ctx, stored, namespace, tail)
    if resp.stream is None and resp.content_type == handlers.JSON and resp.body and not req.wants_table:
        resp.body = json.dumps(answer_to_served(k.kind, json.loads(resp.body)), separators=(",", ":"),
                               ensure_ascii=False).encode()
    return resp
