"""The ``kubernetes`` Service of ``default``, as kube-apiserver's bootstrap controller keeps it.

Rules kept here (pkg/controlplane/controller/kubernetesservice):
- At start the API server makes sure ``default/kubernetes`` exists: labels ``component: apiserver``,
  ``provider: kubernetes``; no selector; ClusterIP the first address of the service range
  (127.96.0.1 by default); one port ``https`` 443/TCP whose targetPort is the API server's port.
- Its Endpoints ``default/kubernetes`` hold the API server's address (127.0.0.1 when it serves on a
  wildcard address) and port, named ``https``: through the proxy ``https://kubernetes.default.svc`` (the
  cluster IP, port 443) reaches the API server, and the cluster DNS resolves the name.
- An existing Service keeps its cluster IP; its ports are reconciled (as the controller does). When the
  first address is held by another Service, nothing is created and the reason is returned.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kubesvc.errors import KubesvcError, NotFound
from kubesvc.registry.allocators import IPRange
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store

Obj = dict[str, Any]
NAME, NAMESPACE = "kubernetes", "default"
LABELS = {"component": "apiserver", "provider": "kubernetes"}


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    ipaddress.ip_address(host)
    return host, int(port)


def ensure(store_path: str, address: str) -> str | None:
    """Create or reconcile the Service and its Endpoints for an API server at ``address`` (HOST:PORT).
    Returns None when done, else a one-line reason (the API server serves anyway)."""
    host, port = _host_port(address)
    with Store(store_path) as store:
        reg = Registry(store)
        ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]
        try:
            svc = store.get("Service", NAMESPACE, NAME)
            if svc is None:
                ip = IPRange(store.settings().service_cluster_ip_range).nth(1)
                reg.create({"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
                            "spec": {"type": "ClusterIP", "clusterIP": ip, "ports": ports, "sessionAffinity": "None"}})
            elif (svc.get("spec") or {}).get("ports") != ports or (svc.get("spec") or {}).get("selector"):

                def fix(obj: Obj) -> None:
                    obj["spec"]["ports"] = ports
                    obj["spec"].pop("selector", None)

                reg.mutate("Service", NAMESPACE, NAME, fix)
            subsets = [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
            ep = store.get("Endpoints", NAMESPACE, NAME)
            if ep is None:
                reg.create({"apiVersion": "v1", "kind": "Endpoints",
                            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
                            "subsets": subsets})
            elif ep.get("subsets") != subsets:
                reg.mutate("Endpoints", NAMESPACE, NAME, lambda o: o.__setitem__("subsets", subsets))
        except NotFound:
            return "the default namespace is gone"
        except KubesvcError as e:
            return f"the kubernetes Service was not made: {e}"
    return None
