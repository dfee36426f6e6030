"""The EndpointSlice controller and the mirroring controller, run in the write transaction, seen through the
CLI (CliRunner against a real store) as a user sees them.

Checks (Kubernetes docs, "EndpointSlices" concept page, and "Services without selectors"):
- "EndpointSlice API": slices for every Service with a selector, labelled ``kubernetes.io/service-name``;
  "Management": ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``; "Ownership":
  an ownerReference to the Service; names from ``generateName`` ``<service>-``.
- "Conditions": ready / serving / terminating per endpoint; "Topology information": nodeName, zone;
  targetRef and hostname.
- "Distribution of EndpointSlices": at most 100 endpoints per slice (the default
  ``--max-endpoints-per-slice``); one group per port set; the placeholder slice for a Service without endpoints.
- "EndpointSlice mirroring": hand-written Endpoints of a selector-less Service are mirrored by
  ``endpointslicemirroring-controller.k8s.io`` (not with ``endpointslice.kubernetes.io/skip-mirror: "true"``);
  the mirrored slices go with the Endpoints.
- "Services without selectors": hand-written slices are kept as written, never adopted nor deleted.
"""

from __future__ import annotations

import json
from typing import Any

from kubesvc.controllers.endpointslices import desired_for_service
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.cli.conftest import cli, store_path  # noqa: F401  (fixtures)

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME = "kubernetes.io/service-name"


def create(cli, *objs: dict[str, Any]) -> None:  # noqa: F811
    r = cli("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs))
    assert r.code == 0, r.err


def slices(cli, service: str) -> list[dict[str, Any]]:  # noqa: F811
    r = cli("get", "endpointslices", "-l", f"{SERVICE_NAME}={service}", "-o", "json")
    assert r.code == 0, r.err
    return sorted(json.loads(r.out)["items"], key=lambda s: json.dumps(s.get("ports")))


def pod(name: str, ip: str, *, ready: bool = True, port: int = 8080, node: str = "", labels: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running", "podIP": ip,
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    pspec: dict[str, Any] = {"containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": port}]}], **spec}
    if node:
        pspec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "web"}},
            "spec": pspec, "status": status}


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    s = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"tier": "fe"}}, "spec": s}


def test_controller_slices_for_a_selector_service(cli) -> None:  # noqa: F811
    """EndpointSlice API, Management, Ownership, Conditions, Topology information."""
    create(cli, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "z-a"}}})
    create(cli, service(), pod("a", "127.31.0.1", node="n1", hostname="a", subdomain="web"), pod("b", "127.31.0.2", ready=False))
    [sl] = slices(cli, "web")
    meta = sl["metadata"]
    svc = json.loads(cli("get", "svc", "web", "-o", "json").out)
    assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5 and meta["generateName"] == "web-"
    assert meta["labels"] == {"tier": "fe", SERVICE_NAME: "web", MANAGED_BY: "endpointslice-controller.k8s.io"}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"],
                                        "controller": True, "blockOwnerDeletion": True}]
    assert sl["addressType"] == "IPv4" and sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_ip = {e["addresses"][0]: e for e in sl["endpoints"]}
    a, b = by_ip["127.31.0.1"], by_ip["127.31.0.2"]
    assert a["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert (a["nodeName"], a["zone"], a["hostname"]) == ("n1", "z-a", "a")
    assert a["targetRef"]["kind"] == "Pod" and a["targetRef"]["name"] == "a" and a["targetRef"]["uid"]
    assert b["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert "nodeName" not in b and "zone" not in b and "hostname" not in b

    # The pod becomes ready: the same slice (same name) is updated in place.
    create(cli, pod("b", "127.31.0.2"))
    [again] = slices(cli, "web")
    assert again["metadata"]["name"] == meta["name"]
    assert all(e["conditions"]["ready"] for e in again["endpoints"])

    # Different target ports -> one slice per port set; the Service deleted -> its slices go.
    create(cli, pod("c", "127.31.0.3", port=9090))
    assert [[p["port"] for p in s["ports"]] for s in slices(cli, "web")] == [[8080], [9090]]
    assert cli("delete", "svc", "web").code == 0
    assert slices(cli, "web") == []


def test_placeholder_and_publish_not_ready(cli) -> None:  # noqa: F811
    """Distribution: a placeholder slice (no ports, no endpoints) while nothing matches, reused for the first
    endpoint. Conditions: publishNotReadyAddresses makes a not-ready pod ready."""
    create(cli, service())
    [ph] = slices(cli, "web")
    assert ph["endpoints"] == [] and not ph.get("ports")
    assert cli("get", "endpointslices").out.splitlines()[1].split()[1:4] == ["IPv4", "<unset>", "<unset>"]
    create(cli, pod("a", "127.31.1.1"))
    [sl] = slices(cli, "web")
    assert sl["metadata"]["name"] == ph["metadata"]["name"] and len(sl["endpoints"]) == 1  # the placeholder is reused
    create(cli, service(publishNotReadyAddresses=True), pod("b", "127.31.1.2", ready=False))
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in slices(cli, "web")[0]["endpoints"]} == {"127.31.1.1": True, "127.31.1.2": True}


def test_terminating_pods_stay_with_their_conditions() -> None:
    """Conditions: a terminating pod (deletionTimestamp set, still Ready) stays with ready false, serving true,
    terminating true; publishNotReadyAddresses makes it ready (the pure rule: pods become terminating only
    through graceful deletion, which the store cannot stage here)."""
    p = pod("a", "127.31.2.1")
    p["metadata"].update(namespace="default", uid="u1", deletionTimestamp="2030-01-01T00:00:00Z")
    svc = service()
    svc["metadata"]["namespace"] = "default"
    [eps] = desired_for_service(svc, [p], {}).values()
    assert eps[0]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    svc["spec"]["publishNotReadyAddresses"] = True
    [eps] = desired_for_service(svc, [p], {}).values()
    assert eps[0]["conditions"] == {"ready": True, "serving": True, "terminating": True}


def test_at_most_100_endpoints_per_slice(store_path) -> None:  # noqa: F811
    """Distribution of EndpointSlices: 150 pods -> two slices (100 + 50); pods leaving shrink them and
    an emptied slice is deleted."""
    with Store(store_path) as store:
        reg = Registry(store)
        reg.create({**service(), "metadata": {"name": "web", "namespace": "default"}})
        for i in range(150):
            p = pod(f"p{i}", f"127.32.{i // 200}.{i % 200 + 1}")
            p["metadata"]["namespace"] = "default"
            reg.create(p)
        mine = [s for s in store.list("EndpointSlice", "default")]
        assert sorted(len(s["endpoints"]) for s in mine) == [50, 100]
        assert len({e["addresses"][0] for s in mine for e in s["endpoints"]}) == 150
        small = min(mine, key=lambda s: len(s["endpoints"]))
        for e in small["endpoints"]:
            reg.delete("Pod", "default", e["targetRef"]["name"])
        left = store.list("EndpointSlice", "default")
        assert [len(s["endpoints"]) for s in left] == [100] and left[0]["metadata"]["name"] != small["metadata"]["name"]


def test_mirroring_of_hand_written_endpoints(cli) -> None:  # noqa: F811
    """EndpointSlice mirroring: Endpoints of a selector-less Service -> a mirrored slice (labels and
    annotations copied, owned by the Endpoints); skip-mirror stops it; deleting the Endpoints deletes it.
    Endpoints the endpoints controller writes are not mirrored (they carry skip-mirror)."""
    create(cli, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}})
    eps = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "labels": {"team": "x"}, "annotations": {"note": "y"}},
           "subsets": [{"addresses": [{"ip": "127.33.0.1"}, {"ip": "127.33.0.2", "hostname": "two"}],
                        "notReadyAddresses": [{"ip": "127.33.0.3"}], "ports": [{"name": "", "port": 9000}]}]}
    create(cli, eps)
    [sl] = slices(cli, "ext")
    ep_obj = json.loads(cli("get", "ep", "ext", "-o", "json").out)
    assert sl["metadata"]["labels"] == {"team": "x", SERVICE_NAME: "ext", MANAGED_BY: "endpointslicemirroring-controller.k8s.io"}
    assert sl["metadata"]["annotations"]["note"] == "y" and "kubectl.kubernetes.io/last-applied-configuration" not in sl["metadata"]["annotations"]
    assert sl["metadata"]["ownerReferences"][0]["kind"] == "Endpoints" and sl["metadata"]["ownerReferences"][0]["uid"] == ep_obj["metadata"]["uid"]
    assert sl["ports"] == [{"name": "", "port": 9000, "protocol": "TCP"}]
    assert [(e["addresses"], e["conditions"], e.get("hostname")) for e in sl["endpoints"]] == [
        (["127.33.0.1"], {"ready": True}, None), (["127.33.0.2"], {"ready": True}, "two"), (["127.33.0.3"], {"ready": False}, None)]
    eps["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] = "true"
    create(cli, eps)
    assert slices(cli, "ext") == []
    del eps["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"]
    create(cli, eps)
    assert len(slices(cli, "ext")) == 1
    assert cli("delete", "ep", "ext").code == 0
    assert slices(cli, "ext") == []

    create(cli, service("sel"), pod("a", "127.33.1.1"))  # controller-made Endpoints: only the controller's slice
    assert [s["metadata"]["labels"][MANAGED_BY] for s in slices(cli, "sel")] == ["endpointslice-controller.k8s.io"]


def test_hand_written_slices_are_left_alone(cli) -> None:  # noqa: F811
    """Services without selectors: a slice you write stays as written through Service and pod changes."""
    create(cli, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}})
    mine = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "ext-mine", "labels": {SERVICE_NAME: "ext", MANAGED_BY: "staff"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["127.34.0.1"]}], "ports": [{"port": 8080}]}
    create(cli, mine)
    create(cli, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "labels": {"x": "y"}}, "spec": {"ports": [{"port": 80}]}})
    create(cli, pod("a", "127.34.0.9"))
    [got] = slices(cli, "ext")
    assert got["metadata"]["name"] == "ext-mine" and got["endpoints"] == [{"addresses": ["127.34.0.1"]}]
    assert cli("delete", "svc", "ext").code == 0
    assert cli("get", "endpointslice", "ext-mine").code == 0  # not the controllers' to delete
