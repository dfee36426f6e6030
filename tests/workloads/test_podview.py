"""What a pod sees: Kubernetes' service variables (and enableServiceLinks: false), the downward API, the
kubernetes Service in default, volumes (under the pod dir on loopback, at mountPath with --isolation netns),
and the cluster DNS through its resolv.conf in a netns pod."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from kubesvc.apiserver import bootstrap
from tests.dataplane.dns_fixtures import dns_server, write_resolv_conf
from tests.workloads.fixtures import POD_UID, ROOT_USER, Bed, container_pid, running_ready


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(x.decode().split("=", 1) for x in raw if b"=" in x)


def sleeper(name: str, **spec: object) -> dict:
    c = {"name": "main", "image": "busybox", "command": ["sleep", "600"]}
    c.update(spec.pop("container", {}))  # type: ignore[arg-type]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name, "tier": "x"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [c], **spec}}


def web_service(bed: Bed) -> dict:
    return bed.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-app"},
                       "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                                                       {"name": "dns", "port": 53, "protocol": "UDP"}]}})


def test_service_variables_downward_api_and_the_kubernetes_service(bed: Bed) -> None:
    assert bootstrap.ensure(bed.store_path, "127.0.0.1:6443") is None
    k8s = bed.store.get("Service", "default", "kubernetes")
    assert k8s is not None and k8s["spec"]["clusterIP"] == "127.96.0.1" and k8s["spec"]["ports"][0]["targetPort"] == 6443
    ep = bed.store.get("Endpoints", "default", "kubernetes")
    assert ep is not None and ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]
    svc = web_service(bed)
    ip = svc["spec"]["clusterIP"]
    bed.start_kubelet()
    env_items = [{"name": "MY_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                 {"name": "MY_TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
                 {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "MY_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                 {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                 {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}}]
    bed.create(sleeper("links", container={"env": env_items, "resources": {"limits": {"memory": "64Mi"},
                                                                              "requests": {"cpu": "250m"}}}))
    bed.create(sleeper("nolinks", enableServiceLinks=False))
    p = bed.wait(lambda: (x := bed.pod("links")) and running_ready(x) and x, what="links running")
    env = environ(container_pid(p))
    assert env["HOSTNAME"] == "links"
    assert env["WEB_APP_SERVICE_HOST"] == ip and env["WEB_APP_SERVICE_PORT"] == "80"
    assert env["WEB_APP_SERVICE_PORT_HTTP"] == "80" and env["WEB_APP_SERVICE_PORT_DNS"] == "53"
    assert env["WEB_APP_PORT"] == f"tcp://{ip}:80"
    assert env["WEB_APP_PORT_80_TCP"] == f"tcp://{ip}:80" and env["WEB_APP_PORT_80_TCP_PROTO"] == "tcp"
    assert env["WEB_APP_PORT_80_TCP_PORT"] == "80" and env["WEB_APP_PORT_80_TCP_ADDR"] == ip
    assert env["WEB_APP_PORT_53_UDP"] == f"udp://{ip}:53" and env["WEB_APP_PORT_53_UDP_PROTO"] == "udp"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443" and env["KUBERNETES_PORT_443_TCP_ADDR"] == "127.96.0.1"
    assert env["MY_UID"] == p["metadata"]["uid"] and env["MY_TIER"] == "x" and env["MY_NODE"] == "kubesvc-node"
    assert env["MY_HOST_IP"] == "127.0.0.1" and env["MEM_MI"] == "64" and env["CPU_REQ"] == "250"
    q = bed.wait(lambda: (x := bed.pod("nolinks")) and running_ready(x) and x, what="nolinks running")
    env = environ(container_pid(q))
    assert "WEB_APP_SERVICE_HOST" not in env and env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1"


def config_objects(bed: Bed) -> None:
    bed.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                "data": {"app.conf": "color=blue\n", "other": "x"}})
    bed.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "stringData": {"password": "s3cret"}})


VOLUMES = [{"name": "config", "configMap": {"name": "settings", "items": [{"key": "app.conf", "path": "conf/app.conf"}]}},
           {"name": "creds", "secret": {"secretName": "creds"}},
           {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
           {"name": "scratch", "emptyDir": {}}]


def test_volumes_under_the_pod_dir_in_loopback_mode(bed: Bed) -> None:
    config_objects(bed)
    bed.start_kubelet()
    mounts = [{"name": "config", "mountPath": "/etc/app"}, {"name": "creds", "mountPath": "/etc/creds"},
              {"name": "info", "mountPath": "/etc/info"}, {"name": "scratch", "mountPath": "/scratch"}]
    bed.create(sleeper("vols", volumes=VOLUMES, container={"volumeMounts": mounts}))
    p = bed.wait(lambda: (x := bed.pod("vols")) and running_ready(x) and x, what="vols running")
    env = environ(container_pid(p))
    conf = Path(env["KUBESVC_VOLUME_CONFIG"]) / "conf" / "app.conf"
    assert conf.read_text() == "color=blue\n" and not (conf.parent.parent / "other").exists()
    secret = Path(env["KUBESVC_VOLUME_CREDS"]) / "password"
    assert secret.read_text() == "s3cret"
    st = secret.stat()
    assert stat.S_IMODE(st.st_mode) == 0o400 and st.st_uid == POD_UID
    assert (Path(env["KUBESVC_VOLUME_INFO"]) / "labels").read_text() == 'app="vols"\ntier="x"'
    assert stat.S_IMODE(Path(env["KUBESVC_VOLUME_SCRATCH"]).stat().st_mode) == 0o777
    assert Path(env["KUBESVC_VOLUME_CONFIG"]).is_relative_to(Path(bed.store_path + ".d/pods"))
    # a pod naming a ConfigMap that does not exist waits, saying which
    bed.create(sleeper("missing", volumes=[{"name": "c", "configMap": {"name": "nope"}}]))
    w = bed.wait(lambda: ((x := bed.pod("missing")) and x["status"]["containerStatuses"][0]["state"].get("waiting", {})
                          .get("reason") == "CreateContainerConfigError" and x), what="config error")
    assert 'configmap "nope" not found' in w["status"]["containerStatuses"][0]["state"]["waiting"]["message"]


def _netns_ok() -> bool:
    if not ROOT_USER or shutil.which("ip") is None:
        return False
    name = f"kubesvc-probe-{os.getpid()}"  # per process: every xdist worker runs this at collection, at once
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return r.returncode == 0


@pytest.mark.skipif(not _netns_ok(), reason="needs root, iproute2 and network namespaces")
def test_netns_pod_sees_volumes_at_mount_path_and_resolves_cluster_names(bed: Bed, tmp_path: Path) -> None:
    config_objects(bed)
    web_service(bed)
    target = "/etc/kubesvc-test-config/app"  # its parent does not exist on the host: an overlay makes it
    assert not os.path.exists("/etc/kubesvc-test-config")
    with dns_server(bed.store_path, write_resolv_conf(tmp_path)) as dns:
        bed.start_kubelet("--isolation", "netns", "--pod-cidr", "10.233.0.0/16", "--cluster-dns", f"{dns.host}:{dns.port}")
        script = ("cat /etc/kubesvc-test-config/app/conf/app.conf; cat /etc/creds/password; echo; cat /etc/resolv.conf; "
                  "getent hosts web-app.default.svc.cluster.local; getent hosts web-app; echo done")
        bed.create(sleeper("inside", restartPolicy="Never", volumes=VOLUMES,
                           container={"command": ["sh", "-c", script],
                                      "volumeMounts": [{"name": "config", "mountPath": target},
                                                       {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}]}))
        bed.wait(lambda: (x := bed.pod("inside")) and x["status"].get("phase") in ("Succeeded", "Failed"), timeout=30,
                 what="pod finished")
        out = bed.ks("logs", "inside").stdout
    ip = (bed.store.get("Service", "default", "web-app") or {})["spec"]["clusterIP"]
    assert "color=blue" in out and "s3cret" in out, out
    assert "nameserver 169.254.1.1" in out and "search default.svc.cluster.local svc.cluster.local cluster.local" in out
    assert "options ndots:5" in out
    assert out.count(f"{ip} ") >= 2 and "web-app.default.svc.cluster.local" in out, out
    assert not os.path.exists("/etc/kubesvc-test-config"), "the host's /etc was changed"
