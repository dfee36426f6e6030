"""Strategies of networking.k8s.io kinds: the DefaultIngressClass admission plugin
(``plugin/pkg/admission/network/defaultingressclass``).

Rules kept here:
- On create only, an Ingress with neither ``spec.ingressClassName`` nor the ``kubernetes.io/ingress.class``
  annotation gets the name of the IngressClass annotated ``ingressclass.kubernetes.io/is-default-class: "true"``.
  With several defaults the newest wins (latest creationTimestamp, then the smaller name), as Kubernetes
  since 1.28; with none the Ingress is stored without a class. Updates are never defaulted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubesvc.registry.kinds import Strategy

if TYPE_CHECKING:
    from kubesvc.store.db import Txn

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def default_class(classes: list[Obj]) -> str | None:
    """The default IngressClass's name (the newest of several), or None."""
    defaults = [c for c in classes if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    if not defaults:
        return None
    newest = max(str(c["metadata"].get("creationTimestamp") or "") for c in defaults)
    return min(str(c["metadata"]["name"]) for c in defaults if str(c["metadata"].get("creationTimestamp") or "") == newest)


class IngressStrategy(Strategy):
    kinds = ("Ingress",)

    def prepare_for_create(self, txn: Txn, obj: Obj) -> None:
        super().prepare_for_create(txn, obj)
        spec = obj.setdefault("spec", {}) if obj.get("spec") is None else obj["spec"]
        if not isinstance(spec, dict) or spec.get("ingressClassName") is not None:
            return
        if CLASS_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {}):
            return
        name = default_class(txn.list("IngressClass"))
        if name is not None:
            spec["ingressClassName"] = name


STRATEGIES = (IngressStrategy,)
