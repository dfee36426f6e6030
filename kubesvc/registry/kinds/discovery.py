"""Strategies that run the discovery.k8s.io controllers on writes they follow (``pkg/controller/endpointslicemirroring``).

Rules kept here:
- Endpoints written through the API (hand-written, for a Service without a selector) are mirrored to
  EndpointSlices in the same transaction; deleting them deletes their mirrored slices. Endpoints the endpoints
  controller writes do not pass here (and carry ``endpointslice.kubernetes.io/skip-mirror``).
- EndpointSlices themselves use the default strategy: hand-written slices are stored as given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubesvc.registry.kinds import Strategy

if TYPE_CHECKING:
    from kubesvc.registry.generic import Registry
    from kubesvc.store.db import Txn

Obj = dict[str, Any]


class EndpointsStrategy(Strategy):
    kinds = ("Endpoints",)

    def after_write(self, registry: Registry, txn: Txn, old: Obj | None, new: Obj | None) -> None:
        from kubesvc.controllers import endpointslices

        ref = new or old
        assert ref is not None
        endpointslices.sync_mirror(txn, ref["metadata"].get("namespace", "default"), ref["metadata"]["name"])


STRATEGIES = (EndpointsStrategy,)
