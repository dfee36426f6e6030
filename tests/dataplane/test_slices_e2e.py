"""Hand-written EndpointSlices for Services without selectors, end to end: objects written with the real CLI
(``kubesvc create/apply/delete -f``), traffic with curl through the cluster IP (``kubesvc proxy``), names with
dig (``kubesvc dns``), and an Ingress stamped with the default IngressClass served by ``kubesvc ingress``.

Checks (Kubernetes docs):
- "Services without selectors" (concepts/services-networking/service): a Service without a selector is
  pointed at backends by EndpointSlices you write, labelled ``kubernetes.io/service-name``; the proxy sends
  traffic to their ready endpoints; several slices for one Service are merged.
- "EndpointSlices" > "Conditions" (concepts/services-networking/endpoint-slices): ``ready: false`` endpoints
  get no traffic; an unset ``ready`` counts as ready.
- DNS for Services and Pods > "Services" (headless without selector: A records of the endpoints; an
  endpoint's hostname gets its own name).
- Ingress > "Default IngressClass": an Ingress created without a class gets the default one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dataplane.dns_fixtures import dig, dns_server, write_resolv_conf
from tests.dataplane.ingress_fixtures import HTTPBackend, free_port, random_loopback
from tests.support.procs import Proc, ready_fields, wait_for


def ks(store: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], input=input,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def apply(store: str, *docs: dict[str, Any]) -> None:
    ks(store, "apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))


def selectorless(name: str, port: int = 80, headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": port, "targetPort": 9376}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def slice_(name: str, service: str, endpoints: list[dict[str, Any]], port: int | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                           "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
                           "addressType": "IPv4", "endpoints": endpoints}
    if port is not None:
        obj["ports"] = [{"name": "http", "port": port, "protocol": "TCP"}]
    return obj


def curl(url: str) -> tuple[int, str]:
    p = subprocess.run(["curl", "-sS", "--max-time", "5", url], capture_output=True, text=True, timeout=15)
    return p.returncode, p.stdout


def backend_name(url: str) -> str:
    code, out = curl(url)
    return json.loads(out)["name"] if code == 0 else f"curl exit {code}"


@pytest.fixture
def backends() -> Iterator[list[HTTPBackend]]:
    made: list[HTTPBackend] = []
    net = random_loopback()
    try:
        made += [HTTPBackend("one", net + "10"), HTTPBackend("two", net + "11")]
        yield made
    finally:
        for b in made:
            b.stop()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[str]:
    store = str(tmp_path / "store.db")
    ks(store, "get", "svc")  # creates the store
    proc = Proc(store, "proxy", "--nodeport-addresses", "127.0.0.1/32", "--healthz-bind-address", "127.0.0.1:0",
                "--metrics-bind-address", "127.0.0.1:0")
    try:
        ready_fields(proc.wait_line("kubesvc proxy ready"))
        yield store
    finally:
        proc.stop()


def test_selectorless_service_with_hand_written_slices_through_the_cluster_ip(proxy: str, backends: list[HTTPBackend]) -> None:
    """Services without selectors + EndpointSlices "Conditions": ready endpoints of every slice labelled
    with the Service get traffic, ``ready: false`` ones none; editing and deleting slices follows."""
    store, (one, two) = proxy, backends
    apply(store, selectorless("ext"), slice_("ext-1", "ext", [
        {"addresses": [one.host], "conditions": {"ready": True}},
        {"addresses": [two.host], "conditions": {"ready": False}},  # not ready: never chosen
    ], port=one.port))
    ip = ks(store, "get", "svc", "ext", "-o", "jsonpath={.spec.clusterIP}").stdout
    url = f"http://{ip}/"
    wait_for(lambda: backend_name(url) == "one", timeout=10, what="ext served through its slice")
    assert {backend_name(url) for _ in range(6)} == {"one"}

    # A second slice for the same Service (ready unset counts as ready): both backends take turns.
    assert one.port != two.port or one.host != two.host
    apply(store, slice_("ext-2", "ext", [{"addresses": [two.host]}], port=two.port))
    wait_for(lambda: {backend_name(url) for _ in range(6)} == {"one", "two"}, timeout=10, what="two slices merged")

    # The first slice deleted with the CLI: only the second one's endpoint is left.
    ks(store, "delete", "endpointslice", "ext-1")
    wait_for(lambda: {backend_name(url) for _ in range(6)} == {"two"}, timeout=10, what="ext-1 gone")

    # No slice left: the proxy refuses (curl exit 7, connection refused), as kube-proxy does.
    ks(store, "delete", "endpointslice", "ext-2")
    wait_for(lambda: curl(url)[0] == 7, timeout=10, what="refused without endpoints")


def test_hand_written_endpoints_are_mirrored_and_served(proxy: str, backends: list[HTTPBackend]) -> None:
    """Services without selectors, the Endpoints way: the mirroring controller makes a slice of them, and
    that slice is what the proxy serves; a skip-mirror label leaves them unmirrored (nothing served)."""
    store, (one, _) = proxy, backends
    eps = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "legacy"},
           "subsets": [{"addresses": [{"ip": one.host}], "ports": [{"name": "http", "port": one.port}]}]}
    apply(store, selectorless("legacy"), eps)
    slices = json.loads(ks(store, "get", "endpointslices", "-l", "kubernetes.io/service-name=legacy", "-o", "json").stdout)["items"]
    assert [s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] for s in slices] == ["endpointslicemirroring-controller.k8s.io"]
    ip = ks(store, "get", "svc", "legacy", "-o", "jsonpath={.spec.clusterIP}").stdout
    wait_for(lambda: backend_name(f"http://{ip}/") == "one", timeout=10, what="mirrored Endpoints served")
    eps["metadata"]["labels"] = {"endpointslice.kubernetes.io/skip-mirror": "true"}
    apply(store, eps)
    assert "legacy" not in ks(store, "get", "endpointslices").stdout
    wait_for(lambda: curl(f"http://{ip}/")[0] == 7, timeout=10, what="unmirrored Endpoints not served")


def test_headless_selectorless_service_answers_from_its_slices(tmp_path: Path) -> None:
    """DNS "Services" (headless, without selector): A records of the slice's ready endpoints, and an
    endpoint's hostname under the Service name."""
    store = str(tmp_path / "store.db")
    apply(store, selectorless("db", headless=True), slice_("db-a", "db", [
        {"addresses": ["127.9.0.1"], "hostname": "primary", "conditions": {"ready": True}},
        {"addresses": ["127.9.0.2"]},
        {"addresses": ["127.9.0.3"], "conditions": {"ready": False}},
    ], port=5432))
    with dns_server(store, write_resolv_conf(tmp_path)) as srv:
        a = dig(srv.port, "db.default.svc.cluster.local", "A")
        assert a.status == "NOERROR" and a.rdata("A") == ["127.9.0.1", "127.9.0.2"]
        host = dig(srv.port, "primary.db.default.svc.cluster.local", "A")
        assert host.rdata("A") == ["127.9.0.1"]
        ks(store, "delete", "endpointslice", "db-a")
        wait_for(lambda: dig(srv.port, "db.default.svc.cluster.local", "A").status == "NXDOMAIN", timeout=10,
                 what="headless name gone with its slice")


def test_ingress_without_class_gets_the_default_and_is_served(tmp_path: Path, backends: list[HTTPBackend]) -> None:
    """Ingress "Default IngressClass": created without a class, the Ingress is stamped with the class
    annotated is-default-class, which kubesvc's router serves; its backend is a hand-written slice."""
    store, (one, _) = str(tmp_path / "store.db"), backends
    apply(store, {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                  "metadata": {"name": "kubesvc", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                  "spec": {"controller": "kubesvc.io/ingress"}},
          selectorless("site"), slice_("site-1", "site", [{"addresses": [one.host]}], port=one.port))
    ks(store, "create", "-f", "-", input=json.dumps({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site"},
        "spec": {"rules": [{"host": "site.test", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "site", "port": {"name": "http"}}}}]}}]}}))
    assert ks(store, "get", "ingress", "site", "-o", "jsonpath={.spec.ingressClassName}").stdout == "kubesvc"
    port = free_port()
    proc = Proc(store, "ingress", "--http-address", f"127.0.0.1:{port}", "--https-address", "")
    try:
        ready_fields(proc.wait_line("kubesvc ingress ready"))
        url = f"http://127.0.0.1:{port}/"

        def answer() -> str:
            p = subprocess.run(["curl", "-sS", "--max-time", "5", "-H", "Host: site.test", url], capture_output=True, text=True, timeout=15)
            return json.loads(p.stdout).get("name", "") if p.returncode == 0 and p.stdout.startswith("{") else p.stdout

        wait_for(lambda: answer() == "one", timeout=10, what="the stamped Ingress served")
    finally:
        proc.stop()
