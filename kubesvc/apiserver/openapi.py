"""OpenAPI documents built from ``schemas/`` and the served kinds: ``/openapi/v3`` (the index),
``/openapi/v3/<api|apis/group>/<version>`` (JSON) and ``/openapi/v2`` (JSON, or the protobuf kubectl asks for).

What reads them: ``kubectl explain`` (v3 by default, v2 with ``--output plaintext-openapiv2``), kubectl's
``fieldValidation`` probe on create/apply/replace (a PATCH operation with the GVK and the parameter, v3),
client-side apply's strategic-merge patch metadata (v3, else v2, else kubectl's compiled-in types) and the
client-side schema validation fallback (v2). See docs/concepts/apiserver.md, "OpenAPI".

Rules kept here:
- Built at run time from whatever ``schemas/`` and the discovery table hold, once per process per set of
  kinds (``_build`` is keyed by that set); a kind added with its schema file appears without a change here.
- Component names are upstream's: ``io.k8s.api.<core|first label of the group>.<version>.<Type>`` for a
  type defined in a kind's file, ``io.k8s.api.core.v1.<Type>`` for the shared ``_*.json`` files except the
  meta/v1 types (``io.k8s.apimachinery.pkg.apis.meta.v1``), IntOrString (``...pkg.util.intstr``) and
  Quantity (``...pkg.api.resource``). A type's name is its ``$defs`` key.
- v3 follows kube-openapi's shapes: a field that names a type is ``{"allOf": [{"$ref": ...}]}``;
  IntOrString and Quantity are ``oneOf`` integer|string (explain prints ``<IntOrString>``), Time is a
  date-time string. v2 uses plain ``$ref`` and ``type: string`` for both, as the v2 spec does.
- The kind's schema carries ``x-kubernetes-group-version-kind``; ``required``, ``x-kubernetes-patch-merge-key``,
  ``x-kubernetes-patch-strategy`` and list-map keys come from the tables below, which copy upstream's Go tags
  (field facts, not prose). Descriptions are our own short text or none (kubectl prints ``<no description>``).
- Every PATCH operation lists ``fieldValidation``, so kubectl validates server-side. The strategic merge
  patch content type is offered only for kinds with a schema: without one kubectl would compute list
  patches without merge keys; it then falls back to its compiled-in types.
- The v3 index's ``?hash=`` is the SHA-512 of the document it points to, so kubectl's 6 h cache is
  refreshed when a kind or schema changes; a stale hash gets a 301 to the current one, as upstream does.
  Every answer carries an ``ETag``; ``If-None-Match`` gets a 304.
- v2 protobuf is gnostic's ``openapi_v2.Document`` (github.com/google/gnostic-models, OpenAPIv2.proto), written
  with the field numbers there; client-go's ``OpenAPISchema()`` only ``proto.Unmarshal``s it. Vendor
  extensions are ``NamedAny`` holding YAML text (JSON, which YAML reads).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from kubesvc.api.kinds import Kind
from kubesvc.api.schema import SCHEMA_DIR

# kubectl asks with the "@" form, which Go's mime parser cannot read back: answers name the dotted form (as
# kube-openapi's handler does).
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
CORE = "io.k8s.api.core.v1"
INTSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_META_TYPES = frozenset({
    "Condition", "LabelSelector", "LabelSelectorRequirement", "ManagedFieldsEntry", "MicroTime", "ObjectMeta",
    "OwnerReference", "Time", "FieldsV1", "ListMeta", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
    "Preconditions", "Patch", "Duration",
})
# Group packages whose Go path is not io.k8s.api.<first label>.
_GROUP_PACKAGE = {
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}

# Fields upstream marks required (no omitempty, no +optional), by component.
_REQUIRED: dict[str, tuple[str, ...]] = {
    f"{META}.Condition": ("type", "status", "lastTransitionTime", "reason", "message"),
    f"{META}.LabelSelectorRequirement": ("key", "operator"),
    f"{META}.OwnerReference": ("apiVersion", "kind", "name", "uid"),
    f"{CORE}.ServicePort": ("port",),
    f"{CORE}.PortStatus": ("port", "protocol"),
    f"{CORE}.Container": ("name",),
    f"{CORE}.EphemeralContainer": ("name",),
    f"{CORE}.ContainerPort": ("containerPort",),
    f"{CORE}.ContainerResizePolicy": ("resourceName", "restartPolicy"),
    f"{CORE}.EnvVar": ("name",),
    f"{CORE}.VolumeMount": ("name", "mountPath"),
    f"{CORE}.VolumeDevice": ("name", "devicePath"),
    f"{CORE}.Volume": ("name",),
    f"{CORE}.PodSpec": ("containers",),
    f"{CORE}.ConfigMapKeySelector": ("key",),
    f"{CORE}.SecretKeySelector": ("key",),
    f"{CORE}.KeyToPath": ("key", "path"),
    f"{CORE}.DownwardAPIVolumeFile": ("path",),
    f"{CORE}.ObjectFieldSelector": ("fieldPath",),
    f"{CORE}.ResourceFieldSelector": ("resource",),
    f"{CORE}.HTTPGetAction": ("port",),
    f"{CORE}.HTTPHeader": ("name", "value"),
    f"{CORE}.TCPSocketAction": ("port",),
    f"{CORE}.GRPCAction": ("port",),
    f"{CORE}.SleepAction": ("seconds",),
    f"{CORE}.NodeSelector": ("nodeSelectorTerms",),
    f"{CORE}.NodeSelectorRequirement": ("key", "operator"),
    f"{CORE}.PreferredSchedulingTerm": ("weight", "preference"),
    f"{CORE}.WeightedPodAffinityTerm": ("weight", "podAffinityTerm"),
    f"{CORE}.PodAffinityTerm": ("topologyKey",),
    f"{CORE}.TopologySpreadConstraint": ("maxSkew", "topologyKey", "whenUnsatisfiable"),
    f"{CORE}.Sysctl": ("name", "value"),
    f"{CORE}.HostAlias": ("ip",),
    f"{CORE}.PodReadinessGate": ("conditionType",),
    f"{CORE}.PodSchedulingGate": ("name",),
    f"{CORE}.PodResourceClaim": ("name",),
    f"{CORE}.ResourceClaim": ("name",),
    f"{CORE}.SeccompProfile": ("type",),
    f"{CORE}.AppArmorProfile": ("type",),
    f"{CORE}.CSIVolumeSource": ("driver",),
    f"{CORE}.NFSVolumeSource": ("server", "path"),
    f"{CORE}.HostPathVolumeSource": ("path",),
    f"{CORE}.PersistentVolumeClaimVolumeSource": ("claimName",),
    f"{CORE}.ServiceAccountTokenProjection": ("path",),
    f"{CORE}.ClusterTrustBundleProjection": ("path",),
    f"{CORE}.TypedLocalObjectReference": ("kind", "name"),
    f"{CORE}.TypedObjectReference": ("kind", "name"),
    f"{CORE}.PodCondition": ("type", "status"),
    f"{CORE}.PodIP": ("ip",),
    f"{CORE}.HostIP": ("ip",),
    f"{CORE}.ContainerStatus": ("name", "ready", "restartCount", "image", "imageID"),
    f"{CORE}.ContainerStateTerminated": ("exitCode",),
    f"{CORE}.LinuxContainerUser": ("uid", "gid"),
    f"{CORE}.PodResourceClaimStatus": ("name",),
    f"{CORE}.ResourceStatus": ("name",),
    f"{CORE}.ResourceHealth": ("resourceID",),
    f"{CORE}.VolumeMountStatus": ("name", "mountPath"),
    f"{CORE}.NamespaceCondition": ("type", "status"),
    f"{CORE}.ReplicationControllerCondition": ("type", "status"),
    f"{CORE}.EndpointAddress": ("ip",),
    f"{CORE}.EndpointPort": ("port",),
    f"{CORE}.Event": ("metadata", "involvedObject"),
    f"{CORE}.NodeAddress": ("type", "address"),
    f"{CORE}.NodeCondition": ("type", "status"),
    f"{CORE}.Taint": ("key", "effect"),
    f"{CORE}.LimitRangeItem": ("type",),
    f"{CORE}.LimitRangeSpec": ("limits",),
    "io.k8s.api.apps.v1.DeploymentSpec": ("selector", "template"),
    "io.k8s.api.apps.v1.DeploymentCondition": ("type", "status"),
    "io.k8s.api.apps.v1.ReplicaSetSpec": ("selector",),
    "io.k8s.api.apps.v1.ReplicaSetCondition": ("type", "status"),
    "io.k8s.api.apps.v1.StatefulSetSpec": ("selector", "template"),
    "io.k8s.api.apps.v1.StatefulSetCondition": ("type", "status"),
    "io.k8s.api.apps.v1.DaemonSetSpec": ("selector", "template"),
    "io.k8s.api.apps.v1.DaemonSetCondition": ("type", "status"),
    "io.k8s.api.batch.v1.JobSpec": ("template",),
    "io.k8s.api.batch.v1.JobCondition": ("type", "status"),
    "io.k8s.api.batch.v1.CronJobSpec": ("schedule", "jobTemplate"),
    "io.k8s.api.networking.v1.HTTPIngressPath": ("pathType", "backend"),
    "io.k8s.api.networking.v1.HTTPIngressRuleValue": ("paths",),
    "io.k8s.api.networking.v1.IngressServiceBackend": ("name",),
    "io.k8s.api.networking.v1.IngressClassParametersReference": ("kind", "name"),
    "io.k8s.api.networking.v1.IngressPortStatus": ("port", "protocol"),
    "io.k8s.api.discovery.v1.EndpointSlice": ("addressType", "endpoints"),
    "io.k8s.api.discovery.v1.Endpoint": ("addresses",),
    "io.k8s.api.rbac.v1.Subject": ("kind", "name"),
    "io.k8s.api.rbac.v1.RoleRef": ("apiGroup", "kind", "name"),
    "io.k8s.api.rbac.v1.PolicyRule": ("verbs",),
    "io.k8s.api.rbac.v1.RoleBinding": ("roleRef",),
    "io.k8s.api.rbac.v1.ClusterRoleBinding": ("roleRef",),
    "io.k8s.api.scheduling.v1.PriorityClass": ("value",),
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec": ("scaleTargetRef", "maxReplicas"),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec": ("scaleTargetRef", "maxReplicas"),
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference": ("kind", "name"),
    "io.k8s.api.autoscaling.v2.CrossVersionObjectReference": ("kind", "name"),
    "io.k8s.api.policy.v1.PodDisruptionBudgetStatus": ("disruptionsAllowed", "currentHealthy", "desiredHealthy",
                                                       "expectedPods"),
}


def _merge(key: str, strategy: str = "merge", map_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"x-kubernetes-patch-strategy": strategy}
    if key:
        out["x-kubernetes-patch-merge-key"] = key
    if map_keys:
        out["x-kubernetes-list-type"] = "map"
        out["x-kubernetes-list-map-keys"] = list(map_keys)
    return out


_BY_TYPE = _merge("type")
# Strategic-merge metadata upstream's Go tags give (patchMergeKey, patchStrategy, listType/listMapKeys).
_PATCH: dict[tuple[str, str], dict[str, Any]] = {
    (f"{META}.ObjectMeta", "finalizers"): {"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"},
    (f"{META}.ObjectMeta", "ownerReferences"): _merge("uid", map_keys=("uid",)),
    (f"{CORE}.ServiceSpec", "ports"): _merge("port", map_keys=("port", "protocol")),
    (f"{CORE}.ServiceStatus", "conditions"): _merge("type", map_keys=("type",)),
    (f"{CORE}.PodSpec", "volumes"): _merge("name", "merge,retainKeys", ("name",)),
    (f"{CORE}.PodSpec", "initContainers"): _merge("name", map_keys=("name",)),
    (f"{CORE}.PodSpec", "containers"): _merge("name", map_keys=("name",)),
    (f"{CORE}.PodSpec", "ephemeralContainers"): _merge("name", map_keys=("name",)),
    (f"{CORE}.PodSpec", "imagePullSecrets"): _merge("name", map_keys=("name",)),
    (f"{CORE}.PodSpec", "hostAliases"): _merge("ip", map_keys=("ip",)),
    (f"{CORE}.PodSpec", "topologySpreadConstraints"): _merge("topologyKey", map_keys=("topologyKey", "whenUnsatisfiable")),
    (f"{CORE}.PodSpec", "schedulingGates"): _merge("name", map_keys=("name",)),
    (f"{CORE}.PodSpec", "resourceClaims"): _merge("name", "merge,retainKeys", ("name",)),
    (f"{CORE}.PodStatus", "conditions"): _BY_TYPE,
    (f"{CORE}.PodStatus", "podIPs"): _merge("ip"),
    (f"{CORE}.PodStatus", "hostIPs"): _merge("ip"),
    (f"{CORE}.PodStatus", "resourceClaimStatuses"): _merge("name", "merge,retainKeys", ("name",)),
    (f"{CORE}.NamespaceStatus", "conditions"): _BY_TYPE,
    (f"{CORE}.ReplicationControllerStatus", "conditions"): _BY_TYPE,
    (f"{CORE}.NodeStatus", "conditions"): _BY_TYPE,
    (f"{CORE}.NodeStatus", "addresses"): _BY_TYPE,
    (f"{CORE}.NodeSpec", "podCIDRs"): {"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"},
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy"): {"x-kubernetes-patch-strategy": "retainKeys"},
    ("io.k8s.api.apps.v1.DeploymentStatus", "conditions"): _BY_TYPE,
    ("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions"): _BY_TYPE,
    ("io.k8s.api.apps.v1.StatefulSetStatus", "conditions"): _BY_TYPE,
    ("io.k8s.api.apps.v1.DaemonSetStatus", "conditions"): _BY_TYPE,
    ("io.k8s.api.batch.v1.JobStatus", "conditions"): _BY_TYPE,
    ("io.k8s.api.policy.v1.PodDisruptionBudgetStatus", "conditions"): _merge("type", map_keys=("type",)),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus", "conditions"): _merge("type", map_keys=("type",)),
}
for _c in ("Container", "EphemeralContainer"):
    _PATCH[(f"{CORE}.{_c}", "ports")] = _merge("containerPort", map_keys=("containerPort", "protocol"))
    _PATCH[(f"{CORE}.{_c}", "env")] = _merge("name")
    _PATCH[(f"{CORE}.{_c}", "volumeMounts")] = _merge("mountPath")
    _PATCH[(f"{CORE}.{_c}", "volumeDevices")] = _merge("devicePath")

_KIND_TEXT = {
    "Service": "A stable virtual address (cluster IP, node ports, DNS name) in front of the pods its selector picks.",
    "Pod": "One or more containers run together on a node, sharing a network address.",
    "Endpoints": "The addresses and ports behind a Service, kept by the endpoints controller.",
    "ReplicationController": "Keeps a number of copies of a pod template running (the older form of ReplicaSet).",
    "Namespace": "A scope for names; most objects live in one.",
    "ConfigMap": "Configuration data (string or binary values by key) for pods to read.",
    "Secret": "Sensitive data by key, base64-encoded in the API.",
    "Event": "A record of something that happened to an object.",
    "Deployment": "Declarative updates of a ReplicaSet and its pods: rollouts and rollbacks.",
    "ReplicaSet": "Keeps a number of copies of a pod template running.",
    "Ingress": "HTTP routing rules from hosts and paths to Services.",
    "IngressClass": "Names the controller that implements an Ingress.",
    "EndpointSlice": "A slice of the endpoints behind a Service.",
    "Node": "A machine that runs pods; here, the machine kubesvc runs on.",
    "ServiceAccount": "An identity for processes that run in pods.",
    "StatefulSet": "Pods with stable names and storage, created and updated in order.",
    "DaemonSet": "One copy of a pod on each node.",
    "Job": "Pods run until a number of them finish successfully.",
    "CronJob": "Jobs created on a schedule.",
    "PodDisruptionBudget": "How many pods of a set may be down at once through voluntary disruptions.",
    "ResourceQuota": "Limits on the total resources and object counts of a namespace.",
    "LimitRange": "Default and allowed resource requests and limits in a namespace.",
    "PriorityClass": "A name for a pod scheduling priority value.",
    "HorizontalPodAutoscaler": "Scales a workload's replicas on observed metrics.",
    "Role": "Permissions (rules) within a namespace.",
    "RoleBinding": "Grants a Role or ClusterRole to subjects within a namespace.",
    "ClusterRole": "Permissions (rules) across the cluster.",
    "ClusterRoleBinding": "Grants a ClusterRole to subjects across the cluster.",
    "PodTemplate": "A stored pod template.",
    "APIService": "An aggregated API group version and the Service behind it (stored only).",
}
_FIELD_TEXT = {
    "apiVersion": "The group and version of the schema this object is written in.",
    "kind": "The type of this object, in CamelCase.",
    "metadata": "Name, namespace, labels, annotations and what the server records about the object.",
    "spec": "The desired state.",
    "status": "The state last observed by the system. Written by the server and controllers.",
}


@dataclass(frozen=True)
class Served:
    """One served resource, as the OpenAPI documents need it."""

    kind: Kind
    verbs: tuple[str, ...]


def served() -> tuple[Served, ...]:
    """The discovery table, read now (so kinds added to it appear without a change here)."""
    from kubesvc.apiserver import discovery

    return tuple(Served(r.kind, tuple(r.verbs)) for r in discovery.RESOURCES)


# ------------------------------------------------------------------------------------------ schemas -> v3


def _package(group: str, version: str) -> str:
    if not group:
        return f"io.k8s.api.core.{version}"
    base = _GROUP_PACKAGE.get(group) or f"io.k8s.api.{group.split('.')[0]}"
    return f"{base}.{version}"


def _file_package(filename: str) -> str | None:
    """The Go package of the types a kind's file defines (``apps.v1.Deployment.json``); None for ``_*.json``."""
    if filename.startswith("_"):
        return None
    parts = filename.removesuffix(".json").split(".")
    if len(parts) < 2:
        return None
    version, group = parts[-2], ".".join(parts[:-2])
    return _package(group, version)


def component_name(filename: str, def_name: str) -> str:
    if def_name == "IntOrString":
        return INTSTR
    if def_name == "Quantity":
        return QUANTITY
    package = _file_package(filename)
    if package is None:
        return f"{META}.{def_name}" if def_name in _META_TYPES else f"{CORE}.{def_name}"
    return f"{package}.{def_name}"


class _Converter:
    """JSON Schema (``schemas/``) -> OpenAPI v3 components, following ``$ref`` across files."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self._pending: list[tuple[str, str, str]] = []

    def doc(self, filename: str) -> dict[str, Any]:
        if filename not in self.files:
            self.files[filename] = json.loads(SCHEMA_DIR.joinpath(filename).read_text(encoding="utf-8"))
        return self.files[filename]

    def ref(self, ref: str, base: str) -> str:
        """``_defs.json#/$defs/ObjectMeta`` seen in ``base`` -> the component name (queued for conversion)."""
        filename, _, pointer = ref.partition("#")
        filename = filename or base
        def_name = pointer.rsplit("/", 1)[-1]
        name = component_name(filename, def_name)
        if name not in self.components:
            self.components[name] = {}  # reserved: cycles stop here
            self._pending.append((name, filename, def_name))
        return name

    def drain(self) -> None:
        while self._pending:
            name, filename, def_name = self._pending.pop()
            src = self.doc(filename).get("$defs", {}).get(def_name, {})
            if name in (INTSTR, QUANTITY):
                self.components[name] = self._shared_body(name, src)
            else:
                self.components[name] = self.schema(src, filename, name)

    def schema(self, s: dict[str, Any], base: str, owner: str = "") -> dict[str, Any]:
        """One schema; ``owner`` is the component name when ``s`` is a struct definition."""
        if "$ref" in s:
            return {"$ref": "#/components/schemas/" + self.ref(s["$ref"], base)}
        types = s.get("type")
        fmt = s.get("format")
        if isinstance(types, list):
            kinds = [t for t in types if t != "null"]
            if fmt == "int-or-string" or sorted(kinds) == ["integer", "string"]:
                return self._shared(INTSTR, "int-or-string", s)
            if sorted(kinds) == ["number", "string"]:
                return self._shared(QUANTITY, "quantity", s)
            types = kinds[0] if kinds else None
        if s.get("title") == "FieldsV1":
            self.components.setdefault(f"{META}.FieldsV1", {"description": s.get("description", "Free-form JSON: the "
                                       "fields a manager owns."), "type": "object"})
            return {"$ref": f"#/components/schemas/{META}.FieldsV1"}
        out: dict[str, Any] = {}
        if s.get("description"):
            out["description"] = s["description"]
        if types:
            out["type"] = types
        if fmt:
            out["format"] = fmt
        if "enum" in s:
            out["enum"] = list(s["enum"])
        props = s.get("properties")
        if isinstance(props, dict):
            out.setdefault("type", "object")
            out["properties"] = {k: self._field(v, base, owner, k) for k, v in sorted(props.items())}
            required = list(s.get("required") or []) if owner else []
            required += [f for f in _REQUIRED.get(owner, ()) if f in props and f not in required]
            if required:
                out["required"] = required
        items = s.get("items")
        if isinstance(items, dict):
            out["items"] = self._wrap(self.schema(items, base))
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = self._wrap(self.schema(extra, base))
        if "type" not in out and not out.get("properties") and "x-kubernetes-preserve-unknown-fields" not in out:
            out["type"] = "object"
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out

    def _shared(self, name: str, fmt: str, s: dict[str, Any]) -> dict[str, Any]:
        if not self.components.get(name):
            self.components[name] = self._shared_body(name, s)
        return {"$ref": f"#/components/schemas/{name}"}

    @staticmethod
    def _shared_body(name: str, s: dict[str, Any]) -> dict[str, Any]:
        """IntOrString and Quantity: an integer or a string (kube-openapi's OpenAPIV3OneOfTypes)."""
        out: dict[str, Any] = {"format": "int-or-string" if name == INTSTR else "quantity",
                               "oneOf": [{"type": "integer"}, {"type": "string"}]}
        if s.get("description"):
            out["description"] = s["description"]
        return out

    @staticmethod
    def _wrap(sub: dict[str, Any]) -> dict[str, Any]:
        return {"allOf": [sub], "default": {}} if set(sub) == {"$ref"} else sub

    def _field(self, s: dict[str, Any], base: str, owner: str, name: str) -> dict[str, Any]:
        sub = self.schema(s, base)
        if set(sub) == {"$ref"}:
            sub = {"allOf": [sub]}
        sub.update(_PATCH.get((owner, name), {}))
        return sub


def _kind_schema(conv: _Converter, k: Kind, filename: str) -> str:
    name = f"{_package(k.group, k.version)}.{k.kind}"
    src = conv.doc(filename)
    conv.components[name] = {}
    body = conv.schema(src, filename, name)
    # Upstream does not mark apiVersion/kind required on kinds.
    body.pop("required", None)
    required = [f for f in _REQUIRED.get(name, ()) if f in body.get("properties", {})]
    if required:
        body["required"] = required
    for field_name, text in _FIELD_TEXT.items():
        prop = body.get("properties", {}).get(field_name)
        if prop is not None and "description" not in prop:
            prop["description"] = text
    body["description"] = _KIND_TEXT.get(k.kind, f"{k.kind} ({k.api_version}), as kubesvc serves it.")
    body["x-kubernetes-group-version-kind"] = [{"group": k.group, "kind": k.kind, "version": k.version}]
    conv.components[name] = body
    list_name = f"{name}List"
    conv.components[list_name] = {
        "description": f"A list of {k.kind} objects.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _FIELD_TEXT["apiVersion"]},
            "items": {"type": "array", "items": {"allOf": [{"$ref": f"#/components/schemas/{name}"}], "default": {}},
                      "description": f"The {k.kind} objects."},
            "kind": {"type": "string", "description": _FIELD_TEXT["kind"]},
            "metadata": {"allOf": [{"$ref": f"#/components/schemas/{META}.ListMeta"}], "default": {},
                         "description": "Where the list stands: its resourceVersion and the token for the next page."},
        },
        "x-kubernetes-group-version-kind": [{"group": k.group, "kind": f"{k.kind}List", "version": k.version}],
    }
    return name


_COMMON: dict[str, dict[str, Any]] = {
    f"{META}.ListMeta": {
        "description": "Metadata of a list: its resourceVersion and paging token.",
        "type": "object",
        "properties": {
            "continue": {"type": "string", "description": "Token for the next page, empty on the last."},
            "remainingItemCount": {"type": "integer", "format": "int64",
                                   "description": "Items after this page, when the server knows."},
            "resourceVersion": {"type": "string", "description": "The store's revision this list was read at."},
            "selfLink": {"type": "string", "description": "Unused; kept for compatibility."},
        },
    },
    f"{META}.Patch": {"description": "A patch body; its Content-Type says which kind of patch.", "type": "object"},
}


# ------------------------------------------------------------------------------------------ paths


def _op_id(action: str, k: Kind, namespaced_path: bool) -> str:
    group = "Core" if not k.group else "".join(p.capitalize() for p in k.group.split(".")[0].split("-"))
    return f"{action}{group}{k.version.capitalize()}{'Namespaced' if namespaced_path else ''}{k.kind}"


def _q(name: str, text: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": text, "schema": {"type": typ, "uniqueItems": True}}


_WRITE_PARAMS = [
    _q("dryRun", "All: run every step of the write but store nothing."),
    _q("fieldManager", "Name of the actor making the change."),
    _q("fieldValidation", "Unknown or duplicate fields: Ignore, Warn (the default) or Strict (refused)."),
]
_LIST_PARAMS = [
    _q("labelSelector", "Only objects whose labels match."),
    _q("fieldSelector", "Only objects whose fields match."),
    _q("limit", "At most this many objects; the rest through continue.", "integer"),
    _q("continue", "Token from the previous page."),
    _q("resourceVersion", "Read at this revision or newer."),
    _q("watch", "Stream changes instead of listing.", "boolean"),
    _q("timeoutSeconds", "End a watch after this many seconds.", "integer"),
]
_DELETE_PARAMS = [
    _q("dryRun", "All: run every step of the delete but store nothing."),
    _q("gracePeriodSeconds", "Seconds before the object is deleted.", "integer"),
    _q("propagationPolicy", "Orphan, Background or Foreground: what happens to dependents."),
]
_MEDIA = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def _content(ref: dict[str, Any], types: tuple[str, ...] = _MEDIA) -> dict[str, Any]:
    return {t: {"schema": ref} for t in types}


def _paths(s: Served, has_schema: bool) -> dict[str, dict[str, Any]]:
    k = s.kind
    prefix = f"/api/{k.version}" if not k.group else f"/apis/{k.group}/{k.version}"
    scope = "/namespaces/{namespace}" if k.namespaced else ""
    gvk = {"group": k.group, "kind": k.kind, "version": k.version}
    name = f"{_package(k.group, k.version)}.{k.kind}"
    ref = {"$ref": f"#/components/schemas/{name}"} if has_schema else {"type": "object"}
    list_ref = {"$ref": f"#/components/schemas/{name}List"} if has_schema else {"type": "object"}
    path_params = [{"name": "name", "in": "path", "required": True, "description": f"Name of the {k.kind}.",
                    "schema": {"type": "string", "uniqueItems": True}}]
    coll_params: list[dict[str, Any]] = []
    if k.namespaced:
        ns = {"name": "namespace", "in": "path", "required": True, "description": "Namespace of the objects.",
              "schema": {"type": "string", "uniqueItems": True}}
        coll_params.append(ns)
        path_params.append(ns)
    ok = {"200": {"description": "OK", "content": _content(ref, _MEDIA[:2])}}
    created = {**ok, "201": {"description": "Created", "content": _content(ref, _MEDIA[:2])}}
    patch_types = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
    if has_schema:
        patch_types.append("application/strategic-merge-patch+json")
    patch_ref = {"$ref": f"#/components/schemas/{META}.Patch"}
    verbs = set(s.verbs)

    def op(action: str, verb: str, coll: bool, params: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        return {"operationId": _op_id(verb, k, k.namespaced), "description": f"{verb} {k.kind} objects" if coll
                else f"{verb} the named {k.kind}", "parameters": params, "responses": more.pop("responses", ok),
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, **more}

    coll: dict[str, Any] = {"parameters": coll_params}
    item: dict[str, Any] = {"parameters": path_params}
    if "list" in verbs:
        coll["get"] = op("list", "list", True, _LIST_PARAMS,
                         responses={"200": {"description": "OK", "content": _content(list_ref, _MEDIA[:2])}})
    if "create" in verbs:
        coll["post"] = op("post", "create", True, _WRITE_PARAMS, responses=created,
                          requestBody={"content": _content(ref, _MEDIA[:2]), "required": True})
    if "deletecollection" in verbs:
        coll["delete"] = op("deletecollection", "deletecollection", True, _LIST_PARAMS + _DELETE_PARAMS)
    if "get" in verbs:
        item["get"] = op("get", "read", False, [])
    if "update" in verbs:
        item["put"] = op("put", "replace", False, _WRITE_PARAMS, responses=created,
                         requestBody={"content": _content(ref, _MEDIA[:2]), "required": True})
    if "patch" in verbs:
        item["patch"] = op("patch", "patch", False, [*_WRITE_PARAMS, _q("force", "Take over conflicting fields "
                           "(apply patches only).", "boolean")], responses=created,
                           requestBody={"content": _content(patch_ref, tuple(patch_types)), "required": True})
    if "delete" in verbs:
        item["delete"] = op("delete", "delete", False, _DELETE_PARAMS)
    out = {}
    if len(coll) > 1:
        out[f"{prefix}{scope}/{k.plural}"] = coll
    if len(item) > 1:
        out[f"{prefix}{scope}/{k.plural}/{{name}}"] = item
    return out


# ------------------------------------------------------------------------------------------ documents


def _schema_filename(k: Kind) -> str:
    return f"{k.api_version.replace('/', '.')}.{k.kind}.json"


def _has_file(filename: str) -> bool:
    try:
        return SCHEMA_DIR.joinpath(filename).is_file()
    except OSError:
        return False


def url_part(api_version: str) -> str:
    return f"api/{api_version}" if "/" not in api_version else f"apis/{api_version}"


@dataclass
class Built:
    v3: dict[str, tuple[str, bytes]]  # url part -> (hash, JSON body)
    v2_json: bytes
    v2_proto: bytes
    v2_etag: str


def build_v3(resources: tuple[Served, ...]) -> dict[str, dict[str, Any]]:
    """One OpenAPI v3 document per group-version, keyed by its URL part (``api/v1``, ``apis/apps/v1``)."""
    docs: dict[str, dict[str, Any]] = {}
    for gv in dict.fromkeys(s.kind.api_version for s in resources):
        conv = _Converter()
        paths: dict[str, Any] = {}
        for s in resources:
            if s.kind.api_version != gv:
                continue
            filename = _schema_filename(s.kind)
            has_schema = _has_file(filename)
            if has_schema:
                _kind_schema(conv, s.kind, filename)
                conv.drain()
            paths.update(_paths(s, has_schema))
        components = {**conv.components, **_COMMON}
        docs[url_part(gv)] = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes (kubesvc)", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": dict(sorted(components.items()))},
        }
    return docs


def _v2_schema(s: Any) -> Any:
    """A v3 schema as v2 writes it: plain ``$ref`` to ``#/definitions/``, IntOrString and Quantity as strings."""
    if isinstance(s, list):
        return [_v2_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out: dict[str, Any] = {}
    for key, value in s.items():
        if key == "$ref":
            out[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key == "allOf" and len(value) == 1 and set(value[0]) == {"$ref"}:
            out["$ref"] = value[0]["$ref"].replace("#/components/schemas/", "#/definitions/")
        elif key == "oneOf":
            out["type"] = "string"
        elif key == "default":
            continue
        else:
            out[key] = _v2_schema(value)
    return out


def _v2_operation(op: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for p in op.get("parameters", []):
        params.append({"name": p["name"], "in": p["in"], "description": p.get("description", ""),
                       "type": p["schema"]["type"], "uniqueItems": True, **({"required": True} if p.get("required") else {})})
    body = op.get("requestBody")
    if body:
        content = body["content"]
        first = next(iter(content.values()))["schema"]
        params.append({"name": "body", "in": "body", "required": True, "schema": _v2_schema(first)})
    responses: dict[str, Any] = {}
    for code, r in op.get("responses", {}).items():
        media: dict[str, Any] = next(iter(r.get("content", {}).values()), {})
        schema = media.get("schema")
        responses[code] = {"description": r.get("description", ""), **({"schema": _v2_schema(schema)} if schema else {})}
    out: dict[str, Any] = {"description": op.get("description", ""), "operationId": op.get("operationId", ""),
                           "produces": ["application/json", "application/yaml"], "schemes": ["https"],
                           "parameters": params, "responses": responses}
    if body:
        out["consumes"] = list(body["content"])
    for key in ("x-kubernetes-action", "x-kubernetes-group-version-kind"):
        if key in op:
            out[key] = op[key]
    return out


def build_v2(v3: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One Swagger 2.0 document for every group-version."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for doc in v3.values():
        for path, item in doc["paths"].items():
            level = item.get("parameters", [])
            v2item: dict[str, Any] = {}
            for method in ("get", "put", "post", "delete", "patch"):
                if method in item:
                    v2item[method] = _v2_operation(item[method])
            if level:
                v2item["parameters"] = [{"name": p["name"], "in": p["in"], "description": p.get("description", ""),
                                         "required": True, "type": "string", "uniqueItems": True} for p in level]
            paths[path] = v2item
        for name, schema in doc["components"]["schemas"].items():
            definitions.setdefault(name, _v2_schema(schema))
    return {"swagger": "2.0", "info": {"title": "Kubernetes (kubesvc)", "version": "v1.32.0"},
            "paths": dict(sorted(paths.items())), "definitions": dict(sorted(definitions.items()))}


# ------------------------------------------------------------------------------------------ v2 protobuf
# Field numbers from gnostic's OpenAPIv2.proto (package openapi.v2).


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len(field_no: int, payload: bytes) -> bytes:
    return _varint(field_no << 3 | 2) + _varint(len(payload)) + payload


def _str(field_no: int, value: str) -> bytes:
    return _len(field_no, value.encode()) if value else b""


def _bool(field_no: int, value: bool) -> bytes:
    return _varint(field_no << 3) + b"\x01" if value else b""


def _extensions(field_no: int, obj: dict[str, Any]) -> bytes:
    """``repeated NamedAny vendor_extension``: name=1, value=2 (Any: yaml=2)."""
    out = b""
    for key, value in obj.items():
        if key.startswith("x-"):
            text = json.dumps(value, separators=(",", ":"), sort_keys=True)
            out += _len(field_no, _str(1, key) + _len(2, _str(2, text + "\n")))
    return out


def _pb_schema(s: dict[str, Any]) -> bytes:
    out = _str(1, s.get("$ref", "")) + _str(2, s.get("format", "")) + _str(4, s.get("description", ""))
    if s.get("uniqueItems"):
        out += _bool(16, True)
    for r in s.get("required", []):
        out += _str(19, r)
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out += _len(21, _len(1, _pb_schema(extra)))
    elif isinstance(extra, bool):
        out += _len(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00"))
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out += _len(22, b"".join(_str(1, t) for t in types))
    if isinstance(s.get("items"), dict):
        out += _len(23, _len(1, _pb_schema(s["items"])))
    for sub in s.get("allOf", []):
        out += _len(24, _pb_schema(sub))
    props = s.get("properties")
    if isinstance(props, dict):
        out += _len(25, b"".join(_len(1, _str(1, k) + _len(2, _pb_schema(v))) for k, v in props.items()))
    if s.get("readOnly"):
        out += _bool(27, True)
    return out + _extensions(31, s)


def _pb_parameter(p: dict[str, Any]) -> bytes:
    if p["in"] == "body":
        body = _str(2, p["name"]) + _str(3, "body") + _bool(4, bool(p.get("required"))) + _len(5, _pb_schema(p["schema"]))
        param = _len(1, body)
    else:
        if p["in"] == "path":  # PathParameterSubSchema: required=1 in=2 description=3 name=4 type=5 unique_items=19
            sub = (_bool(1, True) + _str(2, "path") + _str(3, p.get("description", "")) + _str(4, p["name"])
                   + _str(5, p.get("type", "string")) + _bool(19, bool(p.get("uniqueItems"))))
            nonbody = _len(4, sub)
        else:  # QueryParameterSubSchema: required=1 in=2 description=3 name=4 type=6 unique_items=20
            sub = (_bool(1, bool(p.get("required"))) + _str(2, "query") + _str(3, p.get("description", ""))
                   + _str(4, p["name"]) + _str(6, p.get("type", "string")) + _bool(20, bool(p.get("uniqueItems"))))
            nonbody = _len(3, sub)
        param = _len(2, nonbody)
    return _len(1, param)  # ParametersItem.parameter = 1


def _pb_operation(op: dict[str, Any]) -> bytes:
    out = _str(3, op.get("description", "")) + _str(5, op.get("operationId", ""))
    out += b"".join(_str(6, t) for t in op.get("produces", []))
    out += b"".join(_str(7, t) for t in op.get("consumes", []))
    out += b"".join(_len(8, _pb_parameter(p)) for p in op.get("parameters", []))
    codes = b""
    for code, r in op.get("responses", {}).items():
        resp = _str(1, r.get("description", ""))
        if "schema" in r:
            resp += _len(2, _len(1, _pb_schema(r["schema"])))  # SchemaItem.schema = 1
        codes += _len(1, _str(1, code) + _len(2, _len(1, resp)))  # NamedResponseValue -> ResponseValue.response
    out += _len(9, codes)
    out += b"".join(_str(10, s) for s in op.get("schemes", []))
    return out + _extensions(13, op)


_PATH_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}


def encode_v2(doc: dict[str, Any]) -> bytes:
    """The Swagger 2.0 document as gnostic's ``openapi_v2.Document`` protobuf."""
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    paths = b""
    for path, item in doc["paths"].items():
        body = b"".join(_len(num, _pb_operation(item[m])) for m, num in _PATH_METHODS.items() if m in item)
        body += b"".join(_len(9, _pb_parameter(p)) for p in item.get("parameters", []))
        paths += _len(2, _str(1, path) + _len(2, body))  # Paths.path = 2: NamedPathItem
    definitions = b"".join(_len(1, _str(1, name) + _len(2, _pb_schema(s))) for name, s in doc["definitions"].items())
    return _str(1, doc["swagger"]) + _len(2, info) + _len(8, paths) + _len(9, definitions)


# ------------------------------------------------------------------------------------------ cache

_LOCK = threading.Lock()
_CACHE: dict[tuple[Served, ...], Built] = {}


def _digest(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


def built() -> Built:
    """The documents for the kinds served now, built once per process per set of kinds."""
    resources = served()
    found = _CACHE.get(resources)
    if found is not None:
        return found
    with _LOCK:
        found = _CACHE.get(resources)
        if found is None:
            v3 = build_v3(resources)
            v3_bodies = {}
            for part, doc in v3.items():
                body = json.dumps(doc, separators=(",", ":")).encode()
                v3_bodies[part] = (_digest(body), body)
            v2 = build_v2(v3)
            v2_json = json.dumps(v2, separators=(",", ":")).encode()
            found = Built(v3_bodies, v2_json, encode_v2(v2), _digest(v2_json))
            _CACHE.clear()
            _CACHE[resources] = found
    return found


def v3_index() -> dict[str, Any]:
    return {"paths": {part: {"serverRelativeURL": f"/openapi/v3/{part}?hash={digest}"}
                      for part, (digest, _) in built().v3.items()}}


def v3_document(part: str) -> tuple[str, bytes] | None:
    """(hash, JSON body) of ``api/v1``, ``apis/apps/v1``...; None when no such group-version is served."""
    return built().v3.get(part)


def v2_document(accept: str) -> tuple[str, bytes, str]:
    """(ETag, body, content type): protobuf when ``accept`` names gnostic's media type, else JSON."""
    b = built()
    if "protobuf" in accept and ("proto-openapi.spec.v2" in accept):
        return "proto-" + b.v2_etag, b.v2_proto, V2_PROTOBUF
    return "json-" + b.v2_etag, b.v2_json, "application/json"


def answer(rest: list[str], accept: str, if_none_match: str, asked_hash: str) -> tuple[int, bytes, str, list[tuple[str, str]]] | None:
    """The HTTP answer for ``/openapi/<rest>``: (code, body, content type, headers); None for a 404."""
    if rest == ["v3"]:
        return 200, json.dumps(v3_index(), separators=(",", ":")).encode(), "application/json", []
    if rest == ["v2"]:
        etag, body, ctype = v2_document(accept)
        return _conditional(etag, body, ctype, if_none_match, [("Cache-Control", "no-cache, private"), ("Vary", "Accept")])
    if len(rest) >= 2 and rest[0] == "v3":
        part = "/".join(rest[1:])
        found = v3_document(part)
        if found is None:
            return None
        digest, body = found
        if asked_hash and asked_hash != digest:  # a stale link: send the client to the current document
            return 301, b"", "application/json", [("Location", f"/openapi/v3/{part}?hash={digest}"),
                                                   ("Cache-Control", "no-cache, private")]
        cache = "public, immutable" if asked_hash else "no-cache, private"
        return _conditional(digest, body, "application/json", if_none_match, [("Cache-Control", cache)])
    return None


def _conditional(etag: str, body: bytes, ctype: str, if_none_match: str,
                 headers: list[tuple[str, str]]) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    quoted = f'"{etag}"'
    headers = [("ETag", quoted), *headers]
    if if_none_match and (if_none_match.strip() == "*" or quoted in [t.strip() for t in if_none_match.split(",")]):
        return 304, b"", ctype, headers
    return 200, body, ctype, headers
