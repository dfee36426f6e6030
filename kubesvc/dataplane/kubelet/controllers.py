"""The replica controllers' reconcile loop, run inside `kubesvc kubelet` (pure rules: controllers/replicas.py).

Rules kept here:
- One pass = ReplicationControllers and ReplicaSets (create/delete pods, write status), then
  Deployments (create/scale/retire ReplicaSets, write revision and status), from fresh store reads;
  the node agent calls it whenever the store revision moves and at least every sync period.
- Every action is an Event on the owner, with the upstream controllers' reasons and wording:
  SuccessfulCreate / SuccessfulDelete (``replicaset-controller``, ``replication-controller``) and
  ScalingReplicaSet (``deployment-controller``).
- Then the StatefulSet, DaemonSet, Job and CronJob controllers and the garbage collector
  (``kubesvc/controllers/``), each one pass over its kind.
- Pods are created through the registry (validation, defaults and a pod IP like any other pod).
"""

from __future__ import annotations

import logging
from typing import Any

from kubesvc.controllers import replicas as rp
from kubesvc.controllers.cronjob import CronJobController
from kubesvc.controllers.daemonset import DaemonSetController
from kubesvc.controllers.gc import GarbageCollector
from kubesvc.controllers.jobs import JobController
from kubesvc.controllers.statefulset import StatefulSetController
from kubesvc.dataplane.kubelet.events import Recorder
from kubesvc.errors import AlreadyExists, KubesvcError, NotFound
from kubesvc.registry.generic import Registry

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.controllers")
COMPONENTS = {"ReplicationController": "replication-controller", "ReplicaSet": "replicaset-controller",
              "Deployment": "deployment-controller"}


class Controllers:
    def __init__(self, registry: Registry, host: str) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorders = {k: Recorder(registry, c, host) for k, c in COMPONENTS.items()}
        # The workload controllers and the garbage collector (kubesvc/controllers/*.py), after the replica ones.
        self.workloads = [cls(registry, Recorder(registry, cls.component, host).event)
                          for cls in (StatefulSetController, DaemonSetController, JobController, CronJobController,
                                      GarbageCollector)]

    def sync(self) -> None:
        pods = self.store.list("Pod")
        for kind in ("ReplicationController", "ReplicaSet"):
            for owner in self.store.list(kind):
                self._guard(self._sync_replicas, owner, pods)
        for deploy in self.store.list("Deployment"):
            self._guard(self._sync_deployment, deploy)
        for ctrl in self.workloads:
            try:
                ctrl.sync()
            except KubesvcError as e:
                log.warning("sync failed", extra={"kv": {"controller": ctrl.component, "error": str(e)}})

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except NotFound:
            pass  # deleted while we looked: the next pass sees it gone
        except KubesvcError as e:
            log.warning("sync failed", extra={"kv": {"object": args[0]["metadata"]["name"], "error": str(e)}})

    def _event(self, owner: Obj, type_: str, reason: str, message: str) -> None:
        self.recorders[owner["kind"]].event(owner, type_, reason, message)

    # ------------------------------------------------------------------ ReplicaSet / RC

    def _sync_replicas(self, owner: Obj, pods: list[Obj]) -> None:
        ns = owner["metadata"].get("namespace", "default")
        from kubesvc.controllers import gc

        plan = rp.plan_replicas(owner, gc.claim(self.registry, owner, pods))  # matching orphans adopted
        for _ in range(plan.create):
            for _attempt in range(3):
                try:
                    pod = self.registry.create(rp.pod_from_template(owner)).object
                    break
                except AlreadyExists:
                    continue
            else:
                continue
            self._event(owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        for name in plan.delete:
            try:
                self.registry.delete("Pod", ns, name)
            except NotFound:
                continue
            self._event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        if plan.create or plan.delete:
            return  # the status follows on the next pass, with the pods counted
        if (owner.get("status") or {}) != plan.status:
            self.registry.update_status(owner["kind"], ns, owner["metadata"]["name"],  # type: ignore[attr-defined]
                                        lambda o: o.__setitem__("status", plan.status))

    # ------------------------------------------------------------------ Deployment

    def _sync_deployment(self, deploy: Obj) -> None:
        ns = deploy["metadata"].get("namespace", "default")
        name = deploy["metadata"]["name"]
        rss = self.store.list("ReplicaSet", ns)
        plan = rp.plan_deployment(deploy, rss, self.store.list("Pod", ns))
        by_name = {r["metadata"]["name"]: r for r in rss}
        if plan.create is not None:
            rs = self.registry.create(plan.create).object
            n = (rs.get("spec") or {}).get("replicas", 0)
            self._event(deploy, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs['metadata']['name']} to {n}")
        for rs_name, rev in plan.revisions.items():
            def stamp(o: dict[str, Any], rev: int = rev) -> None:
                rp.stamp_revision(o, rev)

            self.registry.mutate("ReplicaSet", ns, rs_name, stamp)
        desired = int((deploy.get("spec") or {}).get("replicas", 1))
        surge, _ = rp.resolve_fenceposts(deploy)
        for rs_name, n in plan.scale.items():
            old_n = int((by_name[rs_name].get("spec") or {}).get("replicas", 0))

            def scale(o: Obj, n: int = n) -> None:
                o["spec"]["replicas"] = n
                ann = o["metadata"].setdefault("annotations", {})
                ann[rp.DESIRED], ann[rp.MAX_REPLICAS] = str(desired), str(desired + surge)

            self.registry.mutate("ReplicaSet", ns, rs_name, scale)
            word = "up" if n > old_n else "down"
            self._event(deploy, "Normal", "ScalingReplicaSet", f"Scaled {word} replica set {rs_name} to {n} from {old_n}")
        for rs_name in plan.delete:
            try:
                self.registry.delete("ReplicaSet", ns, rs_name)
            except NotFound:
                pass
        if plan.revision and rp.revision_of(deploy) != plan.revision:
            self.registry.mutate("Deployment", ns, name, lambda o: o["metadata"].setdefault("annotations", {})
                                 .__setitem__(rp.REVISION, str(plan.revision)))
        if (deploy.get("status") or {}) != plan.status and not plan.create and not plan.scale:
            self.registry.update_status("Deployment", ns, name,  # type: ignore[attr-defined]
                                        lambda o: o.__setitem__("status", plan.status))
