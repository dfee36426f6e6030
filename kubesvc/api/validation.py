"""Semantic validation entry points: ``validate(obj)`` and ``validate_update(new, old)``.

Rules kept here:
- Dispatch on ``kind``; every error of one object is returned together, in the apiserver's order
  (metadata first, then the kind's rules). An unknown kind is checked for metadata only.
- ``validate_update`` runs the update-only rules first, then the full ``validate(new)`` — as
  ``ValidateServiceUpdate`` does — except for kinds whose upstream update function already
  includes the spec checks (Pods, controllers).
- No allocation checks here (IP in range or taken, nodePort range or taken): the registry makes
  them after validation. Callers pass objects that went through ``strategy.prepare_for_*`` and
  ``defaults.apply_defaults`` first.
The per-kind rules live in ``validation_meta``, ``validation_service``, ``validation_workloads``,
``validation_networking``, ``validation_config``, ``validation_apps`` (StatefulSet, DaemonSet,
PodTemplate), ``validation_batch``, ``validation_cluster`` (Node, ServiceAccount, quotas, PDB,
PriorityClass, HPA, EndpointSlice) and ``validation_rbac``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubesvc.api import validation_apps as apps
from kubesvc.api import validation_batch as batch
from kubesvc.api import validation_cluster as cluster
from kubesvc.api import validation_rbac as rbac
from kubesvc.api.field import FieldError
from kubesvc.api.validation_config import (
    validate_config_map,
    validate_config_update,
    validate_event,
    validate_namespace,
    validate_namespace_update,
    validate_secret,
)
from kubesvc.api.validation_meta import validate_object_meta, validate_object_meta_update
from kubesvc.api.validation_networking import (
    validate_ingress,
    validate_ingress_class,
    validate_ingress_class_update,
    validate_ingress_update,
)
from kubesvc.api.validation_service import (
    validate_endpoints,
    validate_endpoints_update,
    validate_service,
    validate_service_update,
)
from kubesvc.api.validation_workloads import (
    validate_controller_update,
    validate_deployment,
    validate_pod,
    validate_pod_update,
    validate_replica_set,
    validate_replication_controller,
)

Obj = dict[str, Any]

_CREATE: dict[str, Callable[[Obj], list[FieldError]]] = {
    "Service": validate_service,
    "Endpoints": validate_endpoints,
    "Pod": validate_pod,
    "ReplicationController": validate_replication_controller,
    "ReplicaSet": validate_replica_set,
    "Deployment": validate_deployment,
    "Ingress": validate_ingress,
    "IngressClass": validate_ingress_class,
    "ConfigMap": validate_config_map,
    "Secret": validate_secret,
    "Namespace": validate_namespace,
    "Event": validate_event,
    "StatefulSet": apps.validate_stateful_set,
    "DaemonSet": apps.validate_daemon_set,
    "PodTemplate": apps.validate_pod_template,
    "Job": batch.validate_job,
    "CronJob": batch.validate_cron_job,
    "Node": cluster.validate_node,
    "ServiceAccount": cluster.validate_service_account,
    "ResourceQuota": cluster.validate_resource_quota,
    "LimitRange": cluster.validate_limit_range,
    "PodDisruptionBudget": cluster.validate_pdb,
    "PriorityClass": cluster.validate_priority_class,
    "HorizontalPodAutoscaler": cluster.validate_hpa,
    "EndpointSlice": cluster.validate_endpoint_slice,
    "Role": rbac.validate_role,
    "ClusterRole": rbac.validate_role,
    "RoleBinding": rbac.validate_binding,
    "ClusterRoleBinding": rbac.validate_binding,
}


def _controller_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_controller_update(new, old) + validate(new)[len(validate_object_meta(new)) :]


def _event_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_object_meta_update(new, old) + validate_event(new)


_UPDATE: dict[str, Callable[[Obj, Obj], list[FieldError]]] = {
    "Service": validate_service_update,
    "Endpoints": validate_endpoints_update,
    "Pod": validate_pod_update,
    "ReplicationController": _controller_update,
    "ReplicaSet": _controller_update,
    "Deployment": _controller_update,
    "Ingress": validate_ingress_update,
    "IngressClass": validate_ingress_class_update,
    "ConfigMap": validate_config_update,
    "Secret": validate_config_update,
    "Namespace": validate_namespace_update,
    "Event": _event_update,
    "StatefulSet": apps.validate_stateful_set_update,
    "DaemonSet": apps.validate_daemon_set_update,
    "PodTemplate": apps.validate_pod_template_update,
    "Job": batch.validate_job_update,
    "CronJob": batch.validate_cron_job_update,
    "Node": cluster.validate_node_update,
    "ServiceAccount": cluster.validate_service_account_update,
    "ResourceQuota": cluster.validate_resource_quota_update,
    "LimitRange": cluster.validate_limit_range_update,
    "PodDisruptionBudget": cluster.validate_pdb_update,
    "PriorityClass": cluster.validate_priority_class_update,
    "HorizontalPodAutoscaler": cluster.validate_hpa_update,
    "EndpointSlice": cluster.validate_endpoint_slice_update,
    "Role": rbac.validate_role_update,
    "ClusterRole": rbac.validate_role_update,
    "RoleBinding": rbac.validate_binding_update,
    "ClusterRoleBinding": rbac.validate_binding_update,
}


def validate(obj: Obj) -> list[FieldError]:
    """All semantic errors of a (defaulted) object, in the apiserver's order."""
    check = _CREATE.get(obj.get("kind", ""), validate_object_meta)
    return check(obj)


def validate_update(new: Obj, old: Obj) -> list[FieldError]:
    """Update-only rules (immutable fields, §3.3 for Services) followed by the create rules."""
    check = _UPDATE.get(new.get("kind", ""))
    if check is None:
        return validate_object_meta_update(new, old)
    return check(new, old)
