"""A tiny scheduler: which node an unbound Pod goes to (``--nodes N``).

Rules kept here (pure: data in, data out):
- ``spec.nodeName`` set: that node, as the scheduler never touches a bound Pod.
- Candidate nodes: those whose labels match every ``spec.nodeSelector`` entry, that are not marked
  ``spec.unschedulable`` and whose Ready condition is not False. None: the Pod stays Pending (None).
- Spread: the candidate with the fewest Pods bound to it (Succeeded/Failed ones do not count); ties go to
  the name order, so every node agent that asks gets the same answer for the same store. Binding is a
  compare-and-set (``Registry.bind_pod``), so two agents racing for one Pod cannot both win.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") != "False"
    return True


def candidates(pod: Obj, nodes: list[Obj]) -> list[Obj]:
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    out = []
    for n in nodes:
        labels = (n.get("metadata") or {}).get("labels") or {}
        if (n.get("spec") or {}).get("unschedulable") or not _ready(n):
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
