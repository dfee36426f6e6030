"""StatefulSets with real processes: ordered start, stable names in DNS, scale, rolling update, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.dataplane.dns_fixtures import dig, dns_server
from tests.workloads.fixtures import Bed, running_ready, server_container


def headless(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 8080, "targetPort": "http"}]}}


def statefulset(name: str, replicas: int, policy: str = "OrderedReady", **container: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"serviceName": name, "replicas": replicas, "podManagementPolicy": policy,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [server_container(**container)]}}}}


def names(bed: Bed, app: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in bed.pods(app=app))


def all_ready(bed: Bed, app: str, n: int) -> bool:
    pods = bed.pods(app=app)
    return len(pods) == n and all(running_ready(p) for p in pods)


def ready_revision(changes: list[Any], name: str) -> int:
    for c in changes:
        if c.name == name and c.type == "MODIFIED" and running_ready(c.object):
            return int(c.revision)
    raise AssertionError(f"{name} never became ready")


def test_ordered_start_dns_scale_and_rolling_update(bed: Bed, tmp_path: Path) -> None:
    bed.start_kubelet()
    bed.create(headless("db"))
    since = bed.store.revision()
    bed.create(statefulset("db", 3))
    bed.wait(lambda: all_ready(bed, "db", 3), timeout=30, what="3 ready pods")
    assert names(bed, "db") == ["db-0", "db-1", "db-2"]
    # OrderedReady: each pod was created only after the one before it was Running and Ready
    changes = bed.store.changes(since, kinds=("Pod",))
    added = {c.name: c.revision for c in changes if c.type == "ADDED"}
    assert added["db-0"] < ready_revision(changes, "db-0") < added["db-1"] < ready_revision(changes, "db-1") < added["db-2"]
    pod = bed.pod("db-1")
    assert pod is not None
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("db-1", "db")
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "db-1" and labels["apps.kubernetes.io/pod-index"] == "1"
    assert labels["controller-revision-hash"].startswith("db-")
    # status, and the columns kubectl prints
    sts = bed.wait(lambda: (s := bed.store.get("StatefulSet", "default", "db")) and
                   (s.get("status") or {}).get("readyReplicas") == 3 and s, what="status")
    st = sts["status"]
    assert (st["replicas"], st["currentReplicas"], st["updatedReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert st["currentRevision"] == st["updateRevision"] == labels["controller-revision-hash"]
    r = bed.ks("get", "statefulset", "db")
    assert r.stdout.split("\n")[1].split()[:2] == ["db", "3/3"], r.stdout
    # each pod resolves by its stable name through the headless Service
    ep = bed.store.get("Endpoints", "default", "db")
    assert sorted(a.get("hostname") for a in ep["subsets"][0]["addresses"]) == ["db-0", "db-1", "db-2"]
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    with dns_server(bed.store_path, str(resolv)) as server:
        for i in range(3):
            ip = bed.pod(f"db-{i}")["status"]["podIP"]
            assert dig(server.port, f"db-{i}.db.default.svc.cluster.local", "A").rdata("A") == [ip]
        all_ips = sorted(p["status"]["podIP"] for p in bed.pods(app="db"))
        assert dig(server.port, "db.default.svc.cluster.local", "A").rdata("A") == all_ips
    # scale down removes the highest ordinal first
    since = bed.store.revision()
    r = bed.ks("scale", "statefulset/db", "--replicas=1")
    assert r.returncode == 0, r.stderr
    bed.wait(lambda: names(bed, "db") == ["db-0"], what="scale down to db-0")
    deleted = [c.name for c in bed.store.changes(since, kinds=("Pod",)) if c.type == "DELETED"]
    assert deleted == ["db-2", "db-1"]
    # scale up again, then a rolling update: reverse ordinal order, partition respected
    assert bed.ks("scale", "statefulset/db", "--replicas=3").returncode == 0
    bed.wait(lambda: all_ready(bed, "db", 3), timeout=30, what="3 ready pods again")
    old_rev = bed.pod("db-0")["metadata"]["labels"]["controller-revision-hash"]
    bed.reg.mutate("StatefulSet", "default", "db", lambda o: o["spec"]["updateStrategy"].__setitem__(
        "rollingUpdate", {"partition": 1}))
    since = bed.store.revision()
    r = bed.ks("set", "env", "statefulset/db", "COLOUR=blue")
    assert r.returncode == 0, r.stderr

    def rolled() -> bool:
        revs = {p["metadata"]["name"]: p["metadata"]["labels"]["controller-revision-hash"] for p in bed.pods(app="db")}
        return all_ready(bed, "db", 3) and revs["db-1"] != old_rev and revs["db-2"] != old_rev

    bed.wait(rolled, timeout=30, what="db-2 and db-1 updated")
    assert bed.pod("db-0")["metadata"]["labels"]["controller-revision-hash"] == old_rev  # below the partition
    deleted = [c.name for c in bed.store.changes(since, kinds=("Pod",)) if c.type == "DELETED"]
    assert deleted == ["db-2", "db-1"]
    st = bed.wait(lambda: (s := bed.store.get("StatefulSet", "default", "db")["status"]).get("updatedReplicas") == 2 and s,
                  what="status after partial rollout")
    assert st["currentRevision"] == old_rev and st["updateRevision"] != old_rev and st["currentReplicas"] == 1


def test_parallel_creates_all_at_once_and_adopts_orphans(bed: Bed) -> None:
    orphan = bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "labels": {"app": "web"}},
                         "spec": {"terminationGracePeriodSeconds": 1, "containers": [server_container()]}})
    bed.start_kubelet()
    since = bed.store.revision()
    sts = bed.create(statefulset("web", 3, policy="Parallel"))
    bed.wait(lambda: all_ready(bed, "web", 3) and
             (bed.store.get("StatefulSet", "default", "web").get("status") or {}).get("updatedReplicas") == 3,
             timeout=30, what="3 ready, updated pods")
    changes = bed.store.changes(since, kinds=("Pod",))
    # the orphan web-1 was adopted (controller reference added), not replaced by a new web-1 at once
    first = next(c for c in changes if c.name == "web-1" and c.object["metadata"].get("ownerReferences"))
    assert first.type == "MODIFIED" and first.object["metadata"]["uid"] == orphan["metadata"]["uid"]
    ref = first.object["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("StatefulSet", sts["metadata"]["uid"], True)
    # Parallel: web-0 and web-2 were both created before either was ready
    added = {c.name: c.revision for c in changes if c.type == "ADDED" and c.name != "web-1"}
    assert set(added) == {"web-0", "web-2"}
    assert max(added.values()) < min(ready_revision(changes, n) for n in ("web-0", "web-2"))
    # the adopted pod had no revision label: the rolling update replaced it with one of the template's
    assert bed.pod("web-1")["metadata"]["uid"] != orphan["metadata"]["uid"]
