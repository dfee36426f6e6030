"""Pure rules: $(VAR) expansion, environment order, back-off, phases, replica plans and rollout math."""

from __future__ import annotations

import pytest

from kubesvc.controllers import replicas as rp
from kubesvc.dataplane.kubelet import spec
from kubesvc.dataplane.kubelet.probes import Tally
from kubesvc.dataplane.kubelet.status import ContainerView, phase


@pytest.mark.parametrize("text,want", [
    ("$(A)", "1"), ("x$(A)y", "x1y"), ("$$(A)", "$(A)"), ("$(NOPE)", "$(NOPE)"), ("$A", "$A"),
    ("$$", "$"), ("$(A", "$(A"), ("$", "$"), ("$(A)$(B)", "12"),
])
def test_expand(text: str, want: str) -> None:
    assert spec.expand(text, {"A": "1", "B": "2"}) == want


def test_env_order_and_field_refs() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
           "spec": {"enableServiceLinks": False}, "status": {"podIP": "127.244.0.9"}}
    c = {"env": [{"name": "A", "value": "a"}, {"name": "B", "value": "$(A)-$(C)"}, {"name": "C", "value": "c"},
                 {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}]}
    env = spec.container_env(pod, c, lambda *a: None, [], base={"PATH": "/bin", "SECRET": "no"})
    assert env == {"PATH": "/bin", "HOSTNAME": "p", "POD_IP": "127.244.0.9", "POD_NAME": "p",
                   "POD_NAMESPACE": "ns", "A": "a", "B": "a-$(C)", "C": "c", "L": "x"}
    with pytest.raises(spec.ConfigError):
        spec.container_env(pod, {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}}]},
                           lambda *a: None, [], base={})


def test_backoff_and_restart_policy() -> None:
    assert [spec.backoff_delay(n, 10, 300) for n in range(1, 8)] == [0, 10, 20, 40, 80, 160, 300]
    assert spec.should_restart("OnFailure", 1) and not spec.should_restart("OnFailure", 0)
    assert not spec.should_restart("Never", 1) and spec.should_restart("Always", 0)


def view(state: str, exit_code: int = 0, ever_ran: bool = True) -> ContainerView:
    return ContainerView("c", state=state, exit_code=exit_code, ever_ran=ever_ran)


@pytest.mark.parametrize("views,policy,want", [
    ([view("waiting", ever_ran=False)], "Always", "Pending"),
    ([view("running")], "Never", "Running"),
    ([view("terminated", 0)], "Never", "Succeeded"),
    ([view("terminated", 1)], "Never", "Failed"),
    ([view("terminated", 1)], "OnFailure", "Running"),
    ([view("terminated", 0)], "Always", "Running"),
    ([view("running"), view("waiting", ever_ran=False)], "Always", "Pending"),
])
def test_phase(views: list[ContainerView], policy: str, want: str) -> None:
    assert phase(views, policy) == want


def test_tally_thresholds() -> None:
    t = Tally(success_threshold=2, failure_threshold=3, result=False)
    assert [t.record(ok) for ok in (True, True, False, False, False)] == [False, True, False, False, True]
    assert t.result is False


def owner(kind: str = "ReplicaSet", replicas: int = 3) -> dict:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "uid": "U", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}}


def pod(name: str, ready: bool, ts: str, uid: str = "U", phase: str = "Running") -> dict:
    return {"metadata": {"name": name, "creationTimestamp": ts, "labels": {"app": "web"},
                         "ownerReferences": [{"uid": uid, "controller": True}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": "2020-01-01T00:00:00Z"}]}}


def test_replica_plan_creates_and_deletes_least_useful_first() -> None:
    assert rp.plan_replicas(owner(replicas=3), [pod("a", True, "2020-01-01T00:00:01Z")]).create == 2
    pods = [pod("old-ready", True, "2020-01-01T00:00:01Z"), pod("new-ready", True, "2020-01-01T00:00:05Z"),
            pod("unready", False, "2020-01-01T00:00:00Z"), pod("other", True, "2020-01-01T00:00:09Z", uid="X"),
            pod("done", True, "2020-01-01T00:00:09Z", phase="Succeeded")]
    plan = rp.plan_replicas(owner(replicas=1), pods)
    assert plan.delete == ["unready", "new-ready"] and plan.create == 0
    assert plan.status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 2,
                           "availableReplicas": 2, "observedGeneration": 2}
    made = rp.pod_from_template(owner())
    assert made["metadata"]["name"].startswith("web-") and len(made["metadata"]["name"]) == 9
    assert made["metadata"]["ownerReferences"][0]["uid"] == "U" and made["metadata"]["labels"] == {"app": "web"}


@pytest.mark.parametrize("surge,unavailable,replicas,want", [
    ("25%", "25%", 4, (1, 1)), ("25%", "25%", 1, (1, 0)), (0, 0, 3, (0, 1)), ("50%", "50%", 3, (2, 1)),
])
def test_fenceposts(surge: object, unavailable: object, replicas: int, want: tuple[int, int]) -> None:
    d = owner("Deployment", replicas)
    d["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    assert rp.resolve_fenceposts(d) == want


def test_rolling_update_first_step_and_hash_ignores_label() -> None:
    d = owner("Deployment", 2)
    d["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    first = rp.plan_deployment(d, [], [])
    assert first.create is not None and first.create["spec"]["replicas"] == 2 and first.revision == 1
    rs = first.create
    rs["metadata"]["uid"] = "RS1"
    assert rp.find_new(d, [rs]) is rs  # the pod-template-hash label does not count
    d2 = owner("Deployment", 2)
    d2["spec"]["strategy"] = d["spec"]["strategy"]
    d2["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    rs["spec"]["replicas"] = 2
    old_pods = [pod("o1", True, "2020-01-01T00:00:01Z", uid="RS1"), pod("o2", True, "2020-01-01T00:00:02Z", uid="RS1")]
    step = rp.plan_deployment(d2, [rs], old_pods)
    assert step.create is not None and step.create["spec"]["replicas"] == 1 and step.scale == {} and step.revision == 2
