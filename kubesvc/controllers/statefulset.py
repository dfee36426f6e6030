"""The StatefulSet controller (pkg/controller/statefulset), one pass per ``sync``.

Rules kept here:
- Pods are ``<set>-<ordinal>`` for ordinals ``0..replicas-1``, created from the template with
  ``spec.hostname`` = the pod name and ``spec.subdomain`` = ``serviceName`` (so the endpoints
  controller gives the address that hostname and DNS answers ``<pod>.<service>.<ns>.svc.<zone>``), the
  labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
  ``controller-revision-hash`` (``<set>-<hash of the template>``), and the set as controller owner.
  Matching orphan pods are adopted.
- ``OrderedReady`` (default): one pod at a time in ordinal order, each created only when every lower
  ordinal is Running and Ready; scale down removes the highest ordinal first, one at a time, only
  while the others are Running and Ready. ``Parallel``: all missing pods created and all surplus
  pods deleted in one pass.
- A Failed or Succeeded pod is deleted and re-created with the same name.
- ``RollingUpdate``: once every pod is Running and Ready, the highest ordinal at or above
  ``partition`` whose revision is not the update revision is deleted (and re-created from the new
  template), one at a time, in reverse ordinal order. ``OnDelete``: pods change only when deleted.
  A pod below the partition that is deleted comes back from the current template (no
  ControllerRevision objects are kept, so the old template is not available).
- Status: replicas, readyReplicas, availableReplicas (ready for ``minReadySeconds``), currentReplicas,
  updatedReplicas, currentRevision, updateRevision (``<set>-<hash>``; current becomes update once every
  pod is updated and ready), collisionCount 0, observedGeneration.
- Events (``statefulset-controller``): SuccessfulCreate ``create Pod <pod> in StatefulSet <set> successful``
  and SuccessfulDelete ``delete Pod <pod> in StatefulSet <set> successful``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from kubesvc.controllers import gc
from kubesvc.controllers import replicas as rp
from kubesvc.controllers.base import WorkloadController
from kubesvc.errors import AlreadyExists

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.controllers")
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def revision_name(sts: Obj) -> str:
    template = (sts.get("spec") or {}).get("template") or {}
    return f"{sts['metadata']['name']}-{rp.template_hash(template, (sts.get('status') or {}).get('collisionCount', 0))}"


def ordinal(sts: Obj, pod: Obj) -> int | None:
    m = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(\d+)", pod["metadata"]["name"])
    return int(m.group(1)) if m else None


def new_pod(sts: Obj, i: int, revision: str) -> Obj:
    name = f"{sts['metadata']['name']}-{i}"
    pod = rp.pod_from_template(sts, name)
    pod["metadata"].pop("generateName", None)
    labels = pod["metadata"].setdefault("labels", {})
    labels.update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(i), REVISION_LABEL: revision})
    pspec = pod["spec"]
    pspec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        pspec["subdomain"] = service
    return pod


def running_ready(pod: Obj) -> bool:
    return rp.is_ready(pod) and not pod["metadata"].get("deletionTimestamp")


class StatefulSetController(WorkloadController):
    component, kind, log_key = "statefulset-controller", "StatefulSet", "statefulset"

    def sync_one(self, sts: Obj, all_pods: list[Obj], now: datetime) -> None:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        mine = gc.claim(self.registry, sts, all_pods)
        if meta.get("deletionTimestamp"):
            return
        replicas = int(spec.get("replicas", 1))
        update_rev = revision_name(sts)
        status = sts.get("status") or {}
        current_rev = status.get("currentRevision") or update_rev
        parallel = spec.get("podManagementPolicy") == "Parallel"
        by_ordinal: dict[int, Obj] = {}
        strays: list[Obj] = []
        for p in mine:
            i = ordinal(sts, p)
            if i is None:
                strays.append(p)
            else:
                by_ordinal[i] = p
        acted = False
        for p in strays:  # a matching pod that is no ordinal of ours: upstream never creates one
            acted |= self._delete(sts, p)
        # replace finished pods (they come back with the same name on a later pass)
        for i, p in sorted(by_ordinal.items()):
            if (p.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
                acted |= self._delete(sts, p)
                del by_ordinal[i]
                if not parallel:
                    break
        if not acted:
            acted = self._scale(sts, by_ordinal, replicas, update_rev, current_rev, parallel)
        if not acted and (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            acted = self._roll(sts, by_ordinal, replicas, update_rev)
        if acted:
            return  # the status follows on a later pass, with the pods counted
        self._status(sts, list(by_ordinal.values()), replicas, update_rev, current_rev, now, ns, name)

    def _scale(self, sts: Obj, by_ordinal: dict[int, Obj], replicas: int, update_rev: str, current_rev: str,
               parallel: bool) -> bool:
        partition = int(((sts["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)
        acted = False
        for i in range(replicas):
            p = by_ordinal.get(i)
            if p is None:
                rollback = i < partition and current_rev != update_rev
                if rollback:
                    log.info("pod below partition re-created from the current template", extra={"kv": {"pod": i}})
                self._create_ordinal(sts, i, update_rev)
                acted = True
                if not parallel:
                    return True
            elif not parallel and not running_ready(p):
                return acted  # OrderedReady: wait for this one
        surplus = sorted((i for i in by_ordinal if i >= replicas), reverse=True)
        for i in surplus:
            if not parallel and not all(running_ready(by_ordinal[j]) for j in by_ordinal if j < i):
                return acted
            acted |= self._delete(sts, by_ordinal[i])
            if not parallel:
                return acted
        return acted

    def _roll(self, sts: Obj, by_ordinal: dict[int, Obj], replicas: int, update_rev: str) -> bool:
        partition = int(((sts["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)
        live = [by_ordinal[i] for i in range(replicas) if i in by_ordinal]
        if len(live) < replicas or not all(running_ready(p) for p in live):
            return False
        for i in range(replicas - 1, partition - 1, -1):
            p = by_ordinal[i]
            if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != update_rev:
                return self._delete(sts, p)
        return False

    def _create_ordinal(self, sts: Obj, i: int, revision: str) -> None:
        pod = new_pod(sts, i, revision)
        try:
            self.registry.create(pod)
        except AlreadyExists:
            return
        self.event(sts, "Normal", "SuccessfulCreate",
                   f"create Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful")

    def deleted_message(self, sts: Obj, pod_name: str) -> str:
        return f"delete Pod {pod_name} in StatefulSet {sts['metadata']['name']} successful"

    def _status(self, sts: Obj, pods: list[Obj], replicas: int, update_rev: str, current_rev: str, now: datetime,
                ns: str, name: str) -> None:
        min_ready = int((sts["spec"] or {}).get("minReadySeconds") or 0)
        active = [p for p in pods if rp.is_active(p)]

        def rev(p: Obj) -> str:
            return str((p["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))

        updated = sum(1 for p in active if rev(p) == update_rev)
        ready = sum(1 for p in active if rp.is_ready(p))
        if updated == replicas and len(active) == replicas and ready == replicas:
            current_rev = update_rev
        current = sum(1 for p in active if rev(p) == current_rev)
        old = sts.get("status") or {}
        status: Obj = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(active),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "availableReplicas": sum(1 for p in active if rp.is_available(p, min_ready, now)),
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": old.get("collisionCount", 0),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount",
                                                                  "observedGeneration")}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if old != status:
            self.registry.update_status("StatefulSet", ns, name, lambda o: o.__setitem__("status", status))
