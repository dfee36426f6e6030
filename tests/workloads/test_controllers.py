"""Replica controllers with real processes: crashes, scale, readiness, rolling updates, cascade delete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.workloads.fixtures import (
    Bed,
    alive,
    container_pid,
    running_ready,
    server_container,
)


def rc(name: str, replicas: int, **container: object) -> dict:
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"app": name},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [server_container(**container)]}}}}


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}}


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an environment proxy


def get(url: str) -> str:
    with _OPENER.open(url, timeout=5) as r:
        return str(r.read().decode().strip())


def ready_ips(bed: Bed, app: str, n: int) -> list[str]:
    """Wait until n pods run ready and the Endpoints list exactly their IPs as ready."""

    def check() -> list[str] | None:
        pods = [p for p in bed.pods(app=app) if running_ready(p)]
        ips = sorted(p["status"]["podIP"] for p in pods)
        return ips if len(ips) == n and bed.endpoints(app) == (ips, []) else None

    return bed.wait(check, timeout=20, what=f"{n} ready endpoints for {app}")


def test_replicas_kept_through_crash_scale_and_cascade(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(service("web"))
    bed.create(rc("web", 2))
    ips = ready_ips(bed, "web", 2)
    names = {p["metadata"]["name"] for p in bed.pods(app="web")}
    assert all(n.startswith("web-") and len(n) == len("web-") + 5 for n in names)
    for ip in ips:  # no readiness probe: ready once started, so the first connects may be refused
        assert bed.wait(lambda ip=ip: get(f"http://{ip}:8080/"), what="HTTP answer") in names
    # kill -9 one pod's process: the node agent restarts the container in the same pod
    victim = bed.pods(app="web")[0]
    pid = container_pid(victim)
    os.kill(pid, signal.SIGKILL)
    bed.wait(lambda: (p := bed.pod(victim["metadata"]["name"])) and
             p["status"]["containerStatuses"][0]["restartCount"] == 1 and running_ready(p), what="restart")
    assert ready_ips(bed, "web", 2) == ips
    # deleting a pod: the controller replaces it
    gone = victim["metadata"]["name"]
    assert bed.cli("delete", "pod", gone).returncode == 0
    ready_ips(bed, "web", 2)
    assert gone not in {p["metadata"]["name"] for p in bed.pods(app="web")}
    # scale up and down through the CLI, reflected in Endpoints
    r = bed.cli("scale", "rc/web", "--replicas", "3")
    assert (r.returncode, r.stdout) == (0, "replicationcontroller/web scaled\n"), r.stderr
    ready_ips(bed, "web", 3)
    r = bed.cli("scale", "rc", "web", "--replicas=1")
    assert r.returncode == 0, r.stderr
    ready_ips(bed, "web", 1)
    rcobj = bed.wait(lambda: (o := bed.store.get("ReplicationController", "default", "web"))
                     and o["status"].get("readyReplicas") == 1 and o["status"]["replicas"] == 1 and o, what="status")
    assert rcobj["status"]["availableReplicas"] == 1
    reasons = [e["reason"] for e in bed.store.list("Event", "default") if e["involvedObject"]["kind"] == "ReplicationController"]
    assert "SuccessfulCreate" in reasons and "SuccessfulDelete" in reasons
    # cascade: deleting the owner deletes its pods, and their processes stop
    pids = [container_pid(p) for p in bed.pods(app="web")]
    assert bed.cli("delete", "rc", "web").returncode == 0
    assert bed.endpoints("web") == ([], [])  # the pods are Terminating: out of the Endpoints at once
    bed.wait(lambda: bed.pods(app="web") == [], what="pods removed by the kubelet once stopped")
    bed.wait(lambda: not any(alive(p) for p in pids), what="processes stopped")


def test_readiness_probe_takes_pod_out_of_rotation_and_back(bed: Bed) -> None:
    bed.start_kubelet()
    flag = bed.share / "not-ready"
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1}
    obj = rc("ready", 2, readinessProbe=probe)
    obj["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "NOT_READY_FILE", "value": str(flag)})
    bed.create(service("ready"))
    bed.create(obj)
    ips = ready_ips(bed, "ready", 2)
    flag.write_text("x")  # both pods now fail /readyz
    bed.wait(lambda: bed.endpoints("ready") == ([], ips), what="out of rotation")
    r = bed.cli("get", "pods")
    assert all(line.split()[1:3] == ["0/1", "Running"] for line in r.stdout.splitlines()[1:]), r.stdout
    flag.unlink()
    bed.wait(lambda: bed.endpoints("ready") == (ips, []), what="back in rotation")


def deployment(name: str, replicas: int, version: str) -> dict:
    c = server_container()
    c["env"].append({"name": "VERSION", "value": version})
    c["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]}}}}


def test_rolling_update_undo_and_cascade(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(service("app"))
    bed.create(deployment("app", 2, "v1"))
    r = bed.cli("rollout", "status", "deployment/app", "--timeout", "20")
    assert r.returncode == 0 and r.stdout.endswith('deployment "app" successfully rolled out\n'), (r.stdout, r.stderr)
    v1_pods = {p["metadata"]["name"] for p in bed.pods(app="app")}
    ready_ips(bed, "app", 2)
    new = bed.marked(deployment("app", 2, "v2"))
    new["metadata"]["namespace"] = "default"
    assert bed.reg.apply(new).action == "configured"
    # maxUnavailable 0: while the rollout runs, two ready endpoints at every look
    watcher = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "rollout", "status",
                                "deploy", "app", "--timeout", "25"], stdout=subprocess.PIPE, text=True)
    try:
        seen = []
        while watcher.poll() is None:
            seen.append(len(bed.endpoints("app")[0]))
            time.sleep(0.05)
    finally:
        if watcher.poll() is None:
            watcher.kill()
        out, _ = watcher.communicate(timeout=10)
    assert watcher.returncode == 0, out
    assert min(seen) >= 2 and "old replicas are pending termination" in out, (seen, out)
    ips = ready_ips(bed, "app", 2)
    v2 = [p for p in bed.pods(app="app") if not p["metadata"].get("deletionTimestamp")]  # old ones may be Terminating
    assert not v1_pods & {p["metadata"]["name"] for p in v2}
    assert sorted(p["status"]["podIP"] for p in v2) == ips
    rss = {r["metadata"]["name"]: r for r in bed.store.list("ReplicaSet", "default")}
    assert sorted(r["spec"]["replicas"] for r in rss.values()) == [0, 2]
    dep = bed.store.get("Deployment", "default", "app")
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    events = [e["message"] for e in bed.store.list("Event", "default") if e["reason"] == "ScalingReplicaSet"]
    assert any(m.startswith("Scaled down replica set") for m in events), events
    # undo goes back to the first template (a third revision)
    r = bed.cli("rollout", "undo", "deployment/app")
    assert (r.returncode, r.stdout) == (0, "deployment.apps/app rolled back\n"), r.stderr
    r = bed.cli("rollout", "status", "deployment/app", "--timeout", "25")
    assert r.returncode == 0, r.stderr
    ready_ips(bed, "app", 2)
    envs = {e["value"] for p in bed.pods(app="app") if not p["metadata"].get("deletionTimestamp")
            for e in p["spec"]["containers"][0]["env"] if e["name"] == "VERSION"}
    assert envs == {"v1"}
    # cascade: deployment -> replica sets -> pods
    assert bed.cli("delete", "deployment", "app").returncode == 0
    assert bed.store.list("ReplicaSet", "default") == []
    bed.wait(lambda: bed.pods(app="app") == [], what="pods removed by the kubelet once stopped")
