"""Strategies of apps/v1 (``pkg/registry/apps``): the workload owners, whose dependents (ReplicaSets,
Pods) go with them in the delete's transaction. Everything else is the default strategy."""

from __future__ import annotations

from kubesvc.registry.kinds import Strategy


class DeploymentStrategy(Strategy):
    kinds = ("Deployment",)
    dependents = ("ReplicaSet", "Pod")


class PodOwnerStrategy(Strategy):
    kinds = ("ReplicaSet", "StatefulSet", "DaemonSet")
    dependents = ("Pod",)


STRATEGIES = (DeploymentStrategy, PodOwnerStrategy)
