"""The DaemonSet controller (pkg/controller/daemon), one pass per ``sync``.

Rules kept here:
- Eligible nodes: the Node objects in the store (a new store has one, ``kubesvc-node``) that are not
  ``spec.unschedulable`` and whose labels match the template's ``nodeSelector``.
- One pod per eligible node: ``<set>-<random5>`` bound to the node (``spec.nodeName``; upstream
  uses a node affinity term, the effect is the same with one scheduler-less node agent), labelled
  ``controller-revision-hash`` (``<hash of the template>``) and ``pod-template-generation``. Matching
  orphans are adopted. Surplus pods on a node, pods on a node that is gone or not eligible, and
  Failed/Succeeded pods are deleted (the missing one is re-created on the next pass).
- ``RollingUpdate``: pods of an old revision are deleted while the unavailable pods stay within
  ``maxUnavailable`` (an int or a percentage of the desired count, rounded up; at least 1);
  ``maxSurge`` is not used (old pods go before new ones come). ``OnDelete``: only deleted pods change.
- Status: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled, numberReady,
  updatedNumberScheduled, numberAvailable, numberUnavailable, observedGeneration (zero counts kept,
  as the apiserver's JSON for these int32 fields shows them).
- Events (``daemonset-controller``): SuccessfulCreate "Created pod: <pod>", SuccessfulDelete "Deleted pod: <pod>".
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import partial
from typing import Any

from kubesvc.controllers import gc
from kubesvc.controllers import replicas as rp
from kubesvc.controllers.base import WorkloadController

Obj = dict[str, Any]
REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"


def revision(ds: Obj) -> str:
    return rp.template_hash((ds.get("spec") or {}).get("template") or {}, (ds.get("status") or {}).get("collisionCount", 0))


def eligible(ds: Obj, node: Obj) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    want = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in want.items())


def new_pod(ds: Obj, node: str, rev: str) -> Obj:
    pod = rp.pod_from_template(ds)
    labels = pod["metadata"].setdefault("labels", {})
    labels[REVISION_LABEL] = rev
    labels[GENERATION_LABEL] = str(ds["metadata"].get("generation", 1))
    pod["spec"]["nodeName"] = node
    return pod


def max_unavailable(ds: Obj, desired: int) -> int:
    ru = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {})
    v = ru.get("maxUnavailable", 1)
    n = math.ceil(desired * int(v[:-1]) / 100) if isinstance(v, str) and v.endswith("%") else int(v)
    return max(1, n)


class DaemonSetController(WorkloadController):
    component, kind, log_key = "daemonset-controller", "DaemonSet", "daemonset"
    lists = ("Pod", "Node")

    def sync_one(self, ds: Obj, all_pods: list[Obj], nodes: list[Obj], now: datetime) -> None:
        meta, spec = ds["metadata"], ds.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta["name"]
        mine = gc.claim(self.registry, ds, all_pods)
        if meta.get("deletionTimestamp"):
            return
        rev = revision(ds)
        wanted = {n["metadata"]["name"] for n in nodes if eligible(ds, n)}
        acted = False
        by_node: dict[str, list[Obj]] = {}
        for p in mine:
            node = (p.get("spec") or {}).get("nodeName") or ""
            if node not in wanted or (p.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
                acted |= self._delete(ds, p)
                continue
            by_node.setdefault(node, []).append(p)
        for node, pods in by_node.items():
            if len(pods) > 1:  # keep the oldest
                for p in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))[1:]:
                    acted |= self._delete(ds, p)
                by_node[node] = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))[:1]
        for node in sorted(wanted - set(by_node)):
            acted |= self._create(ds, partial(new_pod, ds, node, rev))
        current = [ps[0] for ps in by_node.values()]
        if not acted and (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            min_ready = int(spec.get("minReadySeconds") or 0)
            unavailable = len(wanted) - sum(1 for p in current if rp.is_available(p, min_ready, now))
            budget = max_unavailable(ds, len(wanted)) - unavailable
            old = [p for p in current if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != rev]
            # unavailable old pods first: replacing them costs nothing
            old.sort(key=lambda p: rp.is_available(p, min_ready, now))
            for p in old:
                if rp.is_available(p, min_ready, now):
                    if budget <= 0:
                        break
                    budget -= 1
                acted |= self._delete(ds, p)
        if acted:
            return
        self._status(ds, current, len(wanted), rev, now, ns, name)

    def _status(self, ds: Obj, pods: list[Obj], desired: int, rev: str, now: datetime, ns: str, name: str) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        available = sum(1 for p in pods if rp.is_available(p, min_ready, now))
        status: Obj = {
            "currentNumberScheduled": len(pods),
            "numberMisscheduled": 0,
            "desiredNumberScheduled": desired,
            "numberReady": sum(1 for p in pods if rp.is_ready(p)),
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == rev),
            "numberAvailable": available,
            "numberUnavailable": max(0, desired - available),
        }
        for k in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):  # omitempty upstream
            if not status[k]:
                del status[k]
        old = ds.get("status") or {}
        if old.get("collisionCount"):
            status["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if old != status:
            self.registry.update_status("DaemonSet", ns, name, lambda o: o.__setitem__("status", status))
