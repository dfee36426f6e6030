"""The official Python client (kubernetes 37.x) against `kubesvc apiserver`: CRUD, patches and watch."""

from __future__ import annotations

import json
import threading

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


@pytest.fixture
def v1(api: Api) -> client.CoreV1Api:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig), client_configuration=cfg)
    return client.CoreV1Api(client.ApiClient(cfg))


def _svc(name: str, port: int = 80) -> client.V1Service:
    return client.V1Service(metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
                            spec=client.V1ServiceSpec(selector={"app": name},
                                                      ports=[client.V1ServicePort(port=port, target_port=8080)]))


def test_crud(api: Api, ns: str, v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_service(ns, _svc("py"))
    assert created.spec.cluster_ip and created.spec.type == "ClusterIP"
    assert created.metadata.creation_timestamp is not None
    # the CLI sees what the client created, with the same allocated address
    assert created.spec.cluster_ip in api.ks("get", "svc", "py", "-n", ns).out
    listed = v1.list_namespaced_service(ns, label_selector="app=py")
    assert [s.metadata.name for s in listed.items] == ["py"]
    assert [s.metadata.name for s in v1.list_namespaced_service(ns, label_selector="app=nope").items] == []
    assert ns in {s.metadata.namespace for s in v1.list_service_for_all_namespaces().items}
    got = v1.read_namespaced_service("py", ns)
    got.spec.ports[0].port = 81
    replaced = v1.replace_namespaced_service("py", ns, got)
    assert replaced.spec.ports[0].port == 81 and replaced.spec.cluster_ip == created.spec.cluster_ip
    # a stale resourceVersion is a Conflict
    got.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_service("py", ns, got)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "Conflict"
    # strategic merge patch (a dict body) and JSON patch (a list body)
    patched = v1.patch_namespaced_service("py", ns, {"metadata": {"labels": {"tier": "front"}}})
    assert patched.metadata.labels == {"app": "py", "tier": "front"}
    patched = v1.patch_namespaced_service("py", ns, [{"op": "replace", "path": "/spec/ports/0/port", "value": 82}])
    assert patched.spec.ports[0].port == 82
    v1.delete_namespaced_service("py", ns)
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_service("py", ns)
    assert e.value.status == 404
    assert json.loads(e.value.body)["message"] == 'services "py" not found'


def test_invalid_object_is_a_422_with_causes(ns: str, v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_service(ns, _svc("bad", port=70000))
    body = json.loads(e.value.body)
    assert e.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["kind"] == "Service" and body["details"]["name"] == "bad"
    assert body["details"]["causes"][0]["field"] == "spec.ports[0].port"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_watch(api: Api, ns: str, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_service(ns, _svc("before"))
    rv = v1.list_namespaced_service(ns).metadata.resource_version
    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for ev in w.stream(v1.list_namespaced_service, ns, resource_version=rv, timeout_seconds=20):
            events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    v1.create_namespaced_service(ns, _svc("after"))
    assert api.ks("label", "svc", "after", "x=y", "-n", ns).code == 0
    v1.delete_namespaced_service("after", ns)
    t.join(25)
    assert not t.is_alive()
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]
    # resourceVersion 0: the current objects first, as synthetic ADDED events
    seen = [(ev["type"], ev["object"].metadata.name)
            for ev in watch.Watch().stream(v1.list_namespaced_service, ns, resource_version="0", timeout_seconds=1)]
    assert seen == [("ADDED", "before")]
