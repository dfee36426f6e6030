"""EndpointSlices through kubesvc's CLI and kubectl against ``kubesvc apiserver``: the same text for get
(printEndpointSlice's NAME ADDRESSTYPE PORTS ENDPOINTS AGE) and describe (describeEndpointSliceV1, and the
Service's Endpoints line read from slices); create/apply/delete with either tool; one slice in a
multi-document file is created with the rest. Plus the DefaultIngressClass admission rules.

Checks (Kubernetes docs): "EndpointSlices" > "EndpointSlice API" (the object as written), "Services without
selectors" (a hand-written slice shows on ``describe svc``), Ingress > "Default IngressClass" (several
defaults: the newest wins; only on create; an explicit class or the legacy annotation is kept).
"""

from __future__ import annotations

import json

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, mask, needs_kubectl
from tests.cli.conftest import cli, store_path  # noqa: F401  (fixtures)

MULTI = """apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  ports: [{name: http, port: 80, targetPort: 9376}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ext-1
  labels: {kubernetes.io/service-name: ext}
addressType: IPv4
ports: [{name: http, port: 9376, protocol: TCP}, {name: a, port: 1}, {name: b, port: 2}, {name: c, port: 3}]
endpoints:
- addresses: [127.40.0.1]
  conditions: {ready: true}
  hostname: one
  nodeName: kubesvc-node
  zone: z-a
  targetRef: {kind: Pod, name: one, namespace: NS}
- addresses: [127.40.0.2]
  conditions: {ready: false}
- addresses: [127.40.0.3]
- addresses: [127.40.0.4]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: after-the-slice}
data: {k: v}
"""


def same(api: Api, *args: str) -> str:
    k, s = api.kubectl(*args), api.cli(*args)
    assert (k.code, s.code) == (0, 0), (k, s)
    assert mask(k.out) == mask(s.out), f"kubectl:\n{k.out}\nkubesvc:\n{s.out}"
    return k.out


@needs_kubectl
def test_slices_get_describe_create_delete_as_kubectl(api: Api, ns: str) -> None:
    """endpoint-slices.md "EndpointSlice API" and service.md "Services without selectors": a hand-written slice in a
    multi-document file is created with its Service, shows in get/describe as kubectl prints it, and on
    ``describe svc``; deleted with either tool."""
    r = api.cli("create", "-n", ns, "-f", api.write(f"{ns}.yaml", MULTI.replace("NS", ns)))
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["service/ext created", "endpointslice.discovery.k8s.io/ext-1 created",
                                  "configmap/after-the-slice created"]
    out = same(api, "get", "endpointslices", "-n", ns)
    assert out.splitlines()[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert out.splitlines()[1].split()[:8] == ["ext-1", "IPv4", "9376,1,2", "+", "1", "more...", "127.40.0.1,127.40.0.2,127.40.0.3", "+"]
    same(api, "get", "endpointslice", "ext-1", "-n", ns, "-o", "wide")
    text = same(api, "describe", "endpointslice", "ext-1", "-n", ns)
    assert "AddressType:  IPv4" in text and "TargetRef:  Pod/one" in text and "Zone:       z-a" in text
    # kubectl describe svc reads the slices: the ready endpoints of port "http" (ready unset counts).
    svc = same(api, "describe", "svc", "ext", "-n", ns)
    [line] = [x for x in svc.splitlines() if x.startswith("Endpoints:")]
    assert line.split() == ["Endpoints:", "127.40.0.1:9376,127.40.0.3:9376,127.40.0.4:9376"]

    # kubectl writes one (apply), kubesvc shows it; kubesvc deletes it, kubectl no longer finds it.
    doc = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "ext-2", "namespace": ns, "labels": {"kubernetes.io/service-name": "ext"}},
           "addressType": "IPv4", "endpoints": [{"addresses": ["127.40.0.9"]}]}
    assert api.kubectl("apply", "-f", "-", input=json.dumps(doc)).code == 0
    text = same(api, "describe", "endpointslice", "ext-2", "-n", ns)
    assert "Ports: <unset>" in text and "Ready:   <unset>" in text and "Hostname:  <unset>" in text
    assert api.cli("delete", "endpointslice", "ext-2", "-n", ns).code == 0
    gone = api.kubectl("get", "endpointslice", "ext-2", "-n", ns)
    assert gone.code == 1 and 'endpointslices.discovery.k8s.io "ext-2" not found' in gone.err


@needs_kubectl
def test_controller_slices_match_kubectl(api: Api, ns: str) -> None:
    """endpoint-slices.md "EndpointSlice API": the controller's slice for a selector Service, found by its
    ``kubernetes.io/service-name`` label, reads the same through kubectl and kubesvc (get, describe, describe svc)."""
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w1", "namespace": ns, "labels": {"app": "web"}},
         "spec": {"containers": [{"name": "c", "image": "x"}]}}]}
    assert api.kubectl("create", "-f", "-", input=json.dumps(doc)).code == 0
    out = same(api, "get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web")
    assert out.splitlines()[1].split()[1:3] == ["IPv4", "8080"]
    name = out.splitlines()[1].split()[0]
    same(api, "describe", "endpointslice", name, "-n", ns)
    same(api, "describe", "svc", "web", "-n", ns)


def ingress(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}, **spec}}


def ingress_class(name: str, default: bool) -> dict[str, object]:
    meta: dict[str, object] = {"name": name}
    if default:
        meta["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": meta, "spec": {"controller": "example.com/x"}}


def test_default_ingress_class_is_stamped_on_create_only(cli, store_path) -> None:  # noqa: F811
    """ingress.md "Default IngressClass": a new Ingress without a class gets the class annotated
    ``ingressclass.kubernetes.io/is-default-class: "true"`` (the newest of several); an explicit class or the legacy
    annotation is kept (the DefaultIngressClass admission plugin's rules, applied on create only)."""
    def create(obj: dict[str, object]) -> None:
        r = cli("apply", "-f", "-", input=json.dumps(obj))
        assert r.code == 0, r.err

    def cls(name: str) -> str:
        return cli("get", "ingress", name, "-o", "jsonpath={.spec.ingressClassName}").out

    create(ingress_class("plain", False))
    create(ingress("none"))
    assert cls("none") == ""  # no default class: left without one
    create(ingress_class("older", True))
    create(ingress("one"))
    assert cls("one") == "older"
    create(ingress("explicit", ingressClassName="plain"))
    assert cls("explicit") == "plain"
    legacy = ingress("legacy")
    legacy["metadata"] = {"name": "legacy", "annotations": {"kubernetes.io/ingress.class": "nginx"}}
    create(legacy)
    assert cls("legacy") == ""
    # Two defaults: the newest wins (creationTimestamp, then name), as the admission plugin since 1.28.
    from kubesvc.store.db import Store

    with Store(store_path) as store:
        from kubesvc.registry.generic import Registry

        older = store.get("IngressClass", "", "older")
        newer = ingress_class("newer", True)
        Registry(store).create(newer)
        stamp = store.get("IngressClass", "", "newer")["metadata"]["creationTimestamp"]
    assert stamp >= older["metadata"]["creationTimestamp"]
    create(ingress("two"))
    assert cls("two") == "newer"  # newer timestamp, or the same second and "newer" < "older"
    # Updates are not defaulted: "none" stays without a class when applied again.
    create(ingress("none"))
    assert cls("none") == ""
