"""The table of kinds kubesvc stores, with kubectl's resource names.

Rules kept here: short names are case-sensitive (``SVC`` is unknown); plural, singular and the
Kind (any case) all resolve; ``<resource>.<group>`` resolves (``deployments.apps``); ``all`` is a
category expanding in kubectl's order.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubesvc.errors import ClientError


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The qualified resource used in messages: ``services``, ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def type_name(self) -> str:
        """The ``-o name`` prefix: ``service``, ``deployment.apps``."""
        return f"{self.singular}.{self.group}" if self.group else self.singular


KINDS: tuple[Kind, ...] = (
    Kind("Pod", "", "v1", "pods", "pod", ("po",)),
    Kind("Service", "", "v1", "services", "service", ("svc",)),
    Kind("Endpoints", "", "v1", "endpoints", "endpoints", ("ep",)),
    Kind("ReplicationController", "", "v1", "replicationcontrollers", "replicationcontroller", ("rc",)),
    Kind("Namespace", "", "v1", "namespaces", "namespace", ("ns",), namespaced=False),
    Kind("ConfigMap", "", "v1", "configmaps", "configmap", ("cm",)),
    Kind("Secret", "", "v1", "secrets", "secret", ()),
    Kind("Event", "", "v1", "events", "event", ("ev",)),
    Kind("Deployment", "apps", "v1", "deployments", "deployment", ("deploy",)),
    Kind("ReplicaSet", "apps", "v1", "replicasets", "replicaset", ("rs",)),
    Kind("Ingress", "networking.k8s.io", "v1", "ingresses", "ingress", ("ing",)),
    Kind("IngressClass", "networking.k8s.io", "v1", "ingressclasses", "ingressclass", (), namespaced=False),
    Kind("Node", "", "v1", "nodes", "node", ("no",), namespaced=False),
    Kind("ServiceAccount", "", "v1", "serviceaccounts", "serviceaccount", ("sa",)),
    Kind("ResourceQuota", "", "v1", "resourcequotas", "resourcequota", ("quota",)),
    Kind("LimitRange", "", "v1", "limitranges", "limitrange", ("limits",)),
    Kind("PodTemplate", "", "v1", "podtemplates", "podtemplate", ()),
    Kind("StatefulSet", "apps", "v1", "statefulsets", "statefulset", ("sts",)),
    Kind("DaemonSet", "apps", "v1", "daemonsets", "daemonset", ("ds",)),
    Kind("Job", "batch", "v1", "jobs", "job", ()),
    Kind("CronJob", "batch", "v1", "cronjobs", "cronjob", ("cj",)),
    Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", ("pdb",)),
    Kind("PriorityClass", "scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", ("pc",), namespaced=False),
    Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", ("hpa",)),
    Kind("Role", "rbac.authorization.k8s.io", "v1", "roles", "role", ()),
    Kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", ()),
    Kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", (), namespaced=False),
    Kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", (),
         namespaced=False),
    Kind("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", "endpointslice", ()),
    Kind("APIService", "apiregistration.k8s.io", "v1", "apiservices", "apiservice", (), namespaced=False),
)

BY_KIND: dict[str, Kind] = {k.kind: k for k in KINDS}

# `kubectl get all` order (pods, services, deployments, replicasets; rc where kubesvc has them), then the
# other kinds upstream puts in the ``all`` category, in discovery order.
ALL_CATEGORY: tuple[str, ...] = ("Pod", "Service", "ReplicationController", "DaemonSet", "Deployment", "ReplicaSet",
                                 "StatefulSet", "HorizontalPodAutoscaler", "CronJob", "Job")


def _names(k: Kind) -> list[str]:
    names = [k.plural, k.singular, *k.short_names]
    if k.group:
        names += [f"{n}.{k.group}" for n in (k.plural, k.singular, *k.short_names)]
        first = k.group.split(".")[0]
        if first != k.group:
            names += [f"{n}.{first}" for n in (k.plural, k.singular)]
    return names


_LOOKUP: dict[str, Kind] = {}
for _k in KINDS:
    for _n in _names(_k):
        _LOOKUP[_n] = _k


def resolve(word: str) -> Kind:
    """A resource word from the command line (``svc``, ``services``, ``Service``) -> Kind."""
    found = _LOOKUP.get(word)
    if found is not None:
        return found
    lower = word.lower()
    for k in KINDS:
        if k.kind.lower() == lower or (k.plural == lower and word != word.upper()):
            return k
    raise ClientError(f'the server doesn\'t have a resource type "{word}"')


def for_object(api_version: str, kind: str, source: str, name: str = "", namespace: str = "") -> Kind:
    """The Kind of a manifest's apiVersion/kind, with kubectl's mapping error."""
    found = BY_KIND.get(kind)
    if found is None or found.api_version != api_version:
        raise ClientError(
            f'resource mapping not found for name: "{name}" namespace: "{namespace}" from "{source}": '
            f'no matches for kind "{kind}" in version "{api_version}"\nensure CRDs are installed first'
        )
    return found
