"""Events written through the registry, as client-go's recorder does (tools/record).

Rules kept here: the name is ``<object>.<hex nanoseconds>``; a repeat of the same (object, type,
reason, message) bumps ``count`` and ``lastTimestamp`` of the earlier Event instead of adding one
(the recorder's aggregation), so a probe failing every second leaves one Event, not thousands.
A failed event write is logged and dropped: events never stop the work they describe.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubesvc.api.kinds import BY_KIND
from kubesvc.errors import KubesvcError, NotFound

if TYPE_CHECKING:
    from kubesvc.registry.generic import Registry

Obj = dict[str, Any]
log = logging.getLogger("kubesvc.kubelet")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Recorder:
    def __init__(self, registry: Registry, component: str, host: str) -> None:
        self.registry = registry
        self.component = component
        self.host = host
        self.seen: dict[tuple[str, str, str, str, str], str] = {}

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        key = (ns, meta.get("uid", meta["name"]), type_, reason, message)
        now = _now()
        try:
            name = self.seen.get(key)
            if name is not None:
                try:
                    def bump(ev: Obj) -> None:
                        ev["count"] = int(ev.get("count") or 1) + 1
                        ev["lastTimestamp"] = now

                    self.registry.mutate("Event", ns, name, bump)
                    return
                except NotFound:
                    pass
            name = f"{meta['name']}.{time.time_ns():x}"
            k = BY_KIND[obj["kind"]]
            ref = {"kind": obj["kind"], "namespace": ns, "name": meta["name"], "uid": meta.get("uid", ""),
                   "apiVersion": k.api_version, "resourceVersion": meta.get("resourceVersion", "")}
            ev = {"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": name, "namespace": ns},
                  "involvedObject": {k2: v for k2, v in ref.items() if v},
                  "reason": reason, "message": message, "type": type_,
                  "source": {"component": self.component, "host": self.host},
                  "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                  "reportingComponent": self.component, "reportingInstance": self.host}
            self.registry.create(ev)
            if len(self.seen) > 10000:
                self.seen.clear()
            self.seen[key] = name
        except KubesvcError as e:
            log.warning("event not recorded", extra={"kv": {"reason": reason, "error": str(e)}})
