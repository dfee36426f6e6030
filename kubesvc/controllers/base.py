"""What the workload controllers (StatefulSet, DaemonSet, Job, CronJob) share: the constructor, the
per-pass loop over the owner kind, and deleting/creating one pod with its Event.

A subclass names its ``component`` (the Events' source), ``kind`` (the objects synced one by one),
``log_key`` (the log field naming a failing object), ``lists`` (the kinds listed once per pass and
handed to ``sync_one`` before ``now``) and ``errors`` (logged and skipped; NotFound and Conflict,
a race with another writer, are skipped silently), and defines ``sync_one``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubesvc.errors import AlreadyExists, Conflict, KubesvcError, NotFound
from kubesvc.registry.generic import Registry

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.controllers")


class WorkloadController:
    component: str
    kind: str
    log_key: str
    lists: tuple[str, ...] = ("Pod",)
    errors: tuple[type[Exception], ...] = (KubesvcError,)
    sync_one: Callable[..., None]

    def __init__(self, registry: Registry, event: Callable[[Obj, str, str, str], None]) -> None:
        self.registry = registry
        self.store = registry.store
        self.event = event

    def sync(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        listed = [self.store.list(k) for k in self.lists]
        for obj in self.store.list(self.kind):
            try:
                self.sync_one(obj, *listed, now)
            except (NotFound, Conflict):
                pass
            except self.errors as e:
                log.warning("sync failed", extra={"kv": {self.log_key: obj["metadata"]["name"], "error": str(e)}})

    def deleted_message(self, owner: Obj, pod_name: str) -> str:
        return f"Deleted pod: {pod_name}"

    def _create(self, owner: Obj, make: Callable[[], Obj]) -> bool:
        """Create the pod ``make()`` builds (a fresh random name on each of 3 tries); Event on success."""
        for _ in range(3):
            try:
                pod = self.registry.create(make()).object
            except AlreadyExists:
                continue
            self.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
            return True
        return False

    def _delete(self, owner: Obj, pod: Obj) -> bool:
        ns, name = pod["metadata"].get("namespace", "default"), pod["metadata"]["name"]
        try:
            self.registry.delete("Pod", ns, name)
        except NotFound:
            return False
        self.event(owner, "Normal", "SuccessfulDelete", self.deleted_message(owner, name))
        return True
