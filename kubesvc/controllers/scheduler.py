"""A tiny scheduler: which node an unbound Pod goes to (``--nodes N``).

Rules kept here (pure: data in, data out):
- ``spec.nodeName`` set: that node, as the scheduler never touches a bound Pod.
- Candidate nodes: those whose labels match every ``spec.nodeSelector`` entry, that are not marked
  ``spec.unschedulable``, whose ``NoSchedule``/``NoExecute`` taints the Pod tolerates, and that are Ready. A node
  whose Ready condition is not True (False, Unknown, or no condition: no agent has reported) counts as tainted
  ``node.kubernetes.io/not-ready:NoSchedule``, as the node lifecycle controller taints it, so only a Pod tolerating
  that goes there. None: the Pod stays Pending (None).
- Spread: the candidate with the fewest Pods bound to it (Succeeded/Failed ones do not count); ties go to
  the name order, so every node agent that asks gets the same answer for the same store. Binding is a
  compare-and-set (``Registry.bind_pod``), so two agents racing for one Pod cannot both win.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def _ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Toleration matching as the scheduler's TaintToleration plugin: an empty effect matches every effect; an
    empty key with ``Exists`` matches every taint; ``Equal`` (the default) also compares the value."""
    if not isinstance(toleration, dict):
        return False
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if (toleration.get("operator") or "Equal") == "Exists":
        return not key or key == taint.get("key")
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def _fits_taints(pod: Obj, node: Obj) -> bool:
    taints = [t for t in (node.get("spec") or {}).get("taints") or []
              if isinstance(t, dict) and t.get("effect") in ("NoSchedule", "NoExecute")]
    if not _ready(node):
        taints.append(NOT_READY)
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    return all(any(tolerates(tol, t) for tol in tolerations) for t in taints)


def candidates(pod: Obj, nodes: list[Obj]) -> list[Obj]:
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    out = []
    for n in nodes:
        labels = (n.get("metadata") or {}).get("labels") or {}
        if (n.get("spec") or {}).get("unschedulable") or not _fits_taints(pod, n):
            continue
        if all(labels.get(k) == v for k, v in selector.items()):
            out.append(n)
    return out


def pick_node(pod: Obj, nodes: list[Obj], pods: list[Obj]) -> str | None:
    """The node for ``pod`` (see the module rules); None when no node fits."""
    bound = (pod.get("spec") or {}).get("nodeName")
    if bound:
        return str(bound)
    fits = candidates(pod, nodes)
    if not fits:
        return None
    load: dict[str, int] = {}
    for p in pods:
        name = (p.get("spec") or {}).get("nodeName")
        if name and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            load[name] = load.get(name, 0) + 1
    return min((load.get(n["metadata"]["name"], 0), n["metadata"]["name"]) for n in fits)[1]
