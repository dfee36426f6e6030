"""DaemonSets with real processes: one pod per Node object, status, rolling update, node selector."""

from __future__ import annotations

from typing import Any

from tests.workloads.fixtures import Bed, running_ready, server_container


def daemonset(name: str, **pod_spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [server_container()],
                                           **pod_spec}}}}


def status(bed: Bed, name: str) -> dict[str, Any]:
    return (bed.store.get("DaemonSet", "default", name) or {}).get("status") or {}


def test_one_pod_per_node_status_and_rolling_update(bed: Bed) -> None:
    assert [n["metadata"]["name"] for n in bed.store.list("Node")] == ["kubesvc-node"]
    bed.start_kubelet()
    bed.create(daemonset("agent"))
    bed.wait(lambda: status(bed, "agent").get("numberReady") == 1, timeout=30, what="1 ready")
    st = status(bed, "agent")
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberAvailable"],
            st["updatedNumberScheduled"], st["numberMisscheduled"]) == (1, 1, 1, 1, 0)
    (pod,) = bed.pods(app="agent")
    assert pod["spec"]["nodeName"] == "kubesvc-node" and running_ready(pod)
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    r = bed.ks("get", "daemonset", "agent")
    assert r.stdout.split("\n")[1].split()[1:6] == ["1", "1", "1", "1", "1"], r.stdout
    # a template change replaces the pod (maxUnavailable 1)
    old_uid = pod["metadata"]["uid"]
    assert bed.ks("set", "env", "daemonset/agent", "V=2").returncode == 0
    bed.wait(lambda: (ps := bed.pods(app="agent")) and len(ps) == 1 and ps[0]["metadata"]["uid"] != old_uid
             and running_ready(ps[0]) and status(bed, "agent").get("updatedNumberScheduled") == 1,
             timeout=30, what="pod replaced")
    # a node selector no node matches: the pod goes, nothing is desired
    bed.reg.mutate("DaemonSet", "default", "agent",
                   lambda o: o["spec"]["template"]["spec"].__setitem__("nodeSelector", {"disk": "ssd"}))
    bed.wait(lambda: not bed.pods(app="agent") and status(bed, "agent").get("desiredNumberScheduled") == 0,
             timeout=30, what="no eligible node")
    # label the node: the pod comes back
    assert bed.ks("label", "node", "kubesvc-node", "disk=ssd").returncode == 0
    bed.wait(lambda: status(bed, "agent").get("numberReady") == 1, timeout=30, what="ready again")
