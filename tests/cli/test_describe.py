"""kubectl describe layouts, compared as exact strings against the spec's observed samples (§7)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesvc.cli.describe import describe, join_descriptions, smart_label

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def store(*objs: dict[str, Any]):  # type: ignore[no-untyped-def]
    table = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}
    return lambda kind, ns, name: table.get((kind, ns, name))


WEB: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "fe", "app": "web"},
                 "annotations": {"example.com/owner": "team-a",
                                 "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    "spec": {
        "type": "NodePort", "selector": {"app": "web"}, "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
        "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"], "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9090, "nodePort": 31234, "protocol": "TCP"},
        ],
    },
}

WEB_EP: dict[str, Any] = {
    "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
    "subsets": [{
        "addresses": [{"ip": f"10.244.0.{i}"} for i in range(1, 6)],
        "notReadyAddresses": [{"ip": "10.244.0.9"}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9090, "protocol": "TCP"}],
    }],
}

DESCRIBE_WEB = """\
Name:                     web
Namespace:                default
Labels:                   app=web
                          tier=fe
Annotations:              example.com/owner: team-a
Selector:                 app=web
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.96.12.34
IPs:                      10.96.12.34
Port:                     http  80/TCP
TargetPort:               http/TCP
NodePort:                 http  30080/TCP
Endpoints:                10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 2 more...
Port:                     metrics  9090/TCP
TargetPort:               9090/TCP
NodePort:                 metrics  31234/TCP
Endpoints:                10.244.0.1:9090,10.244.0.2:9090,10.244.0.3:9090 + 2 more...
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"""


def test_describe_svc_web_matches_spec_sample() -> None:
    assert describe(WEB, lookup=store(WEB_EP), events=[], now=NOW) == DESCRIBE_WEB


LB: dict[str, Any] = {
    "kind": "Service",
    "metadata": {"name": "lb", "namespace": "default", "uid": "u-1"},
    "spec": {
        "type": "LoadBalancer", "selector": {"app": "web"}, "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
        "clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.50"], "externalIPs": ["192.0.2.10"],
        "ports": [{"port": 443, "targetPort": 8443, "nodePort": 30443, "protocol": "TCP"}],
        "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster",
        "healthCheckNodePort": 32001, "loadBalancerSourceRanges": ["10.0.0.0/8"],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7", "ipMode": "VIP"}, {"hostname": "lb.example.com"}]}},
}

LB_EVENTS = [
    {"type": "Normal", "reason": "EnsuredLoadBalancer", "source": {"component": "service-controller"},
     "message": "Ensured load balancer", "count": 3, "firstTimestamp": ts(minutes=5, seconds=1),
     "lastTimestamp": ts(seconds=36)},
    {"type": "Normal", "reason": "EnsuringLoadBalancer", "source": {"component": "service-controller"},
     "message": "Ensuring load balancer", "count": 1, "firstTimestamp": ts(seconds=41), "lastTimestamp": ts(seconds=41)},
]

DESCRIBE_LB_TAIL = """\
Type:                        LoadBalancer
IP Family Policy:            SingleStack
IP Families:                 IPv4
IP:                          10.96.0.50
IPs:                         10.96.0.50
External IPs:                192.0.2.10
LoadBalancer Ingress:        203.0.113.7 (VIP), lb.example.com
Port:                        <unset>  443/TCP
TargetPort:                  8443/TCP
NodePort:                    <unset>  30443/TCP
Endpoints:                   <none>
Session Affinity:            ClientIP
External Traffic Policy:     Local
Internal Traffic Policy:     Cluster
HealthCheck NodePort:        32001
LoadBalancer Source Ranges:  10.0.0.0/8
Events:
  Type    Reason                Age                 From                Message
  ----    ------                ----                ----                -------
  Normal  EnsuringLoadBalancer  41s                 service-controller  Ensuring load balancer
  Normal  EnsuredLoadBalancer   36s (x3 over 5m1s)  service-controller  Ensured load balancer
"""


def test_describe_svc_lb_matches_spec_sample() -> None:
    out = describe(LB, lookup=store(), events=LB_EVENTS, now=NOW)
    assert out.endswith(DESCRIBE_LB_TAIL)
    assert out.startswith("Name:                        lb\nNamespace:                   default\n"
                          "Labels:                      <none>\nAnnotations:                 <none>\n"
                          "Selector:                    app=web\n")


def endpoints_tweak(subsets: list[dict[str, Any]]) -> dict[str, Any]:
    ep = copy.deepcopy(WEB_EP)
    ep["subsets"] = subsets
    return ep


@pytest.mark.parametrize(
    "ep, line",
    [
        (None, "Endpoints:                <none>"),
        (endpoints_tweak([]), "Endpoints:                "),
        (endpoints_tweak([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]),
         "Endpoints:                "),
        (endpoints_tweak([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 8080}]}]),
         "Endpoints:                10.0.0.1:8080"),
    ],
)
def test_service_endpoints_line(ep: dict[str, Any] | None, line: str) -> None:
    lookup = store(ep) if ep else store()
    lines = describe(WEB, lookup=lookup, events=[], now=NOW).splitlines()
    assert lines[14] == line


def test_headless_and_external_name_service() -> None:
    headless = copy.deepcopy(WEB)
    headless["spec"].update(type="ClusterIP", clusterIP="None", clusterIPs=["None"], ports=[{"port": 80, "targetPort": 80, "protocol": "TCP"}])
    del headless["spec"]["externalTrafficPolicy"]
    lines = describe(headless, lookup=store(), events=None, now=NOW).splitlines()
    assert "IP:                       None" in lines and "IPs:                      None" in lines
    assert not any(line.startswith("External Traffic Policy") for line in lines)
    assert not any(line.startswith("Events") for line in lines)
    ext = {"kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
           "spec": {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}}
    assert describe(ext, lookup=store(), events=[], now=NOW) == (
        "Name:              ext\n"
        "Namespace:         default\n"
        "Labels:            <none>\n"
        "Annotations:       <none>\n"
        "Selector:          <none>\n"
        "Type:              ExternalName\n"
        "IP Families:       <none>\n"
        "IP:                \n"
        "IPs:               <none>\n"
        "External Name:     example.com\n"
        "Session Affinity:  None\n"
        "Events:            <none>\n"
    )


def test_long_and_multiline_annotations() -> None:
    svc = copy.deepcopy(WEB)
    svc["metadata"]["annotations"] = {"a": "x" * 150, "b": "one\ntwo\n", "c": "short"}
    lines = describe(svc, lookup=store(WEB_EP), events=None, now=NOW).splitlines()
    assert lines[4:11] == [
        "Annotations:              a:",
        "                            " + "x" * 138 + "...",
        "                          b:",
        "                            one",
        "                            two",
        "                          c: short",
        "Selector:                 app=web",
    ]


DESCRIBE_EP = """\
Name:         web
Namespace:    default
Labels:       <none>
Annotations:  <none>
Subsets:
  Addresses:          10.244.0.1,10.244.0.2,10.244.0.3,10.244.0.4,10.244.0.5
  NotReadyAddresses:  10.244.0.9
  Ports:
    Name     Port  Protocol
    ----     ----  --------
    http     8080  TCP
    metrics  9090  TCP

Events:  <none>
"""


def test_describe_endpoints_matches_spec_sample() -> None:
    assert describe(WEB_EP, lookup=store(), events=[], now=NOW) == DESCRIBE_EP


ING: dict[str, Any] = {
    "kind": "Ingress",
    "metadata": {"name": "site", "namespace": "default"},
    "spec": {
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["foo.example.com"], "secretName": "foo-tls"}],
        "rules": [
            {"host": "foo.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
                {"path": "/x", "pathType": "Exact", "backend": {"service": {"name": "nosuch", "port": {"number": 80}}}},
            ]}},
        ],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
}


def test_describe_ingress() -> None:
    assert describe(ING, lookup=store(WEB, WEB_EP), events=[], now=NOW) == (
        "Name:             site\n"
        "Labels:           <none>\n"
        "Namespace:        default\n"
        "Address:          127.0.0.1\n"
        "Ingress Class:    nginx\n"
        "Default backend:  <default>\n"
        "TLS:\n"
        "  foo-tls terminates foo.example.com\n"
        "Rules:\n"
        "  Host             Path  Backends\n"
        "  ----             ----  --------\n"
        "  foo.example.com  \n"
        "                   /    web:http (10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 2 more...)\n"
        "                   /x   nosuch:80 (<error: services \"nosuch\" not found>)\n"
        "Annotations:       <none>\n"
        "Events:            <none>\n"
    )


def test_describe_ingress_default_backend_only() -> None:
    ing = {"kind": "Ingress", "metadata": {"name": "d", "namespace": "default"},
           "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}
    lines = describe(ing, lookup=store(WEB), events=None, now=NOW).splitlines()
    assert lines[5] == "Default backend:  web:80 (<none>)"
    # the Rules table shares its tabwriter block with the Annotations line, as in kubectl
    assert lines[7:11] == [
        "  Host        Path  Backends", "  ----        ----  --------", "  *           *     web:80 (<none>)",
        "Annotations:  <none>",
    ]


POD: dict[str, Any] = {
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True, "uid": "rs"}]},
    "spec": {
        "priority": 0, "serviceAccountName": "default",
        "containers": [{
            "name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "args": ["-g", "daemon off;"],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"},
                               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
            "env": [{"name": "MODE", "value": "prod"}],
        }],
    },
    "status": {
        "phase": "Running", "podIP": "10.244.0.7", "podIPs": [{"ip": "10.244.0.7"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0, "containerID": "",
                               "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}],
    },
}


def test_describe_pod() -> None:
    assert describe(POD, lookup=store(), events=[], now=NOW) == (
        "Name:             web-1\n"
        "Namespace:        default\n"
        "Priority:         0\n"
        "Service Account:  default\n"
        "Node:             <none>\n"
        "Labels:           app=web\n"
        "Annotations:      <none>\n"
        "Status:           Running\n"
        "IP:               10.244.0.7\n"
        "IPs:\n"
        "  IP:           10.244.0.7\n"
        "Controlled By:  ReplicaSet/web-abc\n"
        "Containers:\n"
        "  nginx:\n"
        "    Container ID:  \n"
        "    Image:         nginx:1.25\n"
        "    Image ID:      \n"
        "    Port:          80/TCP\n"
        "    Host Port:     0/TCP\n"
        "    Args:\n"
        "      -g\n"
        "      daemon off;\n"
        "    State:          Waiting\n"
        "      Reason:       ContainerCreating\n"
        "    Ready:          True\n"
        "    Restart Count:  0\n"
        "    Readiness:      http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3\n"
        "    Environment:\n"
        "      MODE:  prod\n"
        "    Mounts:  <none>\n"
        "Conditions:\n"
        "  Type           Status\n"
        "  Ready          True \n"
        "Volumes:         <none>\n"
        "QoS Class:       BestEffort\n"
        "Node-Selectors:  <none>\n"
        "Tolerations:     <none>\n"
        "Events:          <none>\n"
    )


def test_describe_generic_and_join() -> None:
    cm = {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default", "uid": "abc",
                                                              "managedFields": [{}]},
          "spec": {"replicaCount": 2, "items": ["a", {"nestedKey": True}]}}
    text = describe(cm, lookup=store(), events=[], now=NOW)
    assert text == (
        "Name:         w\n"
        "Namespace:    default\n"
        "Labels:       <none>\n"
        "Annotations:  <none>\n"
        "API Version:  v1\n"
        "Kind:         Widget\n"
        "Metadata:\n"
        "  UID:  abc\n"
        "Spec:\n"
        "  Items:\n"
        "    a\n"
        "    Nested Key:   true\n"
        "  Replica Count:  2\n"
        "Events:           <none>\n"
    )
    assert join_descriptions(["a\n", "b\n"]) == "a\n\n\nb\n"


@pytest.mark.parametrize(
    "field, label",
    [("apiVersion", "API Version"), ("clusterIP", "Cluster IP"), ("uid", "UID"), ("creationTimestamp", "Creation Timestamp"),
     ("k8s.io/x", "k8s.io/x"), ("HTTPServer", "HTTP Server")],
)
def test_smart_label(field: str, label: str) -> None:
    assert smart_label(field) == label


def test_describe_namespace_and_configmap() -> None:
    ns = {"kind": "Namespace", "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}},
          "status": {"phase": "Active"}}
    assert describe(ns, lookup=store(), events=[], now=NOW) == (
        "Name:         default\n"
        "Labels:       kubernetes.io/metadata.name=default\n"
        "Annotations:  <none>\n"
        "Status:       Active\n"
        "\n"
        "No resource quota.\n"
        "\n"
        "No LimitRange resource.\n"
    )
    cm = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}}
    assert describe(cm, lookup=store(), events=[], now=NOW) == (
        "Name:         c\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n"
        "\nData\n====\nk:\n----\nv\n\n\nBinaryData\n====\n\nEvents:  <none>\n"
    )
