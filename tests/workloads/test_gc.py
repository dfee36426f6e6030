"""Owner references: delete --cascade=background|orphan|foreground through the CLI, finalizers, the garbage
collector's loop in the kubelet, and adoption of orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from kubesvc.controllers.statefulset import StatefulSetController
from tests.support.procs import ROOT
from tests.workloads.fixtures import Bed


def cm(name: str, owner: dict[str, Any] | None = None, block: bool = True, finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}]
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def sts(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"serviceName": name, "replicas": replicas, "podManagementPolicy": "Parallel", "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}}}


def get(bed: Bed, kind: str, name: str) -> dict[str, Any] | None:
    return bed.store.get(kind, "default", name)


def test_cascade_background_and_orphan_then_adoption(bed: Bed) -> None:
    ctrl = StatefulSetController(bed.reg, lambda *a: None)
    owner = bed.create(sts("db", 2))
    ctrl.sync()
    assert {p["metadata"]["name"] for p in bed.store.list("Pod", "default")} == {"db-0", "db-1"}
    # orphan: the pods stay, without the reference
    r = bed.cli("delete", "statefulset", "db", "--cascade=orphan")
    assert (r.returncode, r.stdout) == (0, 'statefulset.apps "db" deleted\n'), r.stderr
    pods = bed.store.list("Pod", "default")
    assert len(pods) == 2 and all("ownerReferences" not in p["metadata"] for p in pods)
    # a new StatefulSet with the same selector adopts them
    new_owner = bed.create(sts("db", 2))
    assert new_owner["metadata"]["uid"] != owner["metadata"]["uid"]
    ctrl.sync()
    for p in bed.store.list("Pod", "default"):
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (new_owner["metadata"]["uid"], True, True)
    # background (the default): the pods go with it
    r = bed.cli("delete", "statefulset", "db")
    assert r.returncode == 0, r.stderr
    assert bed.store.list("Pod", "default") == []


def test_background_keeps_a_dependent_with_another_live_owner(bed: Bed) -> None:
    a, b = bed.create(cm("a")), bed.create(cm("b"))
    shared = cm("shared", a)
    shared["metadata"]["ownerReferences"].append({"apiVersion": "v1", "kind": "ConfigMap", "name": "b",
                                                  "uid": b["metadata"]["uid"]})
    bed.create(shared)
    bed.create(cm("only-a", a))
    assert bed.cli("delete", "configmap", "a").returncode == 0
    assert get(bed, "ConfigMap", "only-a") is None
    kept = get(bed, "ConfigMap", "shared")
    assert [r["name"] for r in kept["metadata"]["ownerReferences"]] == ["b"]


def ks_background(bed: Bed, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("KUBESVC_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", bed.store_path, *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT), env=env)


def test_foreground_waits_for_blocking_dependents(bed: Bed) -> None:
    owner = bed.create(cm("owner"))
    bed.create(cm("held", owner, finalizers=["example.com/hold"]))
    bed.create(cm("plain", owner, block=False))
    bed.start_kubelet()
    # kubectl's delete waits until the object is gone: here until the blocking dependent has gone
    proc = ks_background(bed, "delete", "configmap", "owner", "--cascade=foreground")
    try:
        o = bed.wait(lambda: (x := get(bed, "ConfigMap", "owner")) and x["metadata"].get("deletionTimestamp") and x,
                     what="owner marked")
        assert o["metadata"]["finalizers"] == ["foregroundDeletion"]
        held = get(bed, "ConfigMap", "held")
        assert held is not None and held["metadata"]["deletionTimestamp"]
        assert get(bed, "ConfigMap", "plain") is None
        r = bed.cli("get", "configmap", "owner", "-o", "json")
        assert json.loads(r.stdout)["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert proc.poll() is None  # still waiting
        # the dependent's finalizer is removed: it goes; the garbage collector (in the kubelet) removes the owner
        r = bed.cli("patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        assert r.returncode == 0, r.stderr
        assert get(bed, "ConfigMap", "held") is None
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (0, 'configmap "owner" deleted\n'), err
        assert get(bed, "ConfigMap", "owner") is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_foreground_without_blockers_is_immediate(bed: Bed) -> None:
    owner = bed.create(cm("owner"))
    bed.create(cm("dep", owner))
    assert bed.cli("delete", "configmap", "owner", "--cascade=foreground").returncode == 0
    assert get(bed, "ConfigMap", "owner") is None and get(bed, "ConfigMap", "dep") is None


def test_collector_loop_removes_dependents_of_missing_owners(bed: Bed) -> None:
    """Dependents the delete's transaction does not look for (a Pod's) and references to owners that
    never existed are collected by the loop in the kubelet."""
    pod_owner = bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                            "spec": {"containers": [{"name": "c", "image": "example/unrunnable"}]}})
    bed.create(cm("of-pod", pod_owner))
    ghost = {"kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
    bed.create(cm("of-ghost", ghost))
    bed.create(cm("free"))
    assert bed.cli("delete", "pod", "p").returncode == 0
    assert get(bed, "ConfigMap", "of-pod") is not None  # not in the delete's transaction
    bed.start_kubelet()
    bed.wait(lambda: get(bed, "ConfigMap", "of-pod") is None and get(bed, "ConfigMap", "of-ghost") is None,
             what="collected dependents")
    assert get(bed, "ConfigMap", "free") is not None


def test_finalizers_hold_a_plain_delete(bed: Bed) -> None:
    bed.create(cm("kept", finalizers=["example.com/hold"]))
    proc = ks_background(bed, "delete", "configmap", "kept")
    try:
        obj = bed.wait(lambda: (x := get(bed, "ConfigMap", "kept")) and x["metadata"].get("deletionTimestamp") and x,
                       what="marked for deletion")
        assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
        r = bed.cli("patch", "configmap", "kept", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        assert r.returncode == 0, r.stderr
        assert get(bed, "ConfigMap", "kept") is None
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (0, 'configmap "kept" deleted\n'), err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
