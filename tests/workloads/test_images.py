"""Honest status and images kubesvc runs natively: an image it cannot run waits in ImageNotRunnable (never
Ready, out of the ready Endpoints, an Event says why); agnhost's netexec, serve-hostname, porter and pause,
busybox through the host's tools, nginx through the host's nginx; upstream manifests run unchanged."""

from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from kubesvc.api import images as known
from tests.support.procs import ROOT
from tests.workloads.fixtures import POD_UID, ROOT_USER, Bed, container_pid, running_ready

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53"


def get(url: str) -> str:
    with _OPENER.open(url, timeout=5) as r:
        return r.read().decode()


def pod(name: str, containers: list[dict], **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": containers, **spec}}


def waiting(p: dict | None) -> dict:
    for cs in ((p or {}).get("status") or {}).get("containerStatuses") or []:
        return (cs.get("state") or {}).get("waiting") or {}
    return {}


def test_repo_names_ignore_registry_tag_and_digest() -> None:
    assert known.repo_name(AGNHOST) == "agnhost"
    assert known.repo_name("docker.io/library/nginx@sha256:abc") == "nginx"
    assert known.repo_name("localhost:5000/team/busybox:1.36") == "busybox"
    assert known.family("registry.k8s.io/pause:3.9") == "pause"
    assert known.family("registry.k8s.io/serve_hostname") == "serve_hostname"
    assert known.family("example.com/team/app:1") is None


def test_an_image_kubesvc_cannot_run_is_never_ready(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mystery"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mystery"}},
                         "template": {"metadata": {"labels": {"app": "mystery"}},
                                      "spec": {"containers": [{"name": "app", "image": "example.com/team/app:1",
                                                               "ports": [{"containerPort": 8080}]}]}}}})
    bed.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mystery"},
                "spec": {"selector": {"app": "mystery"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    p = bed.wait(lambda: next((x for x in bed.pods(app="mystery") if waiting(x).get("reason") == "ImageNotRunnable"), None),
                 what="ImageNotRunnable")
    w = waiting(p)
    assert "set command, or use an image kubesvc runs natively" in w["message"], w
    assert p["status"]["phase"] == "Pending" and not running_ready(p)
    assert bed.endpoints("mystery")[0] == []
    r = bed.ks("get", "pods", "-l", "app=mystery")
    assert "0/1" in r.stdout and "ImageNotRunnable" in r.stdout, r.stdout
    r = bed.ks("describe", "pod", p["metadata"]["name"])
    assert "Waiting" in r.stdout and "ImageNotRunnable" in r.stdout, r.stdout
    assert "0001-01-01" not in r.stdout and "1970-01-01" not in r.stdout
    events = bed.wait(lambda: [e for e in bed.store.list("Event", "default") if "ImageNotRunnable" in e.get("message", "")],
                      what="Failed event")
    assert events[0]["type"] == "Warning" and events[0]["reason"] == "Failed"
    r = bed.ks("get", "deploy", "mystery")
    assert "0/1" in r.stdout, r.stdout


def test_agnhost_netexec_serve_hostname_porter_pause(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(pod("netexec", [{"name": "agnhost", "image": AGNHOST, "args": ["netexec", "--http-port=8080", "--udp-port=8081"],
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
                                "ports": [{"containerPort": 8080}]}]))
    bed.create(pod("others", [
        {"name": "hostname", "image": AGNHOST, "command": ["/agnhost", "serve-hostname"], "args": ["--port", "9376"]},
        {"name": "porter", "image": AGNHOST, "args": ["porter"], "env": [{"name": "SERVE_PORT_9001", "value": "foo"}]},
        {"name": "pause", "image": "registry.k8s.io/pause:3.9"}]))
    p = bed.wait(lambda: (x := bed.pod("netexec")) and running_ready(x) and x, timeout=20, what="netexec ready")
    ip = p["status"]["podIP"]
    base = f"http://{ip}:8080"
    assert get(f"{base}/hostname") == "netexec"
    assert get(f"{base}/echo?msg=hello%20there") == "hello there"
    assert get(f"{base}/clientip").startswith("127.")
    assert get(f"{base}/healthz") == "ok"
    assert json.loads(get(f"{base}/dial?request=hostname&host={ip}&port=8080&protocol=http&tries=2"))["responses"] == ["netexec"] * 2
    assert json.loads(get(f"{base}/dial?request=hostname&host={ip}&port=8081&protocol=udp"))["responses"] == ["netexec"]
    assert json.loads(get(f"{base}/shell?cmd=echo%20$HOSTNAME"))["output"] == "netexec\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"echo ping", (ip, 8081))
        assert s.recv(100) == b"ping"
    o = bed.wait(lambda: (x := bed.pod("others")) and running_ready(x) and x, timeout=20, what="others ready")
    oip = o["status"]["podIP"]
    bed.wait(lambda: _try(f"http://{oip}:9376/") == "others", what="serve-hostname")
    assert bed.wait(lambda: _try(f"http://{oip}:9001/"), what="porter") == "foo"
    pause_pid = container_pid(o, "pause")
    assert Path(f"/proc/{pause_pid}/cmdline").read_bytes().split(b"\0")[-2] == b"pause"
    # /exit ends the container with the code asked; restartPolicy Always starts it again.
    get(f"{base}/exit?code=3")
    p = bed.wait(lambda: (x := bed.pod("netexec")) and x["status"]["containerStatuses"][0]["restartCount"] >= 1 and x,
                 what="restart after /exit")
    assert p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 3


def _try(url: str) -> str:
    try:
        return get(url)
    except OSError:
        return ""


def test_busybox_runs_with_the_hosts_tools_and_a_missing_tool_is_named(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(pod("bb", [{"name": "sh", "image": "busybox:1.36", "command": ["/bin/sh", "-c", "echo up; exec sleep 600"]}]))
    bed.create(pod("nope", [{"name": "x", "image": "busybox", "command": ["no-such-tool-kubesvc", "-l"]}]))
    bed.wait(lambda: running_ready(bed.pod("bb")), what="busybox running")
    bed.wait(lambda: "up" in bed.ks("logs", "bb").stdout, what="busybox output")
    p = bed.wait(lambda: (x := bed.pod("nope")) and waiting(x).get("reason") == "ImageNotRunnable" and x, what="named")
    assert '"no-such-tool-kubesvc" is not installed on this machine' in waiting(p)["message"]


needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"),
                                 reason="nginx is not installed (scripts/sysdeps.sh installs it)")


@needs_nginx
def test_upstream_nginx_deployment_and_service_serve_unchanged(bed: Bed) -> None:
    if not ROOT_USER:
        pytest.skip("port 80 needs a kubelet running as root (CAP_NET_BIND_SERVICE for the container)")
    bed.start_kubelet()
    for f in ("run-my-nginx.yaml", "nginx-svc.yaml"):
        r = bed.ks("apply", "-f", str(ROOT / "examples" / "upstream" / f))
        assert r.returncode == 0, r.stderr
    pods = bed.wait(lambda: (ps := bed.pods(run="my-nginx")) and len(ps) == 2 and all(running_ready(x) for x in ps) and ps,
                    timeout=30, what="my-nginx ready")
    ips = sorted(x["status"]["podIP"] for x in pods)
    assert bed.wait(lambda: bed.endpoints("my-nginx")[0] == ips, what="endpoints")
    for ip in ips:  # no readiness probe: Ready as soon as nginx started, maybe before it listens
        bed.wait(lambda ip=ip: "Welcome to nginx!" in _try(f"http://{ip}:80/"), what=f"nginx at {ip}")
    for x in pods:  # not root: the pod user, with CAP_NET_BIND_SERVICE as a container runtime grants it
        status = Path(f"/proc/{container_pid(x)}/status").read_text()
        assert f"Uid:\t{POD_UID}\t" in status, status


def test_nginx_without_nginx_installed_is_not_runnable(bed: Bed, tmp_path: Path) -> None:
    # A PATH without nginx and no /usr/sbin/nginx hides it: only when the host has none at the fixed paths.
    if os.path.exists("/usr/sbin/nginx") or os.path.exists("/usr/local/sbin/nginx"):
        pytest.skip("nginx is installed at a fixed path")
    bed.start_kubelet()
    bed.create(pod("web", [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 8080}]}]))
    p = bed.wait(lambda: (x := bed.pod("web")) and waiting(x).get("reason") == "ImageNotRunnable" and x, what="no nginx")
    assert "nginx, which is not installed" in waiting(p)["message"]


def test_registered_backend_with_native_image_is_left_alone(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reg", "labels": {"app": "reg"}},
                "spec": {"containers": [{"name": "n", "image": "nginx"}]},
                "status": {"phase": "Running", "podIP": "127.0.33.1"}})
    bed.create(pod("sentinel", [{"name": "s", "image": "busybox", "command": ["sleep", "600"]}]))
    bed.wait(lambda: running_ready(bed.pod("sentinel")), what="sentinel")
    p = bed.pod("reg")
    assert p is not None and not (p.get("spec") or {}).get("nodeName") and p["status"]["podIP"] == "127.0.33.1"
    # adopted by a ReplicationController (an orphan matching its selector, as examples/demo-traffic.sh does it):
    # still a registered backend, neither run nor replaced
    bed.create({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "reg"},
                "spec": {"replicas": 1, "selector": {"app": "reg"},
                         "template": {"metadata": {"labels": {"app": "reg"}},
                                      "spec": {"containers": [{"name": "n", "image": "nginx"}]}}}})
    bed.wait(lambda: (x := bed.pod("reg")) and (x["metadata"].get("ownerReferences") or [{}])[0].get("kind")
             == "ReplicationController", what="adoption")
    bed.create(pod("sentinel2", [{"name": "s", "image": "busybox", "command": ["sleep", "600"]}]))
    bed.wait(lambda: running_ready(bed.pod("sentinel2")), what="sentinel2")
    p = bed.pod("reg")
    assert p is not None and not (p.get("spec") or {}).get("nodeName") and p["status"]["phase"] == "Running", p
    assert [x["metadata"]["name"] for x in bed.store.list("Pod", "default") if x["metadata"]["name"].startswith("reg")] == ["reg"]
