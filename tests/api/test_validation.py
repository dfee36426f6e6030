"""Semantic validation: one valid object per kind, one tweak per case, exact apiserver strings."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from kubesvc.api.validation import validate, validate_update

Obj = dict[str, Any]

DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QNAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
PORT_STRUCT = (
    'core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
    'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
)


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.20",
            "clusterIPs": ["10.96.0.20"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
        "status": {"loadBalancer": {}},
    }


def tweak(base: Callable[[], Obj], *changes: Callable[[Obj], Any]) -> Obj:
    obj = base()
    for change in changes:
        change(obj)
    return obj


def spec_set(**values: Any) -> Callable[[Obj], None]:
    return lambda o: o["spec"].update(values)


def port_set(i: int = 0, **values: Any) -> Callable[[Obj], None]:
    return lambda o: o["spec"]["ports"][i].update(values)


def headless(o: Obj) -> None:
    o["spec"].update(clusterIP="None", clusterIPs=["None"])


def external_name(o: Obj) -> None:
    for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
        o["spec"].pop(key)
    o["spec"].update(type="ExternalName", externalName="example.com")


def node_port(o: Obj) -> None:
    o["spec"].update(type="NodePort", externalTrafficPolicy="Cluster")


def load_balancer(o: Obj) -> None:
    o["spec"].update(type="LoadBalancer", externalTrafficPolicy="Cluster", allocateLoadBalancerNodePorts=True)


def two_ports(o: Obj) -> None:
    o["spec"]["ports"].append({"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443})


SERVICE_CASES: list[tuple[str, Obj, list[str]]] = [
    ("valid", service(), []),
    ("valid headless no ports", tweak(service, headless, spec_set(ports=[])), []),
    ("valid externalname", tweak(service, external_name), []),
    ("valid externalname trailing dot", tweak(service, external_name, spec_set(externalName="example.com.")), []),
    ("valid loopback externalIP (kubesvc)", tweak(service, spec_set(externalIPs=["127.0.0.5"], externalTrafficPolicy="Cluster")), []),
    ("valid clientip", tweak(service, spec_set(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86400}})), []),
    # row 1: metadata
    ("name required", tweak(service, lambda o: o["metadata"].pop("name")), ["metadata.name: Required value: name or generateName is required"]),
    ("name dns1035", tweak(service, lambda o: o["metadata"].update(name="1web")), [f'metadata.name: Invalid value: "1web": {DNS1035}']),
    ("name with dot", tweak(service, lambda o: o["metadata"].update(name="a.b")), [f'metadata.name: Invalid value: "a.b": {DNS1035}']),
    ("name too long", tweak(service, lambda o: o["metadata"].update(name="a" * 64)), [f'metadata.name: Invalid value: "{"a" * 64}": must be no more than 63 characters']),
    ("namespace required", tweak(service, lambda o: o["metadata"].pop("namespace")), ["metadata.namespace: Required value"]),
    ("namespace with dots", tweak(service, lambda o: o["metadata"].update(namespace="a.b")), ['metadata.namespace: Invalid value: "a.b": must not contain dots']),
    ("label key", tweak(service, lambda o: o["metadata"].update(labels={"-bad": "x"})), [f'metadata.labels: Invalid value: "-bad": {QNAME}']),
    ("label value", tweak(service, lambda o: o["metadata"].update(labels={"app": "a b"})), [f'metadata.labels: Invalid value: "a b": {LABEL_VALUE}']),
    ("label prefix empty", tweak(service, lambda o: o["metadata"].update(labels={"/x": "y"})), ['metadata.labels: Invalid value: "/x": prefix part must be non-empty']),
    ("annotations too big", tweak(service, lambda o: o["metadata"].update(annotations={"a": "x" * 262144})), ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
    # rows 2-7
    ("2 ports required", tweak(service, spec_set(ports=[])), ["spec.ports: Required value"]),
    ("3 headless nodeport", tweak(service, node_port, headless), ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort services']),
    ("3 headless lb", tweak(service, load_balancer, headless), ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for LoadBalancer services']),
    ("4 externalname clusterIPs", tweak(service, external_name, spec_set(clusterIP="10.96.0.5", clusterIPs=["10.96.0.5"])), ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
    ("5 externalname families", tweak(service, external_name, spec_set(ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack")), ["spec.ipFamilies: Forbidden: may not be set for ExternalName services", "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"]),
    ("6 externalname required", tweak(service, external_name, spec_set(externalName=".")), ["spec.externalName: Required value"]),
    ("7 externalname invalid", tweak(service, external_name, spec_set(externalName="Bad_Name")), [f'spec.externalName: Invalid value: "Bad_Name": {DNS1123_SUBDOMAIN}']),
    # rows 8-15: ports
    ("8 port name required", tweak(service, two_ports, port_set(0, name="")), ["spec.ports[0].name: Required value"]),
    ("9 port name label", tweak(service, port_set(0, name="HTTP")), [f'spec.ports[0].name: Invalid value: "HTTP": {DNS1123_LABEL}']),
    ("9 port name dots", tweak(service, port_set(0, name="a.b")), ['spec.ports[0].name: Invalid value: "a.b": must not contain dots']),
    ("10 port name duplicate", tweak(service, two_ports, port_set(1, name="http")), ['spec.ports[1].name: Duplicate value: "http"']),
    ("11 port zero", tweak(service, port_set(0, port=0)), ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("12 protocol required", tweak(service, port_set(0, protocol="")), ["spec.ports[0].protocol: Required value"]),
    ("12 protocol unsupported", tweak(service, port_set(0, protocol="HTTP")), ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("13 targetPort range", tweak(service, port_set(0, targetPort=70000)), ["spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ("14 targetPort charset", tweak(service, port_set(0, targetPort="Web_Port")), ['spec.ports[0].targetPort: Invalid value: "Web_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)']),
    ("14 targetPort rules", tweak(service, port_set(0, targetPort="-a--very-long-name-1")), [
        'spec.ports[0].targetPort: Invalid value: "-a--very-long-name-1": must be no more than 15 characters',
        'spec.ports[0].targetPort: Invalid value: "-a--very-long-name-1": must not contain consecutive hyphens',
        'spec.ports[0].targetPort: Invalid value: "-a--very-long-name-1": must not begin or end with a hyphen',
    ]),
    ("14 targetPort letter", tweak(service, port_set(0, targetPort="123")), ['spec.ports[0].targetPort: Invalid value: "123": must contain at least one letter (a-z)']),
    ("15 appProtocol", tweak(service, port_set(0, appProtocol="a/b/c")), [
        "spec.ports[0].appProtocol: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    ]),
    # rows 16-20
    ("16 selector", tweak(service, spec_set(selector={"app": "a b"})), [f'spec.selector: Invalid value: "a b": {LABEL_VALUE}']),
    ("17 affinity required", tweak(service, spec_set(sessionAffinity="")), ["spec.sessionAffinity: Required value"]),
    ("17 affinity unsupported", tweak(service, spec_set(sessionAffinity="Sticky")), ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']),
    ("18 clientip config", tweak(service, spec_set(sessionAffinity="ClientIP")), ["spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP"]),
    ("18 clientip timeout nil", tweak(service, spec_set(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {}})), ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Required value: when session affinity type is ClientIP"]),
    ("19 timeout range", tweak(service, spec_set(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}})), ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"]),
    ("20 config with None", tweak(service, spec_set(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}})), ["spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"]),
    # rows 21-29: clusterIPs and families
    ("21 clusterIPs required", tweak(service, spec_set(clusterIPs=[])), ["spec.clusterIPs: Required value"]),
    ("22 first must match", tweak(service, spec_set(clusterIPs=["10.96.0.21"])), ['spec.clusterIPs: Invalid value: []string{"10.96.0.21"}: first value must match `clusterIP`']),
    ("23 must be empty", tweak(service, spec_set(clusterIP="")), ['spec.clusterIPs: Invalid value: []string{"10.96.0.20"}: must be empty when `clusterIP` is not specified']),
    ("24 family unsupported", tweak(service, spec_set(ipFamilies=["IPv5"])), ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"']),
    ("24 family duplicate", tweak(service, spec_set(ipFamilies=["IPv4", "IPv4"])), ['spec.ipFamilies[1]: Duplicate value: "IPv4"']),
    ("25 policy", tweak(service, spec_set(ipFamilyPolicy="Foo")), ['spec.ipFamilyPolicy: Unsupported value: "Foo": supported values: "PreferDualStack", "RequireDualStack", "SingleStack"']),
    ("26 None not alone", tweak(service, spec_set(clusterIP="None", clusterIPs=["None", "10.96.0.1"])), ['spec.clusterIPs: Invalid value: []string{"None", "10.96.0.1"}: \'None\' must be the first and only value']),
    ("27 not an IP", tweak(service, spec_set(clusterIP="1.2.3", clusterIPs=["1.2.3"])), [f'spec.clusterIPs[0]: Invalid value: "1.2.3": {IP}']),
    ("28 too many", tweak(service, spec_set(clusterIPs=["10.96.0.20", "fd00::1", "10.96.0.3"])), [
        'spec.clusterIPs: Invalid value: []string{"10.96.0.20", "fd00::1", "10.96.0.3"}: may only hold up to 2 values',
        'spec.clusterIPs: Invalid value: []string{"10.96.0.20", "fd00::1", "10.96.0.3"}: may specify no more than one IP for each IP family',
    ]),
    ("28 same family", tweak(service, spec_set(clusterIPs=["10.96.0.20", "10.96.0.3"])), ['spec.clusterIPs: Invalid value: []string{"10.96.0.20", "10.96.0.3"}: may specify no more than one IP for each IP family']),
    ("29 family mismatch", tweak(service, spec_set(clusterIP="fd00::1", clusterIPs=["fd00::1"])), ['spec.clusterIPs[0]: Invalid value: "fd00::1": expected an IPv4 value as indicated by `ipFamilies[0]`']),
    # rows 30-31: externalIPs
    ("30 externalIP invalid", tweak(service, spec_set(externalIPs=["x"], externalTrafficPolicy="Cluster")), [f'spec.externalIPs[0]: Invalid value: "x": {IP}']),
    ("31 unspecified", tweak(service, spec_set(externalIPs=["0.0.0.0"], externalTrafficPolicy="Cluster")), ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)']),
    ("31 link-local", tweak(service, spec_set(externalIPs=["169.254.1.1"], externalTrafficPolicy="Cluster")), ['spec.externalIPs[0]: Invalid value: "169.254.1.1": may not be in the link-local range (169.254.0.0/16, fe80::/10)']),
    ("31 link-local multicast", tweak(service, spec_set(externalIPs=["224.0.0.5"], externalTrafficPolicy="Cluster")), ['spec.externalIPs[0]: Invalid value: "224.0.0.5": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)']),
    # rows 32-35
    ("32 type required", tweak(service, spec_set(type="")), ["spec.type: Required value"]),
    ("32 type unsupported", tweak(service, spec_set(type="Foo")), ['spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']),
    ("33 nodePort on ClusterIP", tweak(service, port_set(0, nodePort=30080)), ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("34 nodePort duplicate", tweak(service, node_port, two_ports, port_set(0, nodePort=30080), port_set(1, nodePort=30080)), ["spec.ports[1].nodePort: Duplicate value: 30080"]),
    ("34 nodePort shared across protocols", tweak(service, node_port, two_ports, port_set(0, nodePort=30080), port_set(1, nodePort=30080, protocol="UDP")), []),
    ("35 port duplicate", tweak(service, two_ports, port_set(1, port=80)), [f"spec.ports[1]: Duplicate value: {PORT_STRUCT}"]),
    # rows 36-40
    ("36 source ranges not LB", tweak(service, spec_set(loadBalancerSourceRanges=["10.0.0.0/8"])), ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"]),
    ("37 source range CIDR", tweak(service, load_balancer, spec_set(loadBalancerSourceRanges=[" 10.0.0/8 "])), ['spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0/8": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']),
    ("37 source range padded ok", tweak(service, load_balancer, spec_set(loadBalancerSourceRanges=[" 10.0.0.0/8"])), []),
    ("38 allocate not LB", tweak(service, spec_set(allocateLoadBalancerNodePorts=True)), ["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"]),
    ("39 allocate nil on LB", tweak(service, load_balancer, lambda o: o["spec"].pop("allocateLoadBalancerNodePorts")), ["allocateLoadBalancerNodePorts: Required value"]),
    ("40 lb class not LB", tweak(service, spec_set(loadBalancerClass="example.com/lb")), ["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"]),
    ("40 lb class syntax", tweak(service, load_balancer, spec_set(loadBalancerClass="-x")), [f'spec.loadBalancerClass: Invalid value: "-x": {QNAME}']),
    # rows 41-45
    ("41 etp not accessible", tweak(service, spec_set(externalTrafficPolicy="Cluster")), ['spec.externalTrafficPolicy: Invalid value: "Cluster": may only be set for externally-accessible services']),
    ("42 etp required", tweak(service, node_port, spec_set(externalTrafficPolicy="")), ["spec.externalTrafficPolicy: Required value"]),
    ("42 etp unsupported", tweak(service, node_port, spec_set(externalTrafficPolicy="Foo")), ['spec.externalTrafficPolicy: Unsupported value: "Foo": supported values: "Cluster", "Local"']),
    ("43 hcnp not needed", tweak(service, node_port, spec_set(healthCheckNodePort=30000)), ["spec.healthCheckNodePort: Invalid value: 30000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"]),
    ("43 hcnp required", tweak(service, load_balancer, spec_set(externalTrafficPolicy="Local")), ["spec.healthCheckNodePort: Required value"]),
    ("44 itp required", tweak(service, lambda o: o["spec"].pop("internalTrafficPolicy")), ["spec.internalTrafficPolicy: Required value"]),
    ("44 itp unsupported", tweak(service, spec_set(internalTrafficPolicy="Foo")), ['spec.internalTrafficPolicy: Unsupported value: "Foo": supported values: "Cluster", "Local"']),
    ("45 traffic distribution", tweak(service, spec_set(trafficDistribution="X")), ['spec.trafficDistribution: Unsupported value: "X": supported values: "PreferClose"']),
    # several errors together, in order
    ("order", tweak(service, two_ports, port_set(0, name=""), port_set(1, name="", port=0), spec_set(type="Foo")), [
        "spec.ports[0].name: Required value",
        "spec.ports[1].name: Required value",
        "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ]),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES])
def test_service(obj: Obj, expected: list[str]) -> None:
    assert [str(e) for e in validate(obj)] == expected


# --- Service updates (§3.3) ---------------------------------------------------------------------

UPDATE_CASES: list[tuple[str, Obj, list[str]]] = [
    ("unchanged", service(), []),
    ("clusterIP changed", tweak(service, spec_set(clusterIP="10.96.0.99", clusterIPs=["10.96.0.99"])), ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.99"}: may not change once set']),
    ("to headless", tweak(service, headless), ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set']),
    ("to externalname", tweak(service, external_name), []),
    ("primary unset", tweak(service, spec_set(clusterIP=""), lambda o: o["spec"].pop("clusterIPs")), ["spec.clusterIPs[0]: Invalid value: []string(nil): primary clusterIP can not be unset"]),
    ("name immutable", tweak(service, lambda o: o["metadata"].update(name="other")), ['metadata.name: Invalid value: "other": field is immutable']),
    ("uid immutable", tweak(service, lambda o: o["metadata"].update(uid="u2")), ['metadata.uid: Invalid value: "u2": field is immutable']),
    ("family changed", tweak(service, spec_set(ipFamilies=["IPv6"])), [
        'spec.ipFamilies[0]: Invalid value: []core.IPFamily{"IPv6"}: may not change once set',
        'spec.clusterIPs[0]: Invalid value: "10.96.0.20": expected an IPv6 value as indicated by `ipFamilies[0]`',
    ]),
]


@pytest.mark.parametrize(("new", "expected"), [c[1:] for c in UPDATE_CASES], ids=[c[0] for c in UPDATE_CASES])
def test_service_update(new: Obj, expected: list[str]) -> None:
    old = service()
    old["metadata"]["uid"] = "u1"
    new["metadata"].setdefault("uid", "u1")
    assert [str(e) for e in validate_update(new, old)] == expected


def test_service_update_lb_class_and_health_check() -> None:
    old = tweak(service, load_balancer, spec_set(loadBalancerClass="a.io/x", externalTrafficPolicy="Local", healthCheckNodePort=30001))
    new = copy.deepcopy(old)
    new["spec"].update(loadBalancerClass="a.io/y", healthCheckNodePort=30002)
    assert [str(e) for e in validate_update(new, old)] == [
        'spec.loadBalancerClass: Invalid value: "a.io/y": may not change once set',
        "spec.healthCheckNodePort: Forbidden: field is immutable",
    ]


def test_service_update_release_secondary_requires_single_stack() -> None:
    old = tweak(service, spec_set(clusterIPs=["10.96.0.20", "fd00::20"], ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack"))
    new = tweak(service, spec_set(ipFamilyPolicy="PreferDualStack"))
    assert [str(e) for e in validate_update(new, old)] == [
        "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary clusterIP",
        "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary ipFamily",
    ]


# --- Endpoints (§5.1) -----------------------------------------------------------------------------


def endpoints() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "127.244.0.5"}], "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
    }


def subset_set(**values: Any) -> Callable[[Obj], None]:
    return lambda o: o["subsets"][0].update(values)


ENDPOINTS_CASES: list[tuple[str, Obj, list[str]]] = [
    ("valid loopback (kubesvc)", endpoints(), []),
    ("no addresses", tweak(endpoints, subset_set(addresses=[])), ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]),
    ("bad ip", tweak(endpoints, subset_set(addresses=[{"ip": "x"}])), [f'subsets[0].addresses[0].ip: Invalid value: "x": {IP}', 'subsets[0].addresses[0].ip: Invalid value: "x": must be a valid IP address']),
    ("unspecified", tweak(endpoints, subset_set(notReadyAddresses=[{"ip": "0.0.0.0"}])), ['subsets[0].notReadyAddresses[0].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)']),
    ("link-local v6", tweak(endpoints, subset_set(addresses=[{"ip": "fe80::1"}])), ['subsets[0].addresses[0].ip: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)']),
    ("hostname", tweak(endpoints, subset_set(addresses=[{"ip": "10.0.0.1", "hostname": "A"}])), [f'subsets[0].addresses[0].hostname: Invalid value: "A": {DNS1123_LABEL}']),
    ("port name required", tweak(endpoints, subset_set(ports=[{"port": 1, "protocol": "TCP"}, {"name": "b", "port": 2, "protocol": "TCP"}])), ["subsets[0].ports[0].name: Required value"]),
    ("port range", tweak(endpoints, subset_set(ports=[{"port": 0, "protocol": "TCP"}])), ["subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("name subdomain ok", tweak(endpoints, lambda o: o["metadata"].update(name="a.b")), []),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in ENDPOINTS_CASES], ids=[c[0] for c in ENDPOINTS_CASES])
def test_endpoints(obj: Obj, expected: list[str]) -> None:
    assert [str(e) for e in validate(obj)] == expected


# --- Pods and controllers --------------------------------------------------------------------------


def pod_spec() -> Obj:
    return {
        "containers": [
            {"name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}
        ],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    }


def pod() -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}}, "spec": pod_spec()}


def ctr_set(**values: Any) -> Callable[[Obj], None]:
    return lambda o: o["spec"]["containers"][0].update(values)


def cport_set(**values: Any) -> Callable[[Obj], None]:
    return lambda o: o["spec"]["containers"][0]["ports"][0].update(values)


POD_CASES: list[tuple[str, Obj, list[str]]] = [
    ("valid", pod(), []),
    ("valid status ip", tweak(pod, lambda o: o.update(status={"podIP": "127.244.0.9"})), []),
    ("containers required", tweak(pod, spec_set(containers=[])), ["spec.containers: Required value"]),
    ("container name", tweak(pod, ctr_set(name="Web")), [f'spec.containers[0].name: Invalid value: "Web": {DNS1123_LABEL}']),
    ("container duplicate", tweak(pod, lambda o: o["spec"]["containers"].append({"name": "web", "image": "x", "imagePullPolicy": "Always"})), ['spec.containers[1].name: Duplicate value: "web"']),
    ("image required", tweak(pod, ctr_set(image="")), ["spec.containers[0].image: Required value"]),
    ("containerPort range", tweak(pod, cport_set(containerPort=70000)), ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ("containerPort required", tweak(pod, cport_set(containerPort=0)), ["spec.containers[0].ports[0].containerPort: Required value"]),
    ("port name", tweak(pod, cport_set(name="http_x")), ['spec.containers[0].ports[0].name: Invalid value: "http_x": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)']),
    ("port protocol", tweak(pod, cport_set(protocol="HTTP")), ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("restartPolicy", tweak(pod, spec_set(restartPolicy="Sometimes")), ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']),
    ("podIP", tweak(pod, lambda o: o.update(status={"podIP": "1.2.3"})), [f'status.podIPs[0]: Invalid value: "1.2.3": {IP}']),
    ("name subdomain", tweak(pod, lambda o: o["metadata"].update(name="web_1")), [f'metadata.name: Invalid value: "web_1": {DNS1123_SUBDOMAIN}']),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in POD_CASES], ids=[c[0] for c in POD_CASES])
def test_pod(obj: Obj, expected: list[str]) -> None:
    assert [str(e) for e in validate(obj)] == expected


def test_pod_update_only_image_may_change() -> None:
    old = pod()
    assert validate_update(tweak(pod, ctr_set(image="nginx:1.28")), old) == []
    errs = [str(e) for e in validate_update(tweak(pod, cport_set(containerPort=81)), old)]
    assert errs and errs[0].startswith("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`")


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
        },
    }


def rc() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"app": "web"}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}},
    }


CONTROLLER_CASES: list[tuple[str, Obj, list[str]]] = [
    ("deploy valid", deployment(), []),
    ("deploy negative replicas", tweak(deployment, spec_set(replicas=-1)), ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("deploy selector required", tweak(deployment, lambda o: o["spec"].pop("selector")), ["spec.selector: Required value"]),
    ("deploy selector mismatch", tweak(deployment, spec_set(selector={"matchLabels": {"app": "x"}})), ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`']),
    ("deploy selector expressions", tweak(deployment, spec_set(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]})), []),
    ("deploy template spec", tweak(deployment, lambda o: o["spec"]["template"]["spec"].update(containers=[])), ["spec.template.spec.containers: Required value"]),
    ("deploy template restart", tweak(deployment, lambda o: o["spec"]["template"]["spec"].update(restartPolicy="Never")), ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    ("rc valid", rc(), []),
    ("rc mismatch", tweak(rc, spec_set(selector={"app": "x"})), ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`']),
    ("rc selector required", tweak(rc, spec_set(selector={})), ["spec.selector: Required value"]),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CONTROLLER_CASES], ids=[c[0] for c in CONTROLLER_CASES])
def test_controllers(obj: Obj, expected: list[str]) -> None:
    assert [str(e) for e in validate(obj)] == expected


def test_deployment_selector_immutable() -> None:
    new = tweak(deployment, spec_set(selector={"matchLabels": {"app": "web", "v": "2"}}), lambda o: o["spec"]["template"]["metadata"]["labels"].update(v="2"))
    assert [str(e) for e in validate_update(new, deployment())] == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'
    ]


# --- Ingress, IngressClass, ConfigMap, Secret, Namespace ------------------------------------------


def ingress() -> Obj:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"rules": [{"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]},
    }


def path_set(**values: Any) -> Callable[[Obj], None]:
    return lambda o: o["spec"]["rules"][0]["http"]["paths"][0].update(values)


P = "spec.rules[0].http.paths[0]"
INGRESS_CASES: list[tuple[str, Obj, list[str]]] = [
    ("valid", ingress(), []),
    ("no rules", tweak(ingress, spec_set(rules=[])), ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]),
    ("host ip", tweak(ingress, lambda o: o["spec"]["rules"][0].update(host="1.2.3.4")), ['spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address']),
    ("bare wildcard", tweak(ingress, lambda o: o["spec"]["rules"][0].update(host="*")), [
        "spec.rules[0].host: Invalid value: \"*\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    ]),
    ("paths required", tweak(ingress, lambda o: o["spec"]["rules"][0].update(http={"paths": []})), ["spec.rules[0].http.paths: Required value"]),
    ("pathType required", tweak(ingress, lambda o: o["spec"]["rules"][0]["http"]["paths"][0].pop("pathType")), [f"{P}.pathType: Required value: pathType must be specified"]),
    ("pathType unsupported", tweak(ingress, path_set(pathType="Regex")), [f'{P}.pathType: Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"']),
    ("relative path", tweak(ingress, path_set(path="api")), [f'{P}.path: Invalid value: "api": must be an absolute path']),
    ("bad sequence", tweak(ingress, path_set(path="/a//b/..")), [f"{P}.path: Invalid value: \"/a//b/..\": must not contain '//'", f"{P}.path: Invalid value: \"/a//b/..\": cannot end with '/..'"]),
    ("implementation specific regex ok", tweak(ingress, path_set(path="/api(/|$)(.*)", pathType="ImplementationSpecific")), []),
    ("both backends", tweak(ingress, path_set(backend={"service": {"name": "web", "port": {"number": 80}}, "resource": {"kind": "B", "name": "b"}})), [f'{P}.backend: Invalid value: "": cannot set both resource and service backends']),
    ("port name and number", tweak(ingress, path_set(backend={"service": {"name": "web", "port": {"number": 80, "name": "http"}}})), [f'{P}.backend: Invalid value: "": cannot set both port name & port number']),
    ("no port", tweak(ingress, path_set(backend={"service": {"name": "web", "port": {}}})), [f"{P}.backend: Required value: port name or number is required"]),
    ("service name", tweak(ingress, path_set(backend={"service": {"name": "Web", "port": {"number": 80}}})), [f'{P}.backend.service.name: Invalid value: "Web": {DNS1035}']),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in INGRESS_CASES], ids=[c[0] for c in INGRESS_CASES])
def test_ingress(obj: Obj, expected: list[str]) -> None:
    assert [str(e) for e in validate(obj)] == expected


def ingress_class() -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "kubesvc"}, "spec": {"controller": "kubesvc.io/ingress"}}


def config_map() -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"}, "data": {"a.conf": "x"}}


def namespace() -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes"]}}


OTHER_CASES: list[tuple[str, Obj, list[str]]] = [
    ("class valid", ingress_class(), []),
    ("class controller required", tweak(ingress_class, spec_set(controller="")), ["spec.controller: Required value"]),
    ("class controller path", tweak(ingress_class, spec_set(controller="kubesvc")), ['spec.controller: Invalid value: "kubesvc": must be a domain-prefixed path (such as "acme.io/foo")']),
    ("class namespaced", tweak(ingress_class, lambda o: o["metadata"].update(namespace="default")), ["metadata.namespace: Forbidden: not allowed on this type"]),
    ("cm valid", config_map(), []),
    ("cm key", tweak(config_map, lambda o: o["data"].update({"a b": "x"})), ["data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
    ("cm dotdot", tweak(config_map, lambda o: o["data"].update({"..x": "x"})), ["data[..x]: Invalid value: \"..x\": must not start with '..'"]),
    ("cm too big", tweak(config_map, lambda o: o["data"].update(big="x" * (1024 * 1024))), ["[]: Too long: may not be more than 1048576 bytes"]),
    ("ns valid", namespace(), []),
    ("ns name dots", tweak(namespace, lambda o: o["metadata"].update(name="a.b")), ['metadata.name: Invalid value: "a.b": must not contain dots']),
    ("ns name", tweak(namespace, lambda o: o["metadata"].update(name="Dev")), [f'metadata.name: Invalid value: "Dev": {DNS1123_LABEL}']),
    ("secret tls keys", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls", "data": {}}, ["data[tls.crt]: Required value", "data[tls.key]: Required value"]),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_other_kinds(obj: Obj, expected: list[str]) -> None:
    assert [str(e) for e in validate(obj)] == expected


def test_ingress_class_controller_immutable() -> None:
    new = tweak(ingress_class, spec_set(controller="kubesvc.io/other"))
    assert [str(e) for e in validate_update(new, ingress_class())] == [
        'spec.controller: Invalid value: "kubesvc.io/other": field is immutable'
    ]
