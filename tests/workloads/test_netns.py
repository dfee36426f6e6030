"""``kubelet --isolation netns``: two pods both bind 0.0.0.0:8080, each in its own network namespace.

Root only (and iproute2); skipped cleanly otherwise. The namespaces, veth pairs and /32 routes are
made by the node agent under test and removed when it stops (checked below).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from kubesvc.dataplane.kubelet.netns import PodNetworks
from tests.workloads.fixtures import POD_UID, Bed, container_pid, running_ready, server_container

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_two_pods_bind_same_port_in_own_namespaces(bed: Bed) -> None:
    probe = subprocess.run(["ip", "netns", "add", f"kubesvc-probe-{os.getpid()}"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create network namespaces here")
    subprocess.run(["ip", "netns", "del", f"kubesvc-probe-{os.getpid()}"], capture_output=True, check=False)
    before = netns_names()
    bed.start_kubelet("--isolation", "netns", "--pod-cidr", "10.231.0.0/16")
    for name in ("twin-a", "twin-b"):
        c = server_container()
        c["env"].append({"name": "BIND_ADDRESS", "value": "0.0.0.0"})
        c["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
        bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "twins"}},
                    "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]}})
    bed.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "twins"},
                "spec": {"selector": {"app": "twins"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    pods = bed.wait(lambda: (ps := [bed.pod("twin-a"), bed.pod("twin-b")]) and all(running_ready(p) for p in ps) and ps,
                    timeout=20, what="both pods ready")
    ips = sorted(p["status"]["podIP"] for p in pods)
    assert all(ip.startswith("10.231.") for ip in ips) and ips[0] != ips[1]
    for p in pods:
        with _OPENER.open(f"http://{p['status']['podIP']}:8080/", timeout=5) as r:
            assert r.read().decode().strip() == p["metadata"]["name"]
    assert bed.endpoints("twins") == (ips, [])
    for p in pods:  # the user changes after the namespace switch (setpriv): not root there either
        status = Path(f"/proc/{container_pid(p)}/status").read_text()
        assert f"Uid:\t{POD_UID}\t" in status, status
    made = {PodNetworks.names(p["metadata"]["uid"])[0] for p in pods}  # by uid: other tests make namespaces too
    assert len(made) == 2 and made <= netns_names() - before
    assert bed.kubelet is not None and bed.kubelet.stop() == 0
    assert not (netns_names() & made), "namespaces left behind"


def test_adopted_pod_keeps_its_namespace(bed: Bed) -> None:
    probe = subprocess.run(["ip", "netns", "add", f"kubesvc-probe-{os.getpid()}"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create network namespaces here")
    subprocess.run(["ip", "netns", "del", f"kubesvc-probe-{os.getpid()}"], capture_output=True, check=False)
    before = netns_names()
    args = ("--isolation", "netns", "--pod-cidr", "10.232.0.0/16")
    bed.start_kubelet(*args)
    c = server_container()
    c["env"].append({"name": "BIND_ADDRESS", "value": "0.0.0.0"})
    bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]}})
    pod = bed.wait(lambda: (p := bed.pod("solo")) and running_ready(p) and p, timeout=20, what="ready")
    pid, ip = container_pid(pod), pod["status"]["podIP"]
    made = {PodNetworks.names(pod["metadata"]["uid"])[0]}
    assert made <= netns_names() - before
    bed.kill_kubelet()
    bed.start_kubelet(*args)
    bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sentinel"},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [server_container(env=[{"name": "PORT", "value": "8081"}])]}})
    bed.wait(lambda: running_ready(bed.pod("sentinel")), timeout=20, what="sentinel ready")
    assert container_pid(bed.pod("solo")) == pid and bed.copies("solo") == [pid]
    assert made <= netns_names()  # not torn down and made again under the adopted process
    with _OPENER.open(f"http://{ip}:8080/", timeout=5) as r:
        assert r.read().decode().strip() == "solo"
    assert bed.kubelet is not None and bed.kubelet.stop() == 0
    assert not (netns_names() & made) and bed.copies("solo") == []


def test_down_after_killed_kubelet_removes_orphan_namespaces(bed: Bed) -> None:
    probe = subprocess.run(["ip", "netns", "add", f"kubesvc-probe-{os.getpid()}"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create network namespaces here")
    subprocess.run(["ip", "netns", "del", f"kubesvc-probe-{os.getpid()}"], capture_output=True, check=False)
    before = netns_names()
    bed.start_kubelet("--isolation", "netns", "--pod-cidr", "10.233.0.0/16")
    bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo"},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [server_container()]}})
    pid = bed.wait(lambda: (p := bed.pod("solo")) and running_ready(p) and container_pid(p), timeout=20, what="ready")
    made = {PodNetworks.names(bed.pod("solo")["metadata"]["uid"])[0]}  # by uid: other tests make namespaces too
    assert made <= netns_names() - before
    bed.kill_kubelet()
    r = bed.ks("down")
    assert r.returncode == 0 and "pods: stopped 1 container process(es)" in r.stdout, (r.stdout, r.stderr)
    assert bed.copies("solo") == [] and pid not in bed.copies("solo")
    assert not (netns_names() & made), "namespace left behind"
