"""Write schemas/<group>.<version>.<Kind>.json for kinds from upstream's OpenAPI v2 document, in the style of
the hand-kept schemas (structs reject unknown fields, ``title`` is the Go type, shared types by ``$ref`` into
``_defs.json`` and ``_pod.json``).

    python scripts/gen_schemas.py swagger.json Kind [Kind...]

``swagger.json``: Kubernetes v1.32's ``api/openapi-spec/swagger.json`` (the same document ships as
``kubernetes/swagger.json.unprocessed`` in kubernetes-client/python v32.0.1). Only the output is committed.
Named Go string types (``x-go-type``) are not in the OpenAPI document; the few listed in GO_TYPES are added.
"""

# ruff: noqa: B023  (the helpers close over one kind's tables on purpose)
from __future__ import annotations

import json
import sys
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

ROOTS = {
    "Node": "io.k8s.api.core.v1.Node",
    "ServiceAccount": "io.k8s.api.core.v1.ServiceAccount",
    "ResourceQuota": "io.k8s.api.core.v1.ResourceQuota",
    "LimitRange": "io.k8s.api.core.v1.LimitRange",
    "PodTemplate": "io.k8s.api.core.v1.PodTemplate",
    "StatefulSet": "io.k8s.api.apps.v1.StatefulSet",
    "DaemonSet": "io.k8s.api.apps.v1.DaemonSet",
    "Job": "io.k8s.api.batch.v1.Job",
    "CronJob": "io.k8s.api.batch.v1.CronJob",
    "PodDisruptionBudget": "io.k8s.api.policy.v1.PodDisruptionBudget",
    "PriorityClass": "io.k8s.api.scheduling.v1.PriorityClass",
    "HorizontalPodAutoscaler": "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    "Role": "io.k8s.api.rbac.v1.Role",
    "RoleBinding": "io.k8s.api.rbac.v1.RoleBinding",
    "ClusterRole": "io.k8s.api.rbac.v1.ClusterRole",
    "ClusterRoleBinding": "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "EndpointSlice": "io.k8s.api.discovery.v1.EndpointSlice",
    "APIService": "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService",
}
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
SHARED = {META + n: f"_defs.json#/$defs/{n}" for n in (
    "ObjectMeta", "Time", "MicroTime", "LabelSelector", "LabelSelectorRequirement", "Condition", "OwnerReference",
    "ManagedFieldsEntry")}
SHARED["io.k8s.apimachinery.pkg.api.resource.Quantity"] = "_defs.json#/$defs/Quantity"
SHARED["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = "_defs.json#/$defs/IntOrString"
SHARED["io.k8s.api.core.v1.ObjectReference"] = "_defs.json#/$defs/ObjectReference"
# Named string types shown in decode errors (``of type v1.Protocol``); the rest decode as ``string``.
GO_TYPES = {
    ("EndpointPort", "protocol"): "v1.Protocol",
    ("NodeCondition", "status"): "v1.ConditionStatus",
    ("JobCondition", "status"): "v1.ConditionStatus",
    ("StatefulSetSpec", "podManagementPolicy"): "v1.PodManagementPolicyType",
    ("StatefulSetUpdateStrategy", "type"): "v1.StatefulSetUpdateStrategyType",
    ("DaemonSetUpdateStrategy", "type"): "v1.DaemonSetUpdateStrategyType",
    ("CronJobSpec", "concurrencyPolicy"): "v1.ConcurrencyPolicy",
    ("JobSpec", "completionMode"): "v1.CompletionMode",
    ("JobSpec", "podReplacementPolicy"): "v1.PodReplacementPolicy",
    ("PriorityClass", "preemptionPolicy"): "v1.PreemptionPolicy",
    ("LimitRangeItem", "type"): "v1.LimitType",
    ("EndpointSlice", "addressType"): "v1.AddressType",
}


def main(swagger_path: str, kinds: list[str]) -> None:
    defs = json.loads(Path(swagger_path).read_text())["definitions"]
    pod_defs = set(json.loads((SCHEMAS / "_pod.json").read_text())["$defs"])
    for kind in kinds:
        root_name = ROOTS[kind]
        root = defs[root_name]
        gvk = root["x-kubernetes-group-version-kind"][0]
        api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
        local: dict[str, dict] = {}
        queue: list[str] = []

        def ref(name: str) -> dict:
            if name in SHARED:
                return {"$ref": SHARED[name]}
            short = name.rsplit(".", 1)[1]
            if name.startswith("io.k8s.api.core.v1.") and short in pod_defs:
                return {"$ref": f"_pod.json#/$defs/{short}"}
            if short not in local:
                local[short] = {}
                queue.append(name)
            return {"$ref": f"#/$defs/{short}"}

        def conv(p: dict, owner: str, field: str) -> dict:
            if "$ref" in p:
                return ref(p["$ref"].rsplit("/", 1)[1])
            t = p.get("type")
            if t == "object" and "additionalProperties" in p:
                item = conv(p["additionalProperties"], owner, field)
                out = {"type": "object"}
                if item.get("$ref", "").endswith("/Quantity"):
                    out["x-go-type"] = "v1.ResourceList"
                out["additionalProperties"] = item
                return out
            if t == "array":
                return {"type": "array", "items": conv(p["items"], owner, field)}
            if t == "string":
                if p.get("format") == "byte":
                    return {"type": "string", "contentEncoding": "base64", "x-go-type": "[]uint8"}
                out = {"type": "string"}
                if (owner, field) in GO_TYPES:
                    out["x-go-type"] = GO_TYPES[(owner, field)]
                return out
            if t == "integer":
                return {"type": "integer", "format": p.get("format", "int64")}
            if t == "number":
                return {"type": "number", "format": "double"}
            if t == "boolean":
                return {"type": "boolean"}
            return {"description": "Any JSON value."}

        def struct(name: str, d: dict, title: str) -> dict:
            props = {k: conv(v, title, k) for k, v in sorted(d.get("properties", {}).items())}
            return {"title": title, "type": "object", "properties": props, "additionalProperties": False}

        body = struct(root_name, root, kind)
        body["properties"]["apiVersion"] = {"type": "string", "const": api_version}
        body["properties"]["kind"] = {"type": "string", "const": kind}
        while queue:
            name = queue.pop()
            short = name.rsplit(".", 1)[1]
            d = defs[name]
            local[short] = struct(name, d, short) if "properties" in d else {"title": short, "description": "Any JSON value."}
        doc = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": f"{kind} ({api_version}) as Kubernetes v1.32 has it. Structs reject unknown fields; title names "
                           "the Go type, x-go-type a named Go type. Made by scripts/gen_schemas.py from upstream's OpenAPI.",
            "title": kind,
            "type": "object",
            "properties": dict(sorted(body["properties"].items())),
            "additionalProperties": False,
            "required": ["apiVersion", "kind"],
        }
        if local:
            doc["$defs"] = dict(sorted(local.items()))
        out = SCHEMAS / f"{api_version.replace('/', '.')}.{kind}.json"
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(out.name)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or list(ROOTS))
