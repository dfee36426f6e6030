"""The scheduler's node filter: readiness as the not-ready taint, taints and tolerations (TaintToleration's rules)."""

from __future__ import annotations

from typing import Any

from kubesvc.controllers.scheduler import candidates, pick_node, tolerates


def node(name: str, ready: str | None = "True", taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status = {"conditions": [{"type": "Ready", "status": ready}]} if ready is not None else {}
    return {"metadata": {"name": name}, "spec": {"taints": taints or []}, "status": status}


def pod(tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"tolerations": tolerations or []}}


def test_a_node_no_agent_reported_for_is_not_a_candidate() -> None:
    """test/cmd creates a bare Node (no conditions): the lifecycle controller would taint it not-ready, so pods go
    to the Ready node, not to it, although its name sorts first."""
    nodes = [node("127.0.0.1", ready=None), node("kubesvc-node")]
    assert pick_node(pod(), nodes, []) == "kubesvc-node"
    assert pick_node(pod(), [node("a", ready="Unknown"), node("b", ready="False")], []) is None
    tolerant = pod([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}])
    assert [n["metadata"]["name"] for n in candidates(tolerant, nodes)] == ["127.0.0.1", "kubesvc-node"]


def test_taints_keep_pods_off_unless_tolerated() -> None:
    nodes = [node("a", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
             node("b", taints=[{"key": "gpu", "effect": "NoExecute"}]),
             node("c", taints=[{"key": "soft", "effect": "PreferNoSchedule"}])]
    names = lambda p: [n["metadata"]["name"] for n in candidates(p, nodes)]  # noqa: E731
    assert names(pod()) == ["c"]  # PreferNoSchedule only scores, never filters
    assert names(pod([{"key": "dedicated", "value": "db"}])) == ["a", "c"]  # no effect: every effect
    assert names(pod([{"key": "dedicated", "value": "web", "effect": "NoSchedule"}])) == ["c"]
    assert names(pod([{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}])) == ["b", "c"]
    assert names(pod([{"operator": "Exists"}])) == ["a", "b", "c"]  # tolerates everything


def test_toleration_matching() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, taint)
    assert tolerates({"key": "k", "value": "v"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "value": "v", "effect": "NoExecute"}, taint)
    assert tolerates({"key": "k", "operator": "Exists"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)
    assert not tolerates({"operator": "Equal"}, taint)
    assert not tolerates("nonsense", taint)  # type: ignore[arg-type]
