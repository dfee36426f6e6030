"""What `kubesvc scale` and `kubesvc rollout status|restart|undo` do, over the registry (kubectl's
scale.go and rollout/*.go).

Rules kept here:
- scale: deployments, replicasets and replicationcontrollers; ``--current-replicas`` is a
  precondition; prints ``<type>/<name> scaled``.
- rollout restart: sets the template annotation ``kubectl.kubernetes.io/restartedAt`` (a new template,
  hence a rolling update); a paused deployment is refused as kubectl does.
- rollout undo: copies the template of the ReplicaSet with ``--to-revision`` (default: the previous
  revision) into the Deployment, without the pod-template-hash label; nothing to undo is an error.
- rollout status: kubectl's messages, each printed once when it changes, until the rollout is done,
  ``--timeout`` passes (exit 1) or, without ``--watch``, after one look.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubesvc.api.kinds import BY_KIND
from kubesvc.controllers import replicas as rp
from kubesvc.errors import BadRequest, ClientError, Conflict
from kubesvc.registry.generic import Registry

Obj = dict[str, Any]
SCALABLE = ("Deployment", "ReplicaSet", "ReplicationController")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _ref(kind: str, name: str) -> str:
    return f"{BY_KIND[kind].type_name}/{name}"


def scale(registry: Registry, kind: str, namespace: str, name: str, replicas: int, current: int = -1) -> str:
    if kind not in SCALABLE:
        raise ClientError(f"cannot scale {BY_KIND[kind].plural}: only deployments, replicasets and replicationcontrollers")
    if replicas < 0:
        raise ClientError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")

    def fn(obj: Obj) -> None:
        have = int((obj.get("spec") or {}).get("replicas", 1))
        if current >= 0 and have != current:
            raise BadRequest(f"Expected replicas to be {current}, was {have}")
        obj["spec"]["replicas"] = replicas

    registry.mutate(kind, namespace, name, fn)
    return f"{_ref(kind, name)} scaled\n"


def restart(registry: Registry, namespace: str, name: str) -> str:
    def fn(obj: Obj) -> None:
        if (obj.get("spec") or {}).get("paused"):
            raise ClientError(f"deployments/{name} can't restart paused deployment (run rollout resume first)")
        tmeta = obj["spec"].setdefault("template", {}).setdefault("metadata", {})
        tmeta.setdefault("annotations", {})[RESTARTED_AT] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    registry.mutate("Deployment", namespace, name, fn)
    return f"{_ref('Deployment', name)} restarted\n"


def undo(registry: Registry, namespace: str, name: str, to_revision: int = 0) -> str:
    deploy = registry.get("Deployment", namespace, name)
    rss = [r for r in registry.list("ReplicaSet", namespace) if rp.owned(r, deploy)]
    current = rp.revision_of(deploy)
    if to_revision:
        found = [r for r in rss if rp.revision_of(r) == to_revision]
        if not found:
            raise ClientError(f"unable to find specified revision {to_revision} in history")
        target = found[0]
    else:
        older = sorted((r for r in rss if 0 < rp.revision_of(r) < current), key=rp.revision_of)
        if not older:
            raise ClientError(f'no rollout history found for deployment "{name}"')
        target = older[-1]
    template = copy.deepcopy(target["spec"]["template"])
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop(rp.HASH_LABEL, None)
    if rp._without_hash(deploy["spec"].get("template") or {}) == rp._without_hash(template):
        return f"{_ref('Deployment', name)} skipped rollback (current template already matches revision {rp.revision_of(target)})\n"

    def fn(obj: Obj) -> None:
        if obj["metadata"].get("resourceVersion") != deploy["metadata"].get("resourceVersion"):
            raise Conflict("deployments.apps", name)
        obj["spec"]["template"] = template

    registry.mutate("Deployment", namespace, name, fn)
    return f"{_ref('Deployment', name)} rolled back\n"


def status(registry: Registry, namespace: str, name: str, *, watch: bool, timeout: float,
           write: Callable[[str], None]) -> int:
    deadline = time.monotonic() + timeout if timeout > 0 else None
    last = ""
    while True:
        deploy = registry.get("Deployment", namespace, name)
        done, message = rp.rollout_done(deploy)
        if message != last:
            write(message)
            last = message
        if done or not watch:
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            raise ClientError("timed out waiting for the condition")
        registry.store.wait_for_change(registry.store.revision(), 0.5)
