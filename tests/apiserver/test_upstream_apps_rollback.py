"""Deployment rollbacks as test/cmd's run_deployment_tests reads them (docs/upstream-tests.md): a ReplicaSet
re-used by a rollback keeps the revisions it had in ``deployment.kubernetes.io/revision-history``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kubesvc.controllers import replicas as rp
from tests.apiserver.fixtures import KUBECTL, Api
from tests.support.live import live_bed

HISTORY = "deployment.kubernetes.io/revision-history"


def _rs(revision: str | None, history: str | None = None) -> dict:
    annotations = {}
    if revision is not None:
        annotations[rp.REVISION] = revision
    if history is not None:
        annotations[HISTORY] = history
    return {"metadata": {"name": "x", "annotations": annotations or None}}


def test_stamp_revision_appends_the_old_revision() -> None:
    rs = _rs("1")
    rp.stamp_revision(rs, 3)
    assert rs["metadata"]["annotations"] == {rp.REVISION: "3", HISTORY: "1"}
    rp.stamp_revision(rs, 5)
    assert rs["metadata"]["annotations"] == {rp.REVISION: "5", HISTORY: "1,3"}
    # never backwards, and the same revision changes nothing
    rp.stamp_revision(rs, 4)
    rp.stamp_revision(rs, 5)
    assert rs["metadata"]["annotations"] == {rp.REVISION: "5", HISTORY: "1,3"}
    # a ReplicaSet without a revision gets one and no history
    fresh = _rs(None)
    rp.stamp_revision(fresh, 2)
    assert fresh["metadata"]["annotations"] == {rp.REVISION: "2"}


def test_stamp_revision_history_is_cut_at_2000_characters() -> None:
    history = ",".join(str(n) for n in range(1000, 1400))  # 400 x 4 digits + 399 commas = 1999 characters
    rs = _rs("1400", history)
    rp.stamp_revision(rs, 1401)
    got = rs["metadata"]["annotations"][HISTORY]
    # 1999 + 1 + 4 > 2000: the oldest entry goes, the old revision is appended
    assert got == ",".join(str(n) for n in range(1001, 1401)) and len(got) == 1999
    # one entry shorter fits whole
    rs = _rs("1399", ",".join(str(n) for n in range(1000, 1399)))
    rp.stamp_revision(rs, 1400)
    assert rs["metadata"]["annotations"][HISTORY] == ",".join(str(n) for n in range(1000, 1400))


def _deployment(image: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "labels": {"name": "nginx-undo"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"name": "nginx-undo"}},
                     "template": {"metadata": {"labels": {"name": "nginx-undo"}},
                                  "spec": {"containers": [{"name": "nginx", "image": image}]}}}}


def _revision(api: Api, ns: str) -> str:
    r = api.kubectl("get", "-n", ns, "deployment/nginx", "-o",
                    "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}")
    return r.out


def _wait_revision(api: Api, ns: str, want: str) -> None:
    for _ in range(150):  # bounded: 15 s
        if _revision(api, ns) == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"deployment revision {_revision(api, ns)!r}, want {want!r}")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_rollbacks_keep_the_revision_history_of_the_reused_replica_set(tmp_path: Path) -> None:
    with live_bed(tmp_path) as (api, _bed):
        ns = "rollback"
        assert api.kubectl("create", "namespace", ns).code == 0
        assert api.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(_deployment("img:one"))).code == 0
        _wait_revision(api, ns, "1")
        assert api.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(_deployment("img:two"))).code == 0
        _wait_revision(api, ns, "2")
        r = api.kubectl("rollout", "undo", "-n", ns, "deployment/nginx", "--to-revision=1")
        assert r.code == 0, r.err
        _wait_revision(api, ns, "3")
        r = api.ks("rollout", "undo", "-n", ns, "deployment/nginx")  # kubesvc's own verb: back to img:two
        assert r.code == 0, r.err
        _wait_revision(api, ns, "4")
        r = api.kubectl("rollout", "undo", "-n", ns, "deployment/nginx")
        assert r.code == 0, r.err
        _wait_revision(api, ns, "5")
        r = api.kubectl("get", "-n", ns, "rs", "-o", "json")
        by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["metadata"]["annotations"]
                    for rs in json.loads(r.out)["items"]}
        assert by_image["img:one"][rp.REVISION] == "5" and by_image["img:one"][HISTORY] == "1,3"
        assert by_image["img:two"][rp.REVISION] == "4" and by_image["img:two"][HISTORY] == "2"
        # kubectl's view of the history and of a superseded revision
        r = api.kubectl("rollout", "history", "-n", ns, "deployment/nginx")
        assert [line.split()[0] for line in r.out.splitlines()[2:] if line.strip()] == ["4", "5"], r.out
        r = api.kubectl("rollout", "status", "-n", ns, "deployment/nginx", "--revision=3", "--timeout=5s")
        assert r.code != 0 and "desired revision (3) is different from the running revision (5)" in r.err
        r = api.ks("get", "-n", ns, "rs", "-o", "yaml")
        assert "deployment.kubernetes.io/revision-history: 1,3" in r.out


def test_the_reused_replica_set_is_found_when_the_rollback_adds_empty_resources() -> None:
    # kubectl rollout undo sends the ReplicaSet's template back with `resources: {}`; the stored one may lack it
    deploy = _deployment("img:one")
    deploy["metadata"]["uid"] = "u1"
    rs = rp.new_replica_set(deploy, 1)
    rs["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    deploy["spec"]["template"]["spec"]["containers"][0]["resources"] = {}
    deploy["spec"]["template"]["metadata"]["annotations"] = {}
    assert rp.find_new(deploy, [rs]) is rs
    deploy["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    assert rp.find_new(deploy, [rs]) is None
