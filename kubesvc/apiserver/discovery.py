"""``/version``, legacy discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/<g>/<v>``) and the minimal
OpenAPI v3 documents kubectl needs to send ``fieldValidation`` (kubectl-wire.md §2, §3, §6).

Rules kept here:
- gitVersion is pinned to v1.32.x: the GKE kubectl dispatcher picks the kubectl minor from it.
- Discovery is the legacy JSON form only: every kubectl 1.27-1.33 understands it, whatever it accepts.
- Every stored kind is served with its short names; kinds in the ``all`` category carry it.
- ``endpointslices`` (discovery.k8s.io/v1) are stored like any kind: the EndpointSlice controllers write
  them in the same transaction as the Endpoints (``kubesvc.controllers.endpointslices``), so ``kubectl
  describe svc`` (which reads slices) shows the same Endpoints line as ``kubesvc describe``.
- Every kind is listed with its group's version only (HorizontalPodAutoscaler: autoscaling/v2), except
  the second versions of ``versions.EXTRA`` (autoscaling/v1 HPA, converted), listed after the preferred one.
- The workload kinds list their ``<plural>/scale`` subresource (autoscaling/v1 Scale; get, patch, update).
- The OpenAPI v3 documents hold only the PATCH operations with their GVK and the ``fieldValidation``
  parameter; the ``hash`` changes when the documents change (kubectl caches them for 6 h).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubesvc.api.kinds import ALL_CATEGORY, KINDS, Kind
from kubesvc.apiserver.versions import EXTRA as EXTRA_VERSIONS

SERVER_VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0+kubesvc",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64",
}

WRITE_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
READ_VERBS = ["get", "list"]



@dataclass(frozen=True)
class Resource:
    kind: Kind
    verbs: tuple[str, ...]
    derived: bool = False  # computed from another kind, never written through the API
    mirrored: str = ""  # stored, and lists also show read-only objects derived from this kind
    converted: bool = False  # a second version of a stored kind (kubesvc.apiserver.versions)


RESOURCES: tuple[Resource, ...] = tuple(
    Resource(k, tuple(WRITE_VERBS)) for k in KINDS
) + tuple(Resource(k, tuple(WRITE_VERBS), converted=True) for k in EXTRA_VERSIONS)


def group_versions() -> list[str]:
    """``v1`` first, then the named group-versions in first-seen order."""
    out: list[str] = []
    for r in RESOURCES:
        if r.kind.api_version not in out:
            out.append(r.kind.api_version)
    return out


def lookup(group_version: str, plural: str) -> Resource | None:
    for r in RESOURCES:
        if r.kind.api_version == group_version and r.kind.plural == plural:
            return r
    return None


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list() -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for gv in group_versions():
        if "/" not in gv:
            continue
        group, version = gv.split("/")
        ver = {"groupVersion": gv, "version": version}
        if group in groups:  # a second version (autoscaling/v1): the first listed stays preferred
            groups[group]["versions"].append(ver)
        else:
            groups[group] = {"name": group, "versions": [ver], "preferredVersion": ver}
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups.values())}


def api_group(group: str) -> dict[str, Any] | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def resource_list(group_version: str) -> dict[str, Any] | None:
    items = []
    for r in RESOURCES:
        k = r.kind
        if k.api_version != group_version:
            continue
        entry: dict[str, Any] = {"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                                 "kind": k.kind, "verbs": list(r.verbs)}
        if k.short_names:
            entry["shortNames"] = list(k.short_names)
        if k.kind in ALL_CATEGORY:
            entry["categories"] = ["all"]
        items.append(entry)
        items.extend(_subresources(k))
    if not items:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": items}


def _subresources(k: Kind) -> list[dict[str, Any]]:
    """``<plural>/scale`` (autoscaling/v1 Scale) of the workload kinds (kubesvc.registry.scale)."""
    from kubesvc.registry.scale import SCALABLE

    if k.kind not in SCALABLE:
        return []
    return [{"name": f"{k.plural}/scale", "singularName": "", "namespaced": k.namespaced, "group": "autoscaling",
             "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}]


# ------------------------------------------------------------------------------------------ openapi


def _openapi_doc(group_version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in RESOURCES:
        k = r.kind
        if k.api_version != group_version or r.derived:
            continue
        prefix = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
        scope = "/namespaces/{namespace}" if k.namespaced else ""
        gvk = {"group": k.group, "version": k.version, "kind": k.kind}
        params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                  {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                  {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}}]
        op = {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch", "parameters": params}
        paths[f"{prefix}{scope}/{k.plural}/{{name}}"] = {
            "patch": op,
            "put": {**op, "x-kubernetes-action": "put"},
        }
        paths[f"{prefix}{scope}/{k.plural}"] = {"post": {**op, "x-kubernetes-action": "post"}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (kubesvc)", "version": "v1.32.0"}, "paths": paths,
            "components": {"schemas": {}}}


def _url_part(gv: str) -> str:
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"


_DOCS: dict[str, tuple[str, bytes]] = {}


def _docs() -> dict[str, tuple[str, bytes]]:
    if not _DOCS:
        for gv in group_versions():
            body = json.dumps(_openapi_doc(gv), separators=(",", ":")).encode()
            digest = hashlib.sha512(body).hexdigest()[:32].upper()
            _DOCS[_url_part(gv)] = (digest, body)
    return _DOCS


def openapi_root() -> dict[str, Any]:
    return {"paths": {part: {"serverRelativeURL": f"/openapi/v3/{part}?hash={digest}"}
                      for part, (digest, _) in _docs().items()}}


def openapi_document(part: str) -> bytes | None:
    found = _docs().get(part)
    return found[1] if found else None
