"""apiserver defaulting per kind: ``apply_defaults(obj, old=None)`` mutates ``obj`` in place.

Rules kept here (``pkg/apis/core/v1/defaults.go``, ``pkg/apis/apps/v1/defaults.go``, the Service
strategy's ``NormalizeClusterIPs`` and ``initIPFamilyFields`` in ``service/storage/alloc.go``):
- Idempotent: applying twice changes nothing, so the pipeline may call it more than once.
- Service: sessionAffinity None (config dropped) / ClientIP with a 10800 s timeout; type
  ClusterIP; port protocol TCP; targetPort = port when absent, 0 or ""; externalTrafficPolicy
  Cluster when externally accessible; internalTrafficPolicy Cluster for ClusterIP/NodePort/LB;
  allocateLoadBalancerNodePorts true and ``status.loadBalancer.ingress[].ipMode`` VIP (where ip
  is set) for LB. Then clusterIP -> clusterIPs normalization, then IP-family init (not for
  ExternalName).
- IP families: kubesvc is a single-stack IPv4 cluster. ipFamilyPolicy: the old one on update
  when absent; RequireDualStack for headless (clusterIP None) selector-less Services; else
  SingleStack. ipFamilies: inferred from clusterIPs, else [IPv4]. Decision (faithful to
  alloc.go's headless+selectorless special case, which runs before the dual-stack checks): such
  a Service whose policy is not SingleStack gets the other family appended even on a
  single-stack cluster, i.e. ``ipFamilies: [IPv4, IPv6]`` with ``RequireDualStack``, exactly as
  real single-stack clusters show it. No other Service gets a second family here.
- Endpoints: port protocol TCP. Pod (and every pod template): restartPolicy Always, dnsPolicy
  ClusterFirst, terminationGracePeriodSeconds 30, schedulerName default-scheduler, container
  port protocol TCP, imagePullPolicy Always for ``:latest`` or untagged images else IfNotPresent,
  terminationMessagePath/Policy, ``fieldRef.apiVersion`` v1 (env valueFrom, downwardAPI items).
- RC: selector and metadata.labels from the template labels when empty; replicas 1. RS and
  Deployment: replicas 1; Deployment strategy RollingUpdate 25%/25%, revisionHistoryLimit 10,
  progressDeadlineSeconds 600. Secret: type Opaque; ``stringData`` merged into ``data`` (each value
  base64 of its UTF-8 text, replacing a ``data`` key of the same name) and dropped, as v1->internal
  conversion does (``Convert_v1_Secret_To_core_Secret``: the field is write-only, never stored or
  returned). Namespace: spec.finalizers [kubernetes],
  status.phase Active, label kubernetes.io/metadata.name=<name>. IngressClass: parameters scope
  Cluster when parameters are given.
- StatefulSet: podManagementPolicy OrderedReady, updateStrategy RollingUpdate with partition 0,
  PVC retention Retain/Retain, replicas 1, revisionHistoryLimit 10. DaemonSet: RollingUpdate with
  maxUnavailable 1 / maxSurge 0, revisionHistoryLimit 10. Job: completions and parallelism 1 (when
  both are absent), backoffLimit 6, completionMode NonIndexed, suspend false, manualSelector false,
  podReplacementPolicy TerminatingOrFailed, metadata.labels from the template. CronJob:
  concurrencyPolicy Allow, suspend false, history limits 3 and 1 (its job template gets pod defaults
  only). PriorityClass: preemptionPolicy PreemptLowerPriority. HPA (v2): minReplicas 1, CPU 80 %
  when no metric, behavior rules filled when a behavior is given. LimitRange Container items:
  default from max, defaultRequest from default then min. Node: allocatable from capacity.
  RoleBinding/ClusterRoleBinding: roleRef and User/Group subjects in rbac.authorization.k8s.io.
  EndpointSlice ports: protocol TCP. PDB, ResourceQuota, ServiceAccount, Role: none.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kubesvc.api import names

Obj = dict[str, Any]

DEFAULT_IP_FAMILY = "IPv4"
CLIENT_IP_TIMEOUT = 10800


def apply_defaults(obj: Obj, old: Obj | None = None) -> None:
    """Fill in the apiserver's defaults for ``obj`` (``old`` is the stored object on update)."""
    fill = _BY_KIND.get(obj.get("kind", ""))
    if fill is not None:
        fill(obj, old)


# --- Service --------------------------------------------------------------------------------


def _service(svc: Obj, old: Obj | None) -> None:
    spec = svc.setdefault("spec", {})
    set_defaults_service(svc)
    normalize_cluster_ips(spec, (old or {}).get("spec") if old else None)
    init_ip_family_fields(spec, (old or {}).get("spec") if old else None)


def externally_accessible(spec: Obj) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def set_defaults_service(svc: Obj) -> None:
    """SetDefaults_Service."""
    spec = svc.setdefault("spec", {})
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig") or {}
        if (config.get("clientIP") or {}).get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_TIMEOUT}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        lb_status = (svc.get("status") or {}).get("loadBalancer") or {}
        for ingress in lb_status.get("ingress") or []:
            if isinstance(ingress, dict) and ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


def normalize_cluster_ips(spec: Obj, old_spec: Obj | None) -> None:
    """NormalizeClusterIPs: keep ``clusterIP`` and ``clusterIPs[0]`` in step (idempotent)."""
    cluster_ip = spec.get("clusterIP") or ""
    if old_spec is not None:
        same = (spec.get("clusterIPs") or []) == (old_spec.get("clusterIPs") or [])
        if not cluster_ip and old_spec.get("clusterIP") and same and spec.get("clusterIPs"):
            spec.pop("clusterIPs", None)  # the user cleared the singular field only
        elif cluster_ip and same and cluster_ip != (old_spec.get("clusterIP") or ""):
            spec["clusterIPs"] = [cluster_ip]  # the user changed the singular field only
    if cluster_ip and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [cluster_ip]


def init_ip_family_fields(spec: Obj, old_spec: Obj | None) -> None:
    """initIPFamilyFields for a single-stack IPv4 cluster (cluster-config errors: strategy.ip_family_errors)."""
    if spec.get("type") == "ExternalName":
        return
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    if spec.get("ipFamilyPolicy") is None:
        if old_spec is not None and old_spec.get("ipFamilyPolicy") is not None:
            spec["ipFamilyPolicy"] = old_spec["ipFamilyPolicy"]
        elif headless_selectorless:
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    families = list(spec.get("ipFamilies") or [])
    for i, ip in enumerate(spec.get("clusterIPs") or []):
        if ip == "None":
            break
        if i >= len(families) and names.parse_ip(ip) is not None:
            families.append(names.ip_family(ip))
    if not families:
        families = [DEFAULT_IP_FAMILY]
    if headless_selectorless and len(families) == 1 and spec["ipFamilyPolicy"] != "SingleStack":
        families.append("IPv6" if families[0] == "IPv4" else "IPv4")
    spec["ipFamilies"] = families


# --- Endpoints, Pods and pod templates --------------------------------------------------------


def _endpoints(ep: Obj, old: Obj | None) -> None:
    for subset in ep.get("subsets") or []:
        for port in (subset or {}).get("ports") or []:
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (digests included)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def set_defaults_pod_spec(spec: Obj) -> None:
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for key in ("containers", "initContainers"):
        for ctr in spec.get(key) or []:
            if not isinstance(ctr, dict):
                continue
            if not ctr.get("imagePullPolicy"):
                ctr["imagePullPolicy"] = image_pull_policy(str(ctr.get("image") or ""))
            if not ctr.get("terminationMessagePath"):
                ctr["terminationMessagePath"] = "/dev/termination-log"
            if not ctr.get("terminationMessagePolicy"):
                ctr["terminationMessagePolicy"] = "File"
            for port in ctr.get("ports") or []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"
            for env in ctr.get("env") or []:
                if isinstance(env, dict):
                    _field_ref_version(env.get("valueFrom"))
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        projected = vol.get("projected")
        sources = [vol.get("downwardAPI")]
        if isinstance(projected, dict):
            sources += [s.get("downwardAPI") for s in projected.get("sources") or [] if isinstance(s, dict)]
        for source in sources:
            if isinstance(source, dict):
                for item in source.get("items") or []:
                    _field_ref_version(item)


def _field_ref_version(holder: Any) -> None:
    """``fieldRef.apiVersion`` v1 when absent (``SetDefaults_ObjectFieldSelector``): env valueFrom and
    downwardAPI items (in a volume or a projected one) alike."""
    ref = holder.get("fieldRef") if isinstance(holder, dict) else None
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _pod(pod: Obj, old: Obj | None) -> None:
    set_defaults_pod_spec(pod.setdefault("spec", {}))


def _template_spec(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        set_defaults_pod_spec(template.setdefault("spec", {}))


def _replication_controller(rc: Obj, old: Obj | None) -> None:
    spec = rc.setdefault("spec", {})
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = rc.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template_spec(spec)


def _replica_set(rs: Obj, old: Obj | None) -> None:
    spec = rs.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template_spec(spec)


def _deployment(deploy: Obj, old: Obj | None) -> None:
    spec = deploy.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.setdefault("strategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = "25%"
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template_spec(spec)


# --- the rest ---------------------------------------------------------------------------------


def _secret(secret: Obj, old: Obj | None) -> None:
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data") or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value or "").encode()).decode()
        secret["data"] = data
    if not secret.get("type"):
        secret["type"] = "Opaque"


def _namespace(ns: Obj, old: Obj | None) -> None:
    meta = ns.setdefault("metadata", {})
    if meta.get("name"):
        labels = meta.get("labels") or {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
        meta["labels"] = labels
    spec = ns.setdefault("spec", {})
    if not spec.get("finalizers"):
        spec["finalizers"] = ["kubernetes"]
    status = ns.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Active"


def _ingress_class(ic: Obj, old: Obj | None) -> None:
    params = (ic.get("spec") or {}).get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"


_BY_KIND: dict[str, Callable[[Obj, Obj | None], None]] = {
    "Service": _service,
    "Endpoints": _endpoints,
    "Pod": _pod,
    "ReplicationController": _replication_controller,
    "ReplicaSet": _replica_set,
    "Deployment": _deployment,
    "Secret": _secret,
    "Namespace": _namespace,
    "IngressClass": _ingress_class,
}


# --- kinds served since issue 13 (pkg/apis/{apps,batch,core,rbac,scheduling,autoscaling,discovery}/v1*/defaults.go) ---


def _stateful_set(sts: Obj, old: Obj | None) -> None:
    """SetDefaults_StatefulSet (StatefulSetAutoDeletePVC on, MaxUnavailableStatefulSet off, as in 1.32)."""
    spec = sts.setdefault("spec", {})
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(retention, dict):
        retention = spec["persistentVolumeClaimRetentionPolicy"] = {}
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template_spec(spec)


def _daemon_set(ds: Obj, old: Obj | None) -> None:
    """SetDefaults_DaemonSet: RollingUpdate with maxUnavailable 1 and maxSurge 0, revisionHistoryLimit 10."""
    spec = ds.setdefault("spec", {})
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template_spec(spec)


def set_defaults_job_spec(spec: Obj, job_object: bool) -> None:
    """SetDefaults_Job's spec part; the JobTemplate of a CronJob only gets its pod template's defaults."""
    if job_object:
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
            spec["parallelism"] = 1
        if spec.get("parallelism") is None:
            spec["parallelism"] = 1
        if spec.get("backoffLimit") is None:
            spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
        if spec.get("completionMode") is None:
            spec["completionMode"] = "NonIndexed"
        if spec.get("suspend") is None:
            spec["suspend"] = False
        if spec.get("podReplacementPolicy") is None:
            spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed"
        if spec.get("manualSelector") is None:
            spec["manualSelector"] = False
    _template_spec(spec)


def _job(job: Obj, old: Obj | None) -> None:
    spec = job.setdefault("spec", {})
    set_defaults_job_spec(spec, job_object=True)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    meta = job.setdefault("metadata", {})
    if labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _cron_job(cj: Obj, old: Obj | None) -> None:
    """SetDefaults_CronJob: concurrencyPolicy Allow, suspend false, history limits 3 and 1."""
    spec = cj.setdefault("spec", {})
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    template = spec.get("jobTemplate")
    if isinstance(template, dict):
        set_defaults_job_spec(template.setdefault("spec", {}), job_object=False)


def _pod_template(pt: Obj, old: Obj | None) -> None:
    template = pt.get("template")
    if isinstance(template, dict):
        set_defaults_pod_spec(template.setdefault("spec", {}))


def _node(node: Obj, old: Obj | None) -> None:
    """SetDefaults_NodeStatus: allocatable is the capacity when absent."""
    status = node.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and status.get("capacity") is not None:
        status["allocatable"] = dict(status["capacity"])


def _limit_range(lr: Obj, old: Obj | None) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default is its max, its defaultRequest the default, else min."""
    for item in (lr.get("spec") or {}).get("limits") or []:
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = item.get("default") or {}
        for key, value in (item.get("max") or {}).items():
            default.setdefault(key, value)
        request = item.get("defaultRequest") or {}
        for key, value in default.items():
            request.setdefault(key, value)
        for key, value in (item.get("min") or {}).items():
            request.setdefault(key, value)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def _priority_class(pc: Obj, old: Obj | None) -> None:
    if pc.get("preemptionPolicy") is None:
        pc["preemptionPolicy"] = "PreemptLowerPriority"


HPA_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                             {"type": "Percent", "value": 100, "periodSeconds": 15}]}
HPA_SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                  "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _hpa(hpa: Obj, old: Obj | None) -> None:
    """autoscaling/v2 SetDefaults_HorizontalPodAutoscaler: minReplicas 1, 80 % CPU when no metric, and
    a given behavior's missing parts from the default scale-up and scale-down rules."""
    spec = hpa.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for key, rules in (("scaleUp", HPA_SCALE_UP), ("scaleDown", HPA_SCALE_DOWN)):
            given = behavior.get(key)
            if not isinstance(given, dict):
                given = behavior[key] = {}
            for field, value in rules.items():
                if given.get(field) is None:
                    given[field] = [dict(p) for p in value] if isinstance(value, list) else value


def _binding(binding: Obj, old: Obj | None) -> None:
    """rbac/v1 SetDefaults_RoleBinding/ClusterRoleBinding and SetDefaults_Subject."""
    ref = binding.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for subject in binding.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            if subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = "rbac.authorization.k8s.io"
            elif subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""


def _endpoint_slice(es: Obj, old: Obj | None) -> None:
    """SetDefaults_EndpointPort: protocol TCP, name ""."""
    for port in es.get("ports") or []:
        if isinstance(port, dict):
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if port.get("name") is None:
                port["name"] = ""


_BY_KIND.update({
    "StatefulSet": _stateful_set,
    "DaemonSet": _daemon_set,
    "Job": _job,
    "CronJob": _cron_job,
    "PodTemplate": _pod_template,
    "Node": _node,
    "LimitRange": _limit_range,
    "PriorityClass": _priority_class,
    "HorizontalPodAutoscaler": _hpa,
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
    "EndpointSlice": _endpoint_slice,
})
