"""The store side of a proxy sync: the plan at the store's revision, read from the change log when it can be.

Rules kept here (shared by the userspace and nftables modes):
- A full read (every Service and EndpointSlice in one read transaction, then ``Planner.rebuild``) on the first sync,
  when the change log was compacted past the last revision read (``Gone``), when this node's zone or the node
  addresses (``--nodeport-addresses`` over the local addresses, looked at on every sync) changed, when an address
  the plan asked about became local or stopped being local (``externalIPs``, endpoints without a nodeName: the
  answers are cached and asked again every ``LOCAL_RECHECK_SECONDS``, 5, at a sync), and as a safety net every
  ``FULL_SECONDS`` (900, kube-proxy's informer resync period; env ``KUBESVC_PROXY_PLAN_FULL_SECONDS``). A full read
  of 10,000 Services costs ~1-2 s of the snapshot thread; an incremental one a few milliseconds.
- Every other sync reads the change log since the last revision (``Store.latest_changes``: the newest change of each
  Service, EndpointSlice and Node), updates the objects kept from the previous read, and re-plans only the Services
  whose Service or slices changed (a slice counts for the Service its ``kubernetes.io/service-name`` label named
  before and names now): ``Planner.update``. The plan equals a full build at the same revision
  (tests/dataplane/test_proxy_incremental.py checks it over random sequences of writes).
- A Service's Endpoints are the merge of its slices (``merged_endpoints``, as ``list_with_revision`` serves them to
  the data plane); zone hints are computed only for Services that ask for topology-aware routing.
The only I/O is the store reads (and the local-address callbacks given); it runs on the proxy's snapshot thread.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubesvc.controllers.endpointslices import SERVICE_NAME_LABEL, merged_endpoints
from kubesvc.dataplane.proxy import plan as planning

FULL_SECONDS = float(os.environ.get("KUBESVC_PROXY_PLAN_FULL_SECONDS", "900"))
LOCAL_RECHECK_SECONDS = 5.0
KINDS = ("Service", "EndpointSlice", "Node")
ZONE_LABEL = "topology.kubernetes.io/zone"

Key = tuple[str, str]
Obj = dict[str, Any]


def wants_hints(svc: Obj) -> bool:
    """Slices' zone hints matter only to a Service asking for topology-aware routing."""
    return bool(set(planning.TOPOLOGY_ANNOTATIONS) & set((svc.get("metadata") or {}).get("annotations") or {})
                or (svc.get("spec") or {}).get("trafficDistribution"))


def slim_slice(sl: Obj) -> Obj:
    """The parts of an EndpointSlice the plan reads through ``merged_endpoints`` and ``zone_hints`` (targetRef,
    ownerReferences, managedFields and the rest are left out of what is kept between syncs)."""
    meta = sl.get("metadata") or {}
    labels = meta.get("labels") or {}
    slim_meta: Obj = {k: meta[k] for k in ("name", "namespace") if k in meta}
    if SERVICE_NAME_LABEL in labels:
        slim_meta["labels"] = {SERVICE_NAME_LABEL: labels[SERVICE_NAME_LABEL]}
    eps = []
    for ep in sl.get("endpoints") or []:
        if isinstance(ep, dict):
            ep = {k: ep[k] for k in ("addresses", "conditions", "nodeName", "hostname", "hints") if k in ep}
        eps.append(ep)
    return {"metadata": slim_meta, "addressType": sl.get("addressType"), "ports": sl.get("ports"), "endpoints": eps}


def _zone(node: Obj | None) -> str:
    return str((((node or {}).get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL, ""))


class PlanSource:
    """Follows one store for one proxy: ``read()`` -> (revision, plan). Not thread-safe: one caller at a time."""

    def __init__(self, store_path: str, node_name: str, nodeport_addresses: Iterable[str],
                 local_addresses: Callable[[], list[str]], is_local_address: Callable[[str], bool],
                 full_seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store_path, self.node_name = store_path, node_name
        self.nodeport_addresses = tuple(nodeport_addresses)
        self.local_addresses, self.is_local_address = local_addresses, is_local_address
        self.full_seconds = FULL_SECONDS if full_seconds is None else full_seconds
        self.clock = clock
        self.reader: Any = None
        self.planner: planning.Planner | None = None
        self.revision = -1
        self.full_at = 0.0
        self.local_checked = 0.0
        self.services: dict[Key, Obj] = {}
        self.slices: dict[Key, dict[str, Obj]] = {}  # (namespace, Service) -> slice name -> slice
        self.slice_owner: dict[Key, Key] = {}  # (namespace, slice) -> (namespace, Service) it is filed under
        self.full_reads = 0
        self.incremental_reads = 0
        self._local: dict[str, bool] = {}

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def is_local(self, ip: str) -> bool:
        local = self._local.get(ip)
        if local is None:
            local = self._local[ip] = self.is_local_address(ip)
        return local

    def read(self, full: bool = False) -> tuple[int, planning.Plan]:
        """The plan at the store's revision now; ``full`` forces a full read."""
        from kubesvc.store.db import Gone, Store

        if self.reader is None:
            self.reader = Store(self.store_path)
        nodes = tuple(planning.node_addresses(self.nodeport_addresses, self.local_addresses()))
        planner = self.planner
        now = self.clock()
        if full or planner is None or nodes != planner.nodes or now - self.full_at >= self.full_seconds:
            return self._full(nodes)
        if now - self.local_checked >= LOCAL_RECHECK_SECONDS:
            self.local_checked = now
            if any(self.is_local_address(ip) != was for ip, was in self._local.items()):
                return self._full(nodes)
        try:
            rev, changes = self.reader.latest_changes(self.revision, KINDS)
        except Gone:
            return self._full(nodes)
        dirty: set[Key] = set()
        for c in changes:
            if c.kind == "Service":
                key = (c.namespace, c.name)
                if c.type == "DELETED":
                    self.services.pop(key, None)
                else:
                    self.services[key] = planning.slim_service(c.object)
                dirty.add(key)
            elif c.kind == "EndpointSlice":
                self._file_slice((c.namespace, c.name), None if c.type == "DELETED" else c.object, dirty)
            elif c.name == self.node_name and _zone(None if c.type == "DELETED" else c.object) != planner.zone:
                return self._full(nodes)  # this node's zone moved: every Service's topology may change
        plan = planner.update({key: self._inputs(key) for key in dirty})
        self.revision = rev
        self.incremental_reads += 1
        return rev, plan

    def _file_slice(self, skey: Key, sl: Obj | None, dirty: set[Key]) -> None:
        old = self.slice_owner.pop(skey, None)
        if old is not None:
            group = self.slices.get(old)
            if group is not None:
                group.pop(skey[1], None)
                if not group:
                    del self.slices[old]
            dirty.add(old)
        if sl is None:
            return
        meta = sl.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            return
        key = (str(meta.get("namespace", "default")), str(svc))
        self.slices.setdefault(key, {})[skey[1]] = slim_slice(sl)
        self.slice_owner[skey] = key
        dirty.add(key)

    def _inputs(self, key: Key) -> tuple[Obj | None, Obj | None, dict[str, frozenset[str]] | None]:
        svc = self.services.get(key)
        if svc is None:
            return None, None, None
        group = list(self.slices.get(key, {}).values())
        merged = merged_endpoints(group) if group else []
        hints = planning.zone_hints(group).get(key) if group and wants_hints(svc) else None
        return svc, (merged[0] if merged else None), hints

    def _full(self, nodes: tuple[str, ...]) -> tuple[int, planning.Plan]:
        # Hundreds of thousands of objects that all stay: the cyclic collector's full passes, triggered again and again
        # while they are made, would walk them all each time (10,000 Services: 2.4 s instead of 1.2 s). They hold no
        # cycles; the proxy freezes them after the sync (server.sync).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._full_read(nodes)
        finally:
            if enabled:
                gc.enable()

    def _full_read(self, nodes: tuple[str, ...]) -> tuple[int, planning.Plan]:
        self._local = {}
        rev, objs = self.reader.list_with_revision(("Service", "EndpointSlice"))
        zone = _zone(self.reader.get("Node", "", self.node_name))
        self.services = {(s["metadata"].get("namespace", ""), s["metadata"]["name"]): planning.slim_service(s) for s in objs["Service"]}
        self.slices, self.slice_owner = {}, {}
        for sl in objs["EndpointSlice"]:
            self._file_slice((sl["metadata"].get("namespace", ""), sl["metadata"]["name"]), sl, set())
        self.planner = planning.Planner(nodes, self.is_local, self.node_name, zone)
        plan = self.planner.rebuild(self._inputs(key) for key in self.services)  # type: ignore[misc]
        self.revision = rev
        self.full_at = self.local_checked = self.clock()
        self.full_reads += 1
        return rev, plan
