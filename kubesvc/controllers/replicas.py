"""Pure replica controllers: ReplicationController/ReplicaSet pod counts and Deployment rollouts.

Rules kept here (pkg/controller/replicaset, pkg/controller/deployment):
- An owner's pods are the active ones (not Succeeded/Failed, not being deleted) whose controller
  ownerReference carries the owner's uid. Missing ones are created from the template as
  ``<owner>-<random5>`` with that ownerReference; surplus ones are deleted, least useful first
  (not ready before ready, not running before running, newest first).
- Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for at least
  ``minReadySeconds``), observedGeneration; zero counts are omitted as the apiserver's JSON does.
- Deployment: the new ReplicaSet is the one whose template equals the Deployment's ignoring the
  ``pod-template-hash`` label and empty maps and lists (``resources: {}`` equals no ``resources``), named ``<deployment>-<hash>``; RollingUpdate scales it up to
  ``replicas + maxSurge`` in total and scales old ones down keeping ``replicas - maxUnavailable``
  available (surge rounds up, unavailable down; both zero means unavailable 1); Recreate scales old
  ones to zero and waits for their pods to go before scaling the new one up. Revisions count up in
  ``deployment.kubernetes.io/revision``; a rollback re-uses the old ReplicaSet with a new revision,
  and that ReplicaSet keeps the revisions it had in ``deployment.kubernetes.io/revision-history``
  (comma-separated, oldest first, the oldest dropped past 2000 characters: ``SetNewReplicaSetAnnotations``).
  Old ReplicaSets at zero beyond ``revisionHistoryLimit`` (10) are deleted. ``paused`` stops scaling.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
MAX_REVISION_HISTORY_CHARS = 2000  # the deployment controller's revHistoryLimitInChars
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ------------------------------------------------------------------------------ pods of an owner


def uid(obj: Obj) -> str:
    return str(obj["metadata"].get("uid", ""))


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owned(obj: Obj, owner: Obj) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == uid(owner)


def owner_reference(owner: Obj) -> Obj:
    return {"apiVersion": owner.get("apiVersion", "v1"), "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": uid(owner), "controller": True, "blockOwnerDeletion": True}


def is_active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _ready_since(pod: Obj) -> datetime | None:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return None
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            if c.get("status") != "True":
                return None
            ts = c.get("lastTransitionTime")
            return _parse(ts) if ts else datetime.min.replace(tzinfo=UTC)
    return None


def is_ready(pod: Obj) -> bool:
    return _ready_since(pod) is not None


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    since = _ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or (now - since).total_seconds() >= min_ready_seconds


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def random_suffix(n: int = 5) -> str:
    return "".join(random.choices(SAFE_ALPHABET, k=n))


def selector_of(owner: Obj) -> dict[str, str]:
    sel = (owner.get("spec") or {}).get("selector") or {}
    if owner["kind"] == "ReplicationController":
        return dict(sel) or dict((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {})
    return dict(sel.get("matchLabels") or {})


def pod_from_template(owner: Obj, name: str | None = None) -> Obj:
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    ometa = owner["metadata"]
    meta: Obj = {"name": name or f"{ometa['name']}-{random_suffix()}", "generateName": f"{ometa['name']}-",
                 "namespace": ometa.get("namespace", "default"), "ownerReferences": [owner_reference(owner)]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}


@dataclass
class ReplicaPlan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)


def least_useful_first(pods: list[Obj]) -> list[Obj]:
    """Deletion order: not ready before ready, not running before running, newest first."""
    newest_first = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return sorted(newest_first, key=lambda p: (is_ready(p), (p.get("status") or {}).get("phase") == "Running"))


def plan_replicas(owner: Obj, pods: list[Obj], now: datetime | None = None) -> ReplicaPlan:
    """What an RC/RS controller does now: pods to create and delete, and the status to write."""
    now = now or datetime.now(UTC)
    spec = owner.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    mine = [p for p in pods if owned(p, owner) and is_active(p)]
    plan = ReplicaPlan()
    if len(mine) < desired:
        plan.create = desired - len(mine)
    elif len(mine) > desired:
        plan.delete = [p["metadata"]["name"] for p in least_useful_first(mine)[: len(mine) - desired]]
    plan.status = replica_status(owner, mine, now)
    return plan


def replica_status(owner: Obj, mine: list[Obj], now: datetime) -> Obj:
    spec = owner.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    counts = {
        "replicas": len(mine),
        "fullyLabeledReplicas": sum(1 for p in mine if all((p["metadata"].get("labels") or {}).get(k) == v
                                                           for k, v in template_labels.items())),
        "readyReplicas": sum(1 for p in mine if is_ready(p)),
        "availableReplicas": sum(1 for p in mine if is_available(p, min_ready, now)),
    }
    status: Obj = {k: v for k, v in counts.items() if v or k == "replicas"}
    status["observedGeneration"] = owner["metadata"].get("generation", 1)
    old = owner.get("status") or {}
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    return status


# ------------------------------------------------------------------------------ deployments


def template_hash(template: Obj, collision_count: int = 0) -> str:
    body = json.dumps(_without_hash(template), sort_keys=True, separators=(",", ":")) + str(collision_count or "")
    n = int.from_bytes(hashlib.sha256(body.encode()).digest()[:5], "big")
    out = ""
    while n and len(out) < 10:
        n, r = divmod(n, len(SAFE_ALPHABET))
        out += SAFE_ALPHABET[r]
    return out or "b"


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def revision_of(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def stamp_revision(rs: Obj, revision: int) -> None:
    """Give a re-used ReplicaSet a newer revision; the one it had goes to the end of its revision history."""
    meta = rs.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    meta["annotations"] = annotations
    old = annotations.get(REVISION)
    if revision_of(rs) >= revision:
        return
    annotations[REVISION] = str(revision)
    if not old:
        return
    history = annotations.get(REVISION_HISTORY) or ""
    if not history:
        annotations[REVISION_HISTORY] = old
        return
    olds = history.split(",")
    total, start = len(history) + len(old) + 1, 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(olds):
        total -= len(olds[start]) + 1
        start += 1
    if total <= MAX_REVISION_HISTORY_CHARS:
        annotations[REVISION_HISTORY] = ",".join([*olds[start:], old])


def resolve_fenceposts(deploy: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as absolute numbers for the desired replica count."""
    spec = deploy.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    ru = ((spec.get("strategy") or {}).get("rollingUpdate") or {})

    def value(v: Any, default: str, round_up: bool) -> int:
        v = default if v is None else v
        if isinstance(v, str) and v.endswith("%"):
            x = desired * int(v[:-1]) / 100
            return math.ceil(x) if round_up else math.floor(x)
        return int(v)

    surge = value(ru.get("maxSurge"), "25%", True)
    unavailable = value(ru.get("maxUnavailable"), "25%", False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_replica_set(deploy: Obj, revision: int) -> Obj:
    spec = deploy.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    h = template_hash(template, (deploy.get("status") or {}).get("collisionCount", 0))
    tmeta = template.setdefault("metadata", {})
    tmeta.setdefault("labels", {})[HASH_LABEL] = h
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = h
    dmeta = deploy["metadata"]
    desired = int(spec.get("replicas", 1))
    surge, _ = resolve_fenceposts(deploy)
    annotations = {DESIRED: str(desired), MAX_REPLICAS: str(desired + surge), REVISION: str(revision)}
    cause = (dmeta.get("annotations") or {}).get("kubernetes.io/change-cause")
    if cause is not None:  # upstream copies the Deployment's annotations; `rollout history` reads this one
        annotations["kubernetes.io/change-cause"] = cause
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"{dmeta['name']}-{h}", "namespace": dmeta.get("namespace", "default"),
            "labels": dict(tmeta["labels"]),
            "annotations": annotations,
            "ownerReferences": [owner_reference(deploy)],
        },
        "spec": {"replicas": 0, "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                 "selector": selector, "template": template},
    }


@dataclass
class DeploymentPlan:
    create: Obj | None = None  # a new ReplicaSet (replicas already set)
    scale: dict[str, int] = field(default_factory=dict)  # ReplicaSet name -> replicas
    revisions: dict[str, int] = field(default_factory=dict)  # ReplicaSet name -> new revision
    delete: list[str] = field(default_factory=list)  # old ReplicaSets beyond revisionHistoryLimit
    revision: int = 0  # the Deployment's revision annotation
    status: Obj = field(default_factory=dict)


def _semantic(value: Any) -> Any:
    """A template as the controller's ``EqualIgnoreHash`` compares it (``equality.Semantic``: an empty map or
    list equals an absent one, as does a struct with nothing set, e.g. ``resources: {}``, which kubectl's
    rollback sends back while the stored template may lack it)."""
    if isinstance(value, dict):
        out = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def find_new(deploy: Obj, rss: list[Obj]) -> Obj | None:
    want = _semantic(_without_hash((deploy.get("spec") or {}).get("template") or {}))
    for rs in sorted(rss, key=lambda r: r["metadata"].get("creationTimestamp", "")):
        if _semantic(_without_hash((rs.get("spec") or {}).get("template") or {})) == want:
            return rs
    return None


def plan_deployment(deploy: Obj, all_rss: list[Obj], pods: list[Obj]) -> DeploymentPlan:
    spec = deploy.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    rss = [r for r in all_rss if owned(r, deploy)]
    plan = DeploymentPlan()
    new = find_new(deploy, rss)
    olds = [r for r in rss if new is None or r["metadata"]["name"] != new["metadata"]["name"]]
    max_rev = max((revision_of(r) for r in rss), default=0)
    replicas = {r["metadata"]["name"]: int((r.get("spec") or {}).get("replicas", 0)) for r in rss}
    # Availability from the pods themselves, not the ReplicaSets' status: a status written before the
    # last scale-down would let one pass remove more than maxUnavailable allows.
    now = datetime.now(UTC)
    min_ready = int(spec.get("minReadySeconds") or 0)
    available = {r["metadata"]["name"]: sum(1 for p in pods if owned(p, r) and is_active(p)
                                            and is_available(p, min_ready, now)) for r in rss}
    if new is None:
        new = new_replica_set(deploy, max_rev + 1)
        plan.create = new
        replicas[new["metadata"]["name"]] = 0
        available[new["metadata"]["name"]] = 0
    elif revision_of(new) < max_rev or revision_of(new) == 0:
        plan.revisions[new["metadata"]["name"]] = max_rev + 1
    new_name = new["metadata"]["name"]
    plan.revision = plan.revisions.get(new_name) or revision_of(new)
    strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
    if not spec.get("paused"):
        if strategy == "Recreate":
            _recreate(plan, desired, new_name, olds, replicas, pods)
        else:
            _rolling(plan, deploy, desired, new_name, olds, replicas, available)
    if plan.create is not None:
        plan.create["spec"]["replicas"] = plan.scale.pop(new_name, 0)
    limit = int(spec.get("revisionHistoryLimit", 10))
    idle = [r for r in olds if plan.scale.get(r["metadata"]["name"], replicas[r["metadata"]["name"]]) == 0
            and not (r.get("status") or {}).get("replicas")]
    idle.sort(key=revision_of)
    if len(idle) > limit:
        plan.delete = [r["metadata"]["name"] for r in idle[: len(idle) - limit]]
    plan.status = deployment_status(deploy, new if plan.create is None else None, rss)
    return plan


def _recreate(plan: DeploymentPlan, desired: int, new_name: str, olds: list[Obj], replicas: dict[str, int],
              pods: list[Obj]) -> None:
    for r in olds:
        if replicas[r["metadata"]["name"]] != 0:
            plan.scale[r["metadata"]["name"]] = 0
    old_pods = [p for p in pods if is_active(p) and any(owned(p, r) for r in olds)]
    if not plan.scale and not old_pods and replicas[new_name] != desired:
        plan.scale[new_name] = desired


def _rolling(plan: DeploymentPlan, deploy: Obj, desired: int, new_name: str, olds: list[Obj],
             replicas: dict[str, int], available: dict[str, int]) -> None:
    surge, max_unavailable = resolve_fenceposts(deploy)
    cur = dict(replicas)
    # scale up the new ReplicaSet within maxSurge
    if cur[new_name] > desired:
        cur[new_name] = desired
    elif cur[new_name] < desired:
        room = desired + surge - sum(cur.values())
        cur[new_name] += max(0, min(room, desired - cur[new_name]))
    if not olds and cur[new_name] != desired:
        cur[new_name] = desired
    # scale down old ones keeping minAvailable
    min_available = desired - max_unavailable
    new_unavailable = cur[new_name] - available.get(new_name, 0)
    budget = sum(cur.values()) - min_available - max(0, new_unavailable)
    oldest_first = sorted(olds, key=lambda r: (revision_of(r), r["metadata"].get("creationTimestamp", "")))
    if budget > 0:  # first the unhealthy replicas of old sets
        for r in oldest_first:
            n = r["metadata"]["name"]
            unhealthy = cur[n] - available.get(n, 0)
            cut = min(max(0, unhealthy), budget)
            cur[n] -= cut
            budget -= cut
    total_available = sum(available.get(n, 0) for n in cur)
    can_remove = total_available - min_available
    for r in oldest_first:
        if can_remove <= 0:
            break
        n = r["metadata"]["name"]
        cut = min(cur[n], can_remove)
        cur[n] -= cut
        can_remove -= cut
    for n, v in cur.items():
        if v != replicas.get(n):
            plan.scale[n] = v


def deployment_status(deploy: Obj, new: Obj | None, rss: list[Obj]) -> Obj:
    spec = deploy.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    total = sum(int((r.get("status") or {}).get("replicas", 0)) for r in rss)
    updated = int(((new or {}).get("status") or {}).get("replicas", 0)) if new else 0
    ready = sum(int((r.get("status") or {}).get("readyReplicas", 0)) for r in rss)
    avail = sum(int((r.get("status") or {}).get("availableReplicas", 0)) for r in rss)
    _, max_unavailable = resolve_fenceposts(deploy)
    old = deploy.get("status") or {}
    prev = {c.get("type"): c for c in old.get("conditions") or []}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def cond(kind: str, ok: bool, reason: str, message: str) -> Obj:
        p = prev.get(kind) or {}
        same = p.get("status") == ("True" if ok else "False")
        return {"type": kind, "status": "True" if ok else "False",
                "lastUpdateTime": p.get("lastUpdateTime", now) if same and p.get("reason") == reason else now,
                "lastTransitionTime": p.get("lastTransitionTime", now) if same else now,
                "reason": reason, "message": message}

    name = deploy["metadata"]["name"]
    new_name = (new or {}).get("metadata", {}).get("name", "")
    complete = new is not None and updated == desired and total == updated and avail >= updated
    status: Obj = {"observedGeneration": deploy["metadata"].get("generation", 1), "replicas": total,
                   "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": avail,
                   "unavailableReplicas": max(0, desired - avail)}
    status = {k: v for k, v in status.items() if v or k in ("observedGeneration",)}
    ok = avail >= desired - max_unavailable
    status["conditions"] = [
        cond("Available", ok, "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
             "Deployment has minimum availability." if ok else "Deployment does not have minimum availability."),
        cond("Progressing", True, "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
             f'ReplicaSet "{new_name}" has successfully progressed.' if complete
             else f'ReplicaSet "{new_name or name}" is progressing.'),
    ]
    if old.get("collisionCount"):
        status["collisionCount"] = old["collisionCount"]
    return status


def rollout_done(deploy: Obj) -> tuple[bool, str]:
    """kubectl's DeploymentStatusViewer: (done, message)."""
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    name = deploy["metadata"]["name"]
    if deploy["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False, "Waiting for deployment spec update to be observed...\n"
    desired = int(spec.get("replicas", 1))
    updated, replicas = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < desired:
        return False, (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {desired} '
                       "new replicas have been updated...\n")
    if replicas > updated:
        return False, (f'Waiting for deployment "{name}" rollout to finish: {replicas - updated} old replicas '
                       "are pending termination...\n")
    if available < updated:
        return False, (f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} '
                       "updated replicas are available...\n")
    return True, f'deployment "{name}" successfully rolled out\n'
