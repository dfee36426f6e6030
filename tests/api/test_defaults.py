"""apiserver defaulting: kubectl-generated objects in, what the apiserver stores out."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesvc.api.defaults import apply_defaults, image_pull_policy
from kubesvc.api.strategy import prepare_for_create
from kubesvc.api.validation import validate

Obj = dict[str, Any]

# `kubectl create service clusterip foo --tcp=80:8080 --dry-run=client -o json` (kubectl 1.32.4)
KUBECTL_CLUSTERIP: Obj = {
    "kind": "Service",
    "apiVersion": "v1",
    "metadata": {"name": "foo", "creationTimestamp": None, "labels": {"app": "foo"}},
    "spec": {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "foo"},
        "type": "ClusterIP",
    },
    "status": {"loadBalancer": {}},
}


def created(obj: Obj, namespace: str | None = "default") -> Obj:
    obj = copy.deepcopy(obj)
    if namespace:
        obj["metadata"]["namespace"] = namespace
    prepare_for_create(obj)
    apply_defaults(obj)
    return obj


def svc(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


def test_kubectl_clusterip_matches_spec_example() -> None:
    obj = created(KUBECTL_CLUSTERIP)
    # The spec's §2 example, minus the allocated clusterIP/clusterIPs.
    assert obj["spec"] == {
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        "selector": {"app": "foo"},
        "sessionAffinity": "None",
        "type": "ClusterIP",
    }
    assert obj["status"] == {"loadBalancer": {}}
    assert obj["metadata"] == {"name": "foo", "namespace": "default", "labels": {"app": "foo"}}
    assert validate(obj) == []


SERVICE_CASES: list[tuple[str, Obj, dict[str, Any]]] = [
    ("type and protocol", svc(ports=[{"port": 80}]), {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}),
    ("targetPort 0", svc(ports=[{"port": 53, "targetPort": 0, "protocol": "UDP"}]), {"ports": [{"port": 53, "targetPort": 53, "protocol": "UDP"}]}),
    ("targetPort empty", svc(ports=[{"port": 80, "targetPort": ""}]), {"ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}),
    ("named targetPort kept", svc(ports=[{"port": 80, "targetPort": "http"}]), {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]}),
    ("affinity none drops config", svc(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}), {"sessionAffinity": "None", "sessionAffinityConfig": None}),
    ("clientip timeout", svc(sessionAffinity="ClientIP"), {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}),
    ("clientip keeps timeout", svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
     {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
    ("nodeport etp", svc(type="NodePort"), {"externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"}),
    ("clusterip externalIPs etp", svc(externalIPs=["127.0.0.9"]), {"externalTrafficPolicy": "Cluster"}),
    ("clusterip no etp", svc(), {"externalTrafficPolicy": None}),
    ("lb", svc(type="LoadBalancer"), {"allocateLoadBalancerNodePorts": True, "externalTrafficPolicy": "Cluster"}),
    ("lb keeps false", svc(type="LoadBalancer", allocateLoadBalancerNodePorts=False), {"allocateLoadBalancerNodePorts": False}),
    ("externalname", svc(type="ExternalName", externalName="example.com"),
     {"internalTrafficPolicy": None, "ipFamilies": None, "ipFamilyPolicy": None, "externalTrafficPolicy": None}),
    ("clusterIP mirrored", svc(clusterIP="10.96.0.5"), {"clusterIPs": ["10.96.0.5"], "ipFamilies": ["IPv4"]}),
    ("headless with selector", svc(clusterIP="None", selector={"app": "a"}), {"clusterIPs": ["None"], "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}),
    ("headless selectorless", svc(clusterIP="None"), {"clusterIPs": ["None"], "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}),
    ("headless selectorless single", svc(clusterIP="None", ipFamilyPolicy="SingleStack"), {"ipFamilies": ["IPv4"]}),
    ("ipv6 clusterIP inferred", svc(clusterIP="fd00::5"), {"ipFamilies": ["IPv6"]}),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES])
def test_service_defaults(obj: Obj, expected: dict[str, Any]) -> None:
    apply_defaults(obj)
    for key, value in expected.items():
        assert obj["spec"].get(key) == value, key


def test_lb_ip_mode() -> None:
    obj = svc(type="LoadBalancer")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.50"}, {"hostname": "lb.example.com"}]}}
    apply_defaults(obj)
    assert obj["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.50", "ipMode": "VIP"}, {"hostname": "lb.example.com"}]


def test_family_policy_copied_from_old_on_update() -> None:
    old = created(svc(clusterIP="None"), None)
    new = svc(clusterIP="None", selector={"app": "x"})
    apply_defaults(new, old)
    assert new["spec"]["ipFamilyPolicy"] == "RequireDualStack"


def test_defaults_are_idempotent() -> None:
    once = created(KUBECTL_CLUSTERIP)
    twice = copy.deepcopy(once)
    apply_defaults(twice)
    assert twice == once


@pytest.mark.parametrize(
    ("image", "policy"),
    [("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.27", "IfNotPresent"), ("localhost:5000/app", "Always"),
     ("localhost:5000/app:v1", "IfNotPresent"), ("nginx@sha256:abc", "IfNotPresent")],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_pod_defaults() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}
    apply_defaults(pod)
    assert pod["spec"] == {
        "containers": [
            {"name": "c", "image": "nginx", "imagePullPolicy": "Always", "ports": [{"containerPort": 80, "protocol": "TCP"}],
             "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
        ],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
    }


def test_kubectl_deployment_defaults() -> None:
    # `kubectl create deployment web --image=nginx --dry-run=client -o json`
    deploy = {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
                 "strategy": {}},
        "status": {},
    }
    obj = created(deploy)
    spec = obj["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"], spec["replicas"]) == (10, 600, 1)
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert obj["metadata"]["generation"] == 1
    assert validate(obj) == []


def test_rc_defaults_from_template() -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "r"},
          "spec": {"template": {"metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    apply_defaults(rc)
    assert (rc["spec"]["selector"], rc["metadata"]["labels"], rc["spec"]["replicas"]) == ({"app": "r"}, {"app": "r"}, 1)


def test_endpoints_secret_namespace_defaults() -> None:
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "127.0.0.2"}], "ports": [{"port": 80}]}]}
    apply_defaults(ep)
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    apply_defaults(secret)
    assert secret["type"] == "Opaque"
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}}
    apply_defaults(ns)
    assert ns == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
