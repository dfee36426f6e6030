"""kubesvc.api.schema: unknown fields, Go decode errors and the schema files themselves."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubesvc.api import schema
from kubesvc.api.kinds import KINDS

SVC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "type": "ClusterIP",
    },
}

POD_SPEC: dict[str, Any] = {
    "containers": [
        {
            "name": "web",
            "image": "nginx",
            "command": ["nginx"],
            "args": ["-g", "daemon off;"],
            "workingDir": "/",
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 8080, "hostIP": "0.0.0.0"}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                {"name": "D", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cm"}}, {"prefix": "S_", "secretRef": {"name": "s"}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.25}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "initialDelaySeconds": 1, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
            "startupProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5},
            "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
        }
    ],
    "initContainers": [{"name": "init", "image": "busybox"}],
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "hostname": "web-0",
    "subdomain": "web",
    "nodeName": "local",
    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "cfg", "configMap": {"name": "cm"}}],
}

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}

# One valid object per kind, exercising the fields the brief names.
VALID: dict[str, dict[str, Any]] = {
    "Service": {
        **SVC,
        "spec": {
            **SVC["spec"],
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "internalTrafficPolicy": "Cluster",
            "externalIPs": ["192.0.2.1"],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}]}},
    },
    "Endpoints": {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web"},
        "subsets": [
            {
                "addresses": [
                    {"ip": "10.244.0.5", "hostname": "web-0", "nodeName": "local",
                     "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default", "uid": "u-1"}}
                ],
                "notReadyAddresses": [{"ip": "10.244.0.6"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
            }
        ],
    },
    "Pod": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "generateName": "web-",
            "labels": {"app": "web"},
            "annotations": {"a": "b"},
            "finalizers": ["x/y"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": True}],
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "time": "2024-01-01T00:00:00Z", "fieldsV1": {"f:spec": {}}}],
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "resourceVersion": "7",
            "generation": 1,
            "uid": "u-1",
        },
        "spec": POD_SPEC,
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "hostIP": "192.0.2.1",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
            "containerStatuses": [
                {"name": "web", "ready": True, "restartCount": 0, "image": "nginx", "imageID": "", "started": True,
                 "state": {"running": {"startedAt": "2024-01-01T00:00:01Z"}}}
            ],
            "startTime": "2024-01-01T00:00:00Z",
        },
    },
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes"]},
                  "status": {"phase": "Active"}},
    "ReplicationController": {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"app": "web"}, "template": TEMPLATE},
        "status": {"replicas": 2, "readyReplicas": 2, "observedGeneration": 1},
    },
    "ConfigMap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"},
                  "binaryData": {"b": "aGVsbG8="}, "immutable": True},
    "Secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="},
               "stringData": {"p": "plain"}, "immutable": False},
    "Event": {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1"},
        "involvedObject": {"kind": "Service", "name": "web", "namespace": "default", "apiVersion": "v1"},
        "reason": "Created",
        "message": "created",
        "source": {"component": "kubesvc", "host": "local"},
        "firstTimestamp": "2024-01-01T00:00:00Z",
        "lastTimestamp": "2024-01-01T00:00:00Z",
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "count": 1,
        "type": "Normal",
        "reportingComponent": "kubesvc",
        "reportingInstance": "local",
    },
    "Deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": TEMPLATE,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {"replicas": 3, "availableReplicas": 3, "observedGeneration": 2,
                   "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2024-01-01T00:00:00Z"}]},
    },
    "ReplicaSet": {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-1"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 1, "fullyLabeledReplicas": 1},
    },
    "Ingress": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ing"},
        "spec": {
            "ingressClassName": "kubesvc",
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
            "tls": [{"hosts": ["a.example"], "secretName": "cert"}],
            "rules": [
                {"host": "a.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
                    {"path": "/r", "pathType": "Exact", "backend": {"resource": {"apiGroup": "x.io", "kind": "B", "name": "b"}}},
                ]}}
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ports": [{"port": 80, "protocol": "TCP"}]}]}},
    },
    "IngressClass": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "kubesvc"},
        "spec": {"controller": "kubesvc.io/ingress",
                 "parameters": {"apiGroup": "x.io", "kind": "P", "name": "p", "scope": "Namespace", "namespace": "d"}},
    },
}


def _validator(kind: str) -> Any:
    """A jsonschema validator over the same files, refs resolved by ``referencing``."""
    import jsonschema
    from referencing import Registry, Resource

    resources = [
        (p.name, Resource.from_contents(json.loads(p.read_text())))
        for p in sorted(schema.SCHEMA_DIR.glob("*.json"))
    ]
    registry: Registry = Registry().with_resources(resources)
    k = next(k for k in KINDS if k.kind == kind)
    root = json.loads(schema.schema_file(k.api_version, kind).read_text())
    return jsonschema.Draft202012Validator(root, registry=registry)


def _tweak(base: dict[str, Any], fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    fn(obj)
    return obj


# --- the files ---------------------------------------------------------------------------------


def test_every_kind_has_a_schema_file() -> None:
    for k in KINDS:
        assert schema.schema_file(k.api_version, k.kind).is_file(), k.kind


def test_every_schema_file_is_draft_2020_12_and_every_ref_resolves() -> None:
    import jsonschema
    from referencing import Registry, Resource

    files = sorted(schema.SCHEMA_DIR.glob("*.json"))
    assert len(files) == len(KINDS) + 2  # one per kind, plus _defs.json and _pod.json
    resources = [(p.name, Resource.from_contents(json.loads(p.read_text()))) for p in files]
    registry: Registry = Registry().with_resources(resources)
    for name, resource in resources:
        doc = resource.contents
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(doc)
        resolver = registry.resolver(base_uri=name)
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if "$ref" in node:
                    assert node["$ref"].partition("#")[2].startswith("/$defs/") or node["$ref"].endswith("#")
                    resolver.lookup(node["$ref"])
                if node.get("type") == "object" and "properties" in node:
                    assert node["additionalProperties"] is False, node.get("title")
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)


def test_unknown_kind_raises_key_error() -> None:
    with pytest.raises(KeyError):
        schema.check({"apiVersion": "v1", "kind": "Deployment"})
    with pytest.raises(KeyError):
        schema.check({"apiVersion": "v1", "kind": "../v1.Service"})


# --- valid objects -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_object_is_clean(kind: str) -> None:
    obj = VALID[kind]
    report = schema.check(obj)
    assert report.unknown == []
    assert report.decode_errors == []
    assert schema.bad_request_message(obj, report) is None
    assert [e.message for e in _validator(kind).iter_errors(obj)] == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_minimal_object_is_clean(kind: str) -> None:
    obj = VALID[kind]
    assert schema.check({"apiVersion": obj["apiVersion"], "kind": kind, "metadata": {"name": "x"}}).clean


def test_null_and_integral_floats_decode_like_go() -> None:
    obj = _tweak(SVC, lambda o: o["spec"].update(ports=[{"port": 80.0, "targetPort": None, "nodePort": None}], selector=None))
    obj["metadata"]["creationTimestamp"] = None
    assert schema.check(obj).clean


# --- unknown fields ----------------------------------------------------------------------------

UNKNOWN_CASES = [
    ("top", lambda o: o.update(foo=1), ["foo"]),
    ("metadata", lambda o: o["metadata"].update(labelz={}), ["metadata.labelz"]),
    ("spec", lambda o: o["spec"].update(foo="x"), ["spec.foo"]),
    ("case-sensitive port field", lambda o: o["spec"]["ports"][0].update(nodeport=30000), ["spec.ports[0].nodeport"]),
    ("second port", lambda o: o["spec"]["ports"].append({"port": 81, "Port": 1}), ["spec.ports[1].Port"]),
    ("two, in document order", lambda o: (o["spec"]["ports"][0].update(x=1), o["spec"].update(y=2)),
     ["spec.ports[0].x", "spec.y"]),
    ("ownerReferences", lambda o: o["metadata"].update(ownerReferences=[{"name": "a", "bogus": 1}]),
     ["metadata.ownerReferences[0].bogus"]),
    ("status", lambda o: o.update(status={"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipmode": "VIP"}]}}),
     ["status.loadBalancer.ingress[0].ipmode"]),
    ("labels are a map", lambda o: o["metadata"]["labels"].update(anything="ok"), []),
]


@pytest.mark.parametrize(("case", "tweak", "expected"), UNKNOWN_CASES, ids=[c[0] for c in UNKNOWN_CASES])
def test_unknown_fields_in_a_service(case: str, tweak: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    report = schema.check(_tweak(SVC, tweak))
    assert report.unknown == expected
    assert report.decode_errors == []


DEEP_UNKNOWN = [
    ("Deployment", lambda o: o["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicyy="x"),
     "spec.template.spec.containers[0].imagePullPolicyy"),
    ("Deployment", lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxsurge=1), "spec.strategy.rollingUpdate.maxsurge"),
    ("Pod", lambda o: o["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(host2="x"),
     "spec.containers[0].readinessProbe.httpGet.host2"),
    ("Pod", lambda o: o["spec"]["containers"][0]["env"][1]["valueFrom"]["fieldRef"].update(path="x"),
     "spec.containers[0].env[1].valueFrom.fieldRef.path"),
    ("Pod", lambda o: o["spec"]["volumes"][0].update(emptydir={}), "spec.volumes[0].emptydir"),
    ("Pod", lambda o: o["status"]["containerStatuses"][0]["state"]["running"].update(since="x"),
     "status.containerStatuses[0].state.running.since"),
    ("Endpoints", lambda o: o["subsets"][0]["addresses"][0]["targetRef"].update(foo=1), "subsets[0].addresses[0].targetRef.foo"),
    ("Ingress", lambda o: o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"].update(num=1),
     "spec.rules[0].http.paths[0].backend.service.port.num"),
    ("IngressClass", lambda o: o["spec"].update(controllerName="x"), "spec.controllerName"),
    ("ConfigMap", lambda o: o.update(spec={}), "spec"),
    ("Secret", lambda o: o.update(stringdata={}), "stringdata"),
    ("Event", lambda o: o["source"].update(node="x"), "source.node"),
    ("Namespace", lambda o: o["spec"].update(x=1), "spec.x"),
    ("ReplicationController", lambda o: o["spec"].update(selector={"app": "web"}, matchLabels={}), "spec.matchLabels"),
    ("ReplicaSet", lambda o: o["spec"]["selector"].update(matchlabels={}), "spec.selector.matchlabels"),
]


@pytest.mark.parametrize(("kind", "tweak", "expected"), DEEP_UNKNOWN, ids=[f"{c[0]}:{c[2]}" for c in DEEP_UNKNOWN])
def test_unknown_fields_at_depth(kind: str, tweak: Callable[[dict[str, Any]], None], expected: str) -> None:
    report = schema.check(_tweak(VALID[kind], tweak))
    assert report.unknown == [expected]
    assert report.decode_errors == []


# --- decode errors -----------------------------------------------------------------------------

DECODE_CASES = [
    ("port string", "Service", lambda o: o["spec"]["ports"][0].update(port="80"),
     "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"),
    ("port float", "Service", lambda o: o["spec"]["ports"][0].update(port=80.5),
     "json: cannot unmarshal number 80.5 into Go struct field ServicePort.spec.ports.port of type int32"),
    ("port too big", "Service", lambda o: o["spec"]["ports"][0].update(nodePort=2**31),
     "json: cannot unmarshal number 2147483648 into Go struct field ServicePort.spec.ports.nodePort of type int32"),
    ("port bool", "Service", lambda o: o["spec"]["ports"][0].update(port=True),
     "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.port of type int32"),
    ("targetPort bool", "Service", lambda o: o["spec"]["ports"][0].update(targetPort=True),
     "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"),
    ("targetPort object", "Service", lambda o: o["spec"]["ports"][0].update(targetPort={}),
     "json: cannot unmarshal object into Go struct field ServicePort.spec.ports.targetPort of type int32"),
    ("protocol number", "Service", lambda o: o["spec"]["ports"][0].update(protocol=6),
     "json: cannot unmarshal number into Go struct field ServicePort.spec.ports.protocol of type v1.Protocol"),
    ("name object", "Service", lambda o: o["metadata"].update(name={"a": 1}),
     "json: cannot unmarshal object into Go struct field ObjectMeta.metadata.name of type string"),
    ("label value", "Service", lambda o: o["metadata"]["labels"].update(app=1),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
    ("labels list", "Service", lambda o: o["metadata"].update(labels=["a"]),
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    ("spec string", "Service", lambda o: o.update(spec="x"),
     "json: cannot unmarshal string into Go struct field Service.spec of type v1.ServiceSpec"),
    ("ports object", "Service", lambda o: o["spec"].update(ports={"port": 80}),
     "json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort"),
    ("port item string", "Service", lambda o: o["spec"].update(ports=["80"]),
     "json: cannot unmarshal string into Go struct field ServiceSpec.spec.ports of type v1.ServicePort"),
    ("type number", "Service", lambda o: o["spec"].update(type=1),
     "json: cannot unmarshal number into Go struct field ServiceSpec.spec.type of type v1.ServiceType"),
    ("selector list", "Service", lambda o: o["spec"].update(selector=[]),
     "json: cannot unmarshal array into Go struct field ServiceSpec.spec.selector of type map[string]string"),
    ("clusterIPs string", "Service", lambda o: o["spec"].update(clusterIPs="10.0.0.1"),
     "json: cannot unmarshal string into Go struct field ServiceSpec.spec.clusterIPs of type []string"),
    ("ipFamilies item", "Service", lambda o: o["spec"].update(ipFamilies=[4]),
     "json: cannot unmarshal number into Go struct field ServiceSpec.spec.ipFamilies of type v1.IPFamily"),
    ("bool field", "Service", lambda o: o["spec"].update(publishNotReadyAddresses="true"),
     "json: cannot unmarshal string into Go struct field ServiceSpec.spec.publishNotReadyAddresses of type bool"),
    ("timeoutSeconds", "Service", lambda o: o["spec"].update(sessionAffinityConfig={"clientIP": {"timeoutSeconds": "1"}}),
     "json: cannot unmarshal string into Go struct field ClientIPConfig.spec.sessionAffinityConfig.clientIP.timeoutSeconds of type int32"),
    ("uid", "Service", lambda o: o["metadata"].update(uid=1),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.uid of type types.UID"),
    ("generation", "Service", lambda o: o["metadata"].update(generation="1"),
     "json: cannot unmarshal string into Go struct field ObjectMeta.metadata.generation of type int64"),
    ("creationTimestamp number", "Service", lambda o: o["metadata"].update(creationTimestamp=1),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string"),
    ("creationTimestamp date only", "Service", lambda o: o["metadata"].update(creationTimestamp="2024-01-01"),
     'parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"'),
    ("immutable", "ConfigMap", lambda o: o.update(immutable="yes"),
     "json: cannot unmarshal string into Go struct field ConfigMap.immutable of type bool"),
    ("secret data", "Secret", lambda o: o["data"].update(k="not base64!"),
     "illegal base64 data at input byte 3"),
    ("secret data number", "Secret", lambda o: o["data"].update(k=1),
     "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"),
    ("secret type", "Secret", lambda o: o.update(type=1),
     "json: cannot unmarshal number into Go struct field Secret.type of type v1.SecretType"),
    ("replicas", "Deployment", lambda o: o["spec"].update(replicas="3"),
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("maxSurge bool", "Deployment", lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxSurge=False),
     "json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32"),
    ("containerPort", "Deployment", lambda o: o["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="80"),
     "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
    ("command string", "Pod", lambda o: o["spec"]["containers"][0].update(command="nginx"),
     "json: cannot unmarshal string into Go struct field Container.spec.containers.command of type []string"),
    ("grace period", "Pod", lambda o: o["spec"].update(terminationGracePeriodSeconds="30"),
     "json: cannot unmarshal string into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type int64"),
    ("quantity", "Pod", lambda o: o["spec"]["containers"][0]["resources"]["limits"].update(cpu="lots"),
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("quantity suffix", "Pod", lambda o: o["spec"]["containers"][0]["resources"]["limits"].update(memory="1Mii"),
     "unable to parse quantity's suffix"),
    ("pull policy", "Pod", lambda o: o["spec"]["containers"][0].update(imagePullPolicy=True),
     "json: cannot unmarshal bool into Go struct field Container.spec.containers.imagePullPolicy of type v1.PullPolicy"),
    ("phase", "Pod", lambda o: o["status"].update(phase=1),
     "json: cannot unmarshal number into Go struct field PodStatus.status.phase of type v1.PodPhase"),
    ("event count", "Event", lambda o: o.update(count="1"),
     "json: cannot unmarshal string into Go struct field Event.count of type int32"),
    ("event micro time", "Event", lambda o: o.update(eventTime="2024-01-01T00:00:00Z"),
     'parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"'),
    ("backend port number", "Ingress",
     lambda o: o["spec"]["defaultBackend"]["service"]["port"].update(number="80"),
     "json: cannot unmarshal string into Go struct field ServiceBackendPort.spec.defaultBackend.service.port.number of type int32"),
    ("pathType", "Ingress", lambda o: o["spec"]["rules"][0]["http"]["paths"][0].update(pathType=1),
     "json: cannot unmarshal number into Go struct field HTTPIngressPath.spec.rules.http.paths.pathType of type v1.PathType"),
    ("rc selector", "ReplicationController", lambda o: o["spec"].update(selector={"app": True}),
     "json: cannot unmarshal bool into Go struct field ReplicationControllerSpec.spec.selector of type string"),
    ("endpoint port", "Endpoints", lambda o: o["subsets"][0]["ports"][0].update(port="8080"),
     "json: cannot unmarshal string into Go struct field EndpointPort.subsets.ports.port of type int32"),
]


@pytest.mark.parametrize(("case", "kind", "tweak", "expected"), DECODE_CASES, ids=[c[0] for c in DECODE_CASES])
def test_decode_errors(case: str, kind: str, tweak: Callable[[dict[str, Any]], None], expected: str) -> None:
    report = schema.check(_tweak(VALID[kind], tweak))
    assert report.decode_errors == [expected]
    assert report.first_decode_error == expected


def test_all_decode_errors_in_order_and_the_one_go_reports() -> None:
    obj = _tweak(SVC, lambda o: o["spec"]["ports"][0].update(port="80", protocol=6, targetPort=[]))
    report = schema.check(obj)
    assert report.decode_errors == [  # document order: name, protocol, port, targetPort
        "json: cannot unmarshal number into Go struct field ServicePort.spec.ports.protocol of type v1.Protocol",
        "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32",
        "json: cannot unmarshal array into Go struct field ServicePort.spec.ports.targetPort of type int32",
    ]
    # A plain type error is saved and decoding goes on; IntOrString's UnmarshalJSON error stops
    # the decoder and is the one returned.
    assert report.first_decode_error == report.decode_errors[2]
    plain = schema.check(_tweak(SVC, lambda o: o["spec"]["ports"][0].update(port="80", protocol=6)))
    assert plain.first_decode_error == plain.decode_errors[0]
    assert plain.first_decode_error.endswith("spec.ports.protocol of type v1.Protocol")


# --- BadRequest texts --------------------------------------------------------------------------

MESSAGE_CASES = [
    (SVC, lambda o: o["spec"]["ports"][0].update(nodeport=30000),
     'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.ports[0].nodeport"'),
    (SVC, lambda o: (o["spec"].update(a=1), o["spec"].update(b=2)),
     'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.a", unknown field "spec.b"'),
    (SVC, lambda o: (o["spec"].update(a=1), o["spec"]["ports"][0].update(port="80")),
     'Service in version "v1" cannot be handled as a Service: '
     "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"),
    (VALID["Deployment"], lambda o: o["spec"].update(foo=1),
     'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.foo"'),
    (VALID["Ingress"], lambda o: o.update(foo=1),
     'Ingress in version "v1" cannot be handled as a Ingress: strict decoding error: unknown field "foo"'),
    (SVC, lambda o: None, None),
]


@pytest.mark.parametrize(("base", "tweak", "expected"), MESSAGE_CASES)
def test_bad_request_message(base: dict[str, Any], tweak: Callable[[dict[str, Any]], None], expected: str | None) -> None:
    obj = _tweak(base, tweak)
    assert schema.bad_request_message(obj, schema.check(obj)) == expected


def test_unknown_field_warnings() -> None:
    report = schema.check(_tweak(SVC, lambda o: o["spec"].update(foo=1)))
    assert schema.unknown_field_warnings(report) == ['unknown field "spec.foo"']


# --- drop_unknown ------------------------------------------------------------------------------


def test_drop_unknown_removes_only_unknown_fields_and_copies() -> None:
    obj = _tweak(VALID["Deployment"], lambda o: (
        o.update(extra=1),
        o["spec"].update(foo={"x": 1}),
        o["spec"]["template"]["spec"]["containers"][0].update(nodeport=1),
        o["metadata"]["labels"] if "labels" in o["metadata"] else o["metadata"].update(labels={"keep": "me"}),
    ))
    pruned = schema.drop_unknown(obj)
    assert pruned == VALID["Deployment"] | {"metadata": {"name": "web", "labels": {"keep": "me"}}}
    assert schema.check(pruned).clean
    pruned["spec"]["template"]["spec"]["containers"][0]["name"] = "changed"
    assert obj["spec"]["template"]["spec"]["containers"][0]["name"] == "web"
    assert "nodeport" in obj["spec"]["template"]["spec"]["containers"][0]


def test_drop_unknown_keeps_free_form_and_wrongly_typed_values() -> None:
    obj = _tweak(VALID["Pod"], lambda o: (o["spec"].update(nodeName=5), o.update(bogus=[1])))
    pruned = schema.drop_unknown(obj)
    assert "bogus" not in pruned
    assert pruned["spec"]["nodeName"] == 5
    assert pruned["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {}}


# --- Go's custom unmarshalers ------------------------------------------------------------------

QUANTITIES = [
    ("100m", None), ("1Gi", None), ("0.5", None), ("1e3", None), ("-1", None), ("+1.5E-3", None), ("0", None),
    ("1.", None), (".5", None), ("", schema.QUANTITY_FORMAT_WRONG), ("lots", schema.QUANTITY_FORMAT_WRONG),
    ("1 Gi", schema.QUANTITY_FORMAT_WRONG), ("true", schema.QUANTITY_FORMAT_WRONG),
    ("1Gb", schema.QUANTITY_FORMAT_WRONG), ("1KiB", schema.QUANTITY_FORMAT_WRONG), ("1e", schema.QUANTITY_SUFFIX),
    ("1mi", schema.QUANTITY_SUFFIX), ("1e+", schema.QUANTITY_SUFFIX), ("1E", None),
]


@pytest.mark.parametrize(("text", "expected"), QUANTITIES)
def test_parse_quantity_error(text: str, expected: str | None) -> None:
    assert schema.parse_quantity_error(text) == expected


TIMES = [
    ("2024-01-01T00:00:00Z", None),
    ("2024-01-01T00:00:00.123Z", None),
    ("2024-02-29T23:59:59+05:30", None),
    ("2024-01-01", 'parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"'),
    ("yesterday", 'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"'),
    ("2024-1-01T00:00:00Z", 'parsing time "2024-1-01T00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse "1-01T00:00:00Z" as "01"'),
    ("2024-13-01T00:00:00Z", 'parsing time "2024-13-01T00:00:00Z": month out of range'),
    ("2023-02-29T00:00:00Z", 'parsing time "2023-02-29T00:00:00Z": day out of range'),
    ("2024-01-01T24:00:00Z", 'parsing time "2024-01-01T24:00:00Z": hour out of range'),
    ("2024-01-01T00:00:00", 'parsing time "2024-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00"'),
    ("2024-01-01T00:00:00Zjunk", 'parsing time "2024-01-01T00:00:00Zjunk": extra text: "junk"'),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_go_time_error(text: str, expected: str | None) -> None:
    assert schema.go_time_error(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (b"", None), (b"YQ==", None), (b"YWI=", None), (b"YWJj", None), (b"YW\nJj", None),
    (b"YQ", 0), (b"YQ=", 3), (b"Y===", 1), (b"not base64!", 3), (b"YQ==YQ==", 4), (b"YWJjZA", 4),
])
def test_base64_error_at(text: bytes, expected: int | None) -> None:
    assert schema.base64_error_at(text) == expected


# --- speed -------------------------------------------------------------------------------------


def test_checking_a_service_is_fast() -> None:
    obj = VALID["Service"]
    schema.check(obj)
    start = time.perf_counter()
    for _ in range(1000):
        schema.check(obj)
    assert time.perf_counter() - start < 0.25  # about 15 us each; the budget is 1 ms


# --- what kubectl generates --------------------------------------------------------------------

# `kubectl run p --image=nginx --port=80 --dry-run=client -o json` (kubectl 1.32): `run` asks the
# server for discovery even with --dry-run=client, so offline its output is kept here verbatim.
KUBECTL_RUN_POD: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "p", "creationTimestamp": None, "labels": {"run": "p"}},
    "spec": {
        "containers": [{"name": "p", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    },
    "status": {},
}


def test_kubectl_run_output_is_clean() -> None:
    assert schema.check(KUBECTL_RUN_POD).clean
    assert [e.message for e in _validator("Pod").iter_errors(KUBECTL_RUN_POD)] == []


KUBECTL = shutil.which("kubectl")
KUBECTL_COMMANDS = [
    "create service clusterip web --tcp=80:8080",
    "create service clusterip headless --clusterip=None",
    "create service nodeport np --tcp=80:8080 --node-port=30080",
    "create service loadbalancer lb --tcp=443:8443 --tcp=80",
    "create service externalname ext --external-name=example.com --tcp=80",
    "create deployment web --image=nginx --port=80",
    "create deployment multi --image=nginx --image=busybox --replicas=3",
    "create configmap cm --from-literal=a=b --from-literal=c=d",
    "create secret generic s --from-literal=a=b --type=Opaque",
    "create secret docker-registry reg --docker-server=r.example --docker-username=u --docker-password=p",
    "create ingress ing --rule=foo.com/bar=svc1:8080,tls=my-cert --class=nginx",
    "create ingress simple --rule=foo.com/*=svc:http --default-backend=defsvc:80 --annotation=a=b",
    "create namespace ns",
]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
@pytest.mark.parametrize("command", KUBECTL_COMMANDS)
def test_kubectl_generated_objects_are_clean(command: str, tmp_path: Path) -> None:
    assert KUBECTL is not None
    proc = subprocess.run(
        [KUBECTL, *command.split(), "--dry-run=client", "-o", "json"],
        capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")},
    )
    if proc.returncode != 0:
        pytest.skip(f"kubectl needs a server for this command offline: {proc.stderr.strip()[:120]}")
    obj = json.loads(proc.stdout)
    report = schema.check(obj)
    assert report.unknown == [] and report.decode_errors == [], report
    assert [e.message for e in _validator(obj["kind"]).iter_errors(obj)] == []
