"""The objects a new store holds before any component runs: the Node that is this machine, and the
``default`` ServiceAccount of each built-in namespace (what the serviceaccounts controller makes).

Rules kept here:
- One Node, named ``kubesvc-node`` (the name ``kubesvc kubelet`` binds pods to by default; kind calls its
  node ``kind-control-plane``, minikube ``minikube``: a stable name, not the host's), labelled as a
  control-plane node with the host name in ``kubernetes.io/hostname``.
- status: addresses InternalIP 127.0.0.1 and Hostname (the host name, lower case, as the kubelet
  reports it); capacity = allocatable: cpu from ``os.cpu_count()``, memory from /proc/meminfo in Ki,
  pods 110 (the kubelet's default); nodeInfo from uname and /etc/os-release; a Ready condition.
- Reads the machine (uname, /proc, /etc/os-release) but holds no socket and no store.
"""

from __future__ import annotations

import os
import platform
from typing import Any

NODE_NAME = "kubesvc-node"
KUBELET_VERSION = "v1.32.0+kubesvc"
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def hostname() -> str:
    return os.uname().nodename.lower()


def memory_ki() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def os_image() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            continue
    return ""


def node(now: str) -> dict[str, Any]:
    """This machine as a Node (``now``: the RFC 3339 time of the Ready condition)."""
    host = hostname()
    arch = _ARCH.get(platform.machine(), platform.machine())
    resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_ki()}Ki", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {
            "beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": host, "kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}},
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": host}],
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": _machine_id(), "systemUUID": "", "bootID": "", "kernelVersion": os.uname().release,
                         "osImage": os_image(), "containerRuntimeVersion": "kubesvc://local-process",
                         "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": arch},
        },
    }


def default_service_account(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}


def seed_objects(now: str) -> list[dict[str, Any]]:
    """What a new store holds besides its namespaces."""
    return [node(now)] + [default_service_account(ns) for ns in BUILTIN_NAMESPACES]
