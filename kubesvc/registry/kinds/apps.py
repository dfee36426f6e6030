"""Strategies of apps/v1 (``pkg/registry/apps``): the workload owners. Their dependents (ReplicaSets, Pods,
through ``ownerReferences``) are found and deleted, orphaned or waited for by the registry's garbage
collection (``registry.gc``) per the delete's propagation policy; ``dependents`` names them for the docs."""

from __future__ import annotations

from kubesvc.registry.kinds import Strategy


class DeploymentStrategy(Strategy):
    kinds = ("Deployment",)
    dependents = ("ReplicaSet", "Pod")


class PodOwnerStrategy(Strategy):
    kinds = ("ReplicaSet", "StatefulSet", "DaemonSet")
    dependents = ("Pod",)


STRATEGIES = (DeploymentStrategy, PodOwnerStrategy)
