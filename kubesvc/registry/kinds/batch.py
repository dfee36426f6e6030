"""Strategies of batch/v1 (``pkg/registry/batch/job/strategy.go``).

Rules kept here:
- Job create: unless ``spec.manualSelector`` is true, the selector is generated
  (``batch.kubernetes.io/controller-uid: <uid>``) and the template gets the ``controller-uid``,
  ``job-name`` labels in both their legacy and ``batch.kubernetes.io/`` forms; a label the user set
  is kept (a conflict then fails validation). The uid is fixed here so that the store keeps it.
- A Job's pods and a CronJob's Jobs are its dependents (ownerReferences): the registry's garbage
  collection (``registry.gc``) deletes, orphans or waits for them per the propagation policy.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from kubesvc.registry.kinds import Strategy

if TYPE_CHECKING:
    from kubesvc.store.db import Txn

Obj = dict[str, Any]


class JobStrategy(Strategy):
    kinds = ("Job",)
    dependents = ("Pod",)

    def prepare_for_create(self, txn: Txn, obj: Obj) -> None:
        super().prepare_for_create(txn, obj)
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        spec = obj.setdefault("spec", {})
        if spec.get("manualSelector") is True:
            return
        template = spec.get("template")
        if not isinstance(template, dict):
            template = spec["template"] = {}
        tmeta = template.get("metadata")
        if not isinstance(tmeta, dict):
            tmeta = template["metadata"] = {}
        labels = tmeta.get("labels") or {}
        for key in ("job-name", "batch.kubernetes.io/job-name"):
            labels.setdefault(key, meta.get("name", ""))
        for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
            labels.setdefault(key, meta["uid"])
        tmeta["labels"] = labels
        selector = spec.get("selector")
        if not isinstance(selector, dict):
            selector = spec["selector"] = {}
        match = selector.get("matchLabels") or {}
        match.setdefault("batch.kubernetes.io/controller-uid", meta["uid"])
        selector["matchLabels"] = match


class CronJobStrategy(Strategy):
    kinds = ("CronJob",)
    dependents = ("Job",)


STRATEGIES = (JobStrategy, CronJobStrategy)
