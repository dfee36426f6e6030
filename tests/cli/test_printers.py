"""Table printing, AGE, tabwriter and the -o formats, compared as exact strings (spec §6)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesvc.api import tables
from kubesvc.cli.printers import (
    render_custom_columns,
    render_json,
    render_jsonpath,
    render_name,
    render_tables,
    render_yaml,
    tabwrite,
)
from kubesvc.errors import ClientError

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def svc(name: str, type_: str, cluster_ips: list[str], ports: list[dict[str, Any]], created: str,
        selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": {"type": type_, "clusterIPs": cluster_ips, "ports": ports, **spec},
    }
    if selector:
        obj["spec"]["selector"] = selector
    return obj


def sample_services() -> list[dict[str, Any]]:
    lb = svc("lb", "LoadBalancer", ["10.96.0.50"], [{"port": 443, "nodePort": 30443, "protocol": "TCP"}],
             ts(seconds=51), {"app": "web"}, externalIPs=["192.0.2.10"])
    lb["status"] = {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "203.0.113.7"}]}}
    return [
        svc("db", "ClusterIP", ["None"], [{"port": 5432, "protocol": "TCP"}], ts(days=9), {"app": "db"}),
        svc("ext", "ExternalName", [], [], ts(minutes=6, seconds=41), externalName="example.com"),
        svc("kubernetes", "ClusterIP", ["10.96.0.1"], [{"port": 443, "protocol": "TCP"}], ts(days=30)),
        lb,
        svc("web", "NodePort", ["10.96.12.34"],
            [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 9090, "nodePort": 31234, "protocol": "TCP"}],
            ts(hours=3, minutes=2), {"app": "web"}),
    ]


# ------------------------------------------------------------------------------------ AGE (§6.5)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (-3, "<invalid>"), (-2, "<invalid>"), (-1.5, "0s"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"),
        (120, "2m"), (182, "3m2s"), (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"), (3 * 3600 + 120, "3h2m"), (8 * 3600 - 1, "7h59m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
        (48 * 3600, "2d"), (51 * 3600, "2d3h"), (8 * 86400 - 3600, "7d23h"), (8 * 86400, "8d"),
        (729 * 86400, "729d"), (730 * 86400, "2y"), (735 * 86400, "2y5d"), (8 * 365 * 86400, "8y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_age_missing_timestamp_is_unknown() -> None:
    assert tables.age(None, NOW) == "<unknown>"
    assert tables.age("", NOW) == "<unknown>"
    assert tables.age(ts(hours=3, minutes=2), NOW) == "3h2m"


# -------------------------------------------------------------------------------- get svc (§6.2)


def test_get_svc_wide_matches_spec_sample() -> None:
    expected = (
        "NAME         TYPE           CLUSTER-IP    EXTERNAL-IP                             PORT(S)                       AGE     SELECTOR\n"
        "db           ClusterIP      None          <none>                                  5432/TCP                      9d      app=db\n"
        "ext          ExternalName   <none>        example.com                             <none>                        6m41s   <none>\n"
        "kubernetes   ClusterIP      10.96.0.1     <none>                                  443/TCP                       30d     <none>\n"
        "lb           LoadBalancer   10.96.0.50    203.0.113.7,lb.example.com,192.0.2.10   443:30443/TCP                 51s     app=web\n"
        "web          NodePort       10.96.12.34   <none>                                  80:30080/TCP,9090:31234/TCP   3h2m    app=web\n"
    )
    assert render_tables([("Service", sample_services())], now=NOW, wide=True) == expected


def test_get_svc_narrow_hides_selector() -> None:
    out = render_tables([("Service", sample_services()[:1])], now=NOW)
    assert out == (
        "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)    AGE\n"
        "db     ClusterIP   None         <none>        5432/TCP   9d\n"
    )


BASE = svc("web", "ClusterIP", ["10.96.0.10"], [{"port": 80, "protocol": "TCP"}], ts(minutes=5))


def tweak(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    cur = obj
    keys = path.split(".")
    for k in keys[:-1]:
        cur = cur.setdefault(k, {})
    cur[keys[-1]] = value
    return obj


@pytest.mark.parametrize(
    "path, value, cells",
    [
        ("spec.externalIPs", ["1.2.3.4", "5.6.7.8"], ("ClusterIP", "10.96.0.10", "1.2.3.4,5.6.7.8", "80/TCP")),
        ("spec.type", "LoadBalancer", ("LoadBalancer", "10.96.0.10", "<pending>", "80/TCP")),
        ("spec.ports", [], ("ClusterIP", "10.96.0.10", "<none>", "<none>")),
        ("spec.ports", [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP", "nodePort": 30053}],
         ("ClusterIP", "10.96.0.10", "<none>", "53/UDP,53:30053/TCP")),
        ("spec.type", "Weird", ("Weird", "10.96.0.10", "<unknown>", "80/TCP")),
        ("spec.clusterIPs", [], ("ClusterIP", "10.96.0.10", "<none>", "80/TCP")),
    ],
)
def test_service_cells(path: str, value: Any, cells: tuple[str, ...]) -> None:
    obj = tweak(path, value)
    if path == "spec.clusterIPs":
        obj["spec"]["clusterIP"] = "10.96.0.10"
    assert tuple(tables.row(obj, NOW)[1:5]) == cells


def test_lb_status_ips_sorted_deduplicated() -> None:
    obj = tweak("spec.type", "LoadBalancer")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}, {"ip": "1.1.1.1"}, {"ip": "9.9.9.9"}]}}
    assert tables.row(obj, NOW)[3] == "1.1.1.1,9.9.9.9"


# ------------------------------------------------------------------------------- get ep (§6.3)


def endpoints(n_pods: int, ports: list[dict[str, Any]], not_ready: int = 0) -> dict[str, Any]:
    subset: dict[str, Any] = {"addresses": [{"ip": f"10.244.0.{i + 1}"} for i in range(n_pods)], "ports": ports}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": f"10.244.1.{i + 1}"} for i in range(not_ready)]
    return {"kind": "Endpoints", "metadata": {"name": "web", "creationTimestamp": ts(seconds=30)}, "subsets": [subset]}


@pytest.mark.parametrize(
    "obj, text",
    [
        (endpoints(5, [{"name": "http", "port": 8080}, {"name": "m", "port": 9090}]),
         "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 7 more..."),
        (endpoints(3, [{"port": 8080}]), "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080"),
        (endpoints(4, [{"port": 8080}]), "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 1 more..."),
        (endpoints(1, [{"port": 8080}], not_ready=3), "10.244.0.1:8080"),
        (endpoints(2, []), "10.244.0.1,10.244.0.2"),
        ({"kind": "Endpoints", "metadata": {"name": "web"}}, "<none>"),
        ({"kind": "Endpoints", "metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "fd00::1"}],
                                                                         "ports": [{"port": 80}]}]}, "[fd00::1]:80"),
    ],
)
def test_endpoints_cell(obj: dict[str, Any], text: str) -> None:
    assert tables.row(obj, NOW)[1] == text


def test_get_ep_table() -> None:
    out = render_tables([("Endpoints", [endpoints(5, [{"name": "http", "port": 8080}, {"name": "m", "port": 9090}])])], now=NOW)
    assert out == (
        "NAME   ENDPOINTS                                                     AGE\n"
        "web    10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 7 more...   30s\n"
    )


# ------------------------------------------------------------------------------- other kinds


def pod(**status: Any) -> dict[str, Any]:
    return {
        "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ts(minutes=5)},
        "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}], "nodeName": "node-1"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.7"}], **status},
    }


RUNNING = {"running": {"startedAt": ts(minutes=4)}}


@pytest.mark.parametrize(
    "status, cells",
    [
        ({"containerStatuses": [{"name": "a", "ready": True, "state": RUNNING, "restartCount": 0},
                                {"name": "b", "ready": True, "state": RUNNING, "restartCount": 0}]},
         ("2/2", "Running", "0")),
        ({"containerStatuses": [{"name": "a", "ready": True, "state": RUNNING},
                                {"name": "b", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                 "restartCount": 3, "lastState": {"terminated": {"finishedAt": ts(minutes=2)}}}]},
         ("1/2", "CrashLoopBackOff", "3 (2m ago)")),
        ({"phase": "Pending"}, ("0/2", "Pending", "0")),
        ({"containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 1}}}]}, ("0/2", "ExitCode:1", "0")),
    ],
)
def test_pod_cells(status: dict[str, Any], cells: tuple[str, str, str]) -> None:
    assert tuple(tables.row(pod(**status), NOW)[1:4]) == cells


def test_pod_terminating_and_wide_cells() -> None:
    obj = pod()
    obj["metadata"]["deletionTimestamp"] = ts(seconds=1)
    assert tables.row(obj, NOW) == ["web-1", "0/2", "Terminating", "0", "5m", "10.244.0.7", "node-1", "<none>", "<none>"]


def test_deployment_and_ingress_rows() -> None:
    deploy = {"kind": "Deployment", "metadata": {"name": "web", "creationTimestamp": ts(days=2)},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}},
              "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}}
    assert tables.row(deploy, NOW) == ["web", "1/2", "2", "1", "2d", "nginx", "nginx:1", "app=web"]
    ing = {"kind": "Ingress", "metadata": {"name": "site", "creationTimestamp": ts(seconds=5)},
           "spec": {"rules": [{"host": f"h{i}.example.com"} for i in range(5)] + [{}], "tls": [{"hosts": ["a"]}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
    assert tables.row(ing, NOW) == [
        "site", "<none>", "h0.example.com,h1.example.com,h2.example.com + 3 more...", "192.0.2.1", "80, 443", "5s"]
    ing["spec"] = {"ingressClassName": "nginx", "defaultBackend": {}}
    ing["status"] = {}
    assert tables.row(ing, NOW)[1:5] == ["nginx", "*", "", "80"]


def test_secret_event_and_configmap_tables() -> None:
    secret = {"kind": "Secret", "metadata": {"name": "s", "creationTimestamp": ts(hours=1)}, "type": "Opaque",
              "data": {"a": "eA==", "b": "eQ=="}}
    assert render_tables([("Secret", [secret])], now=NOW) == "NAME   TYPE     DATA   AGE\ns      Opaque   2      60m\n"
    event = {"kind": "Event", "metadata": {"name": "web.1"}, "type": "Normal", "reason": "Created",
             "involvedObject": {"kind": "Service", "name": "web"}, "message": "made it ",
             "firstTimestamp": ts(minutes=5), "lastTimestamp": ts(seconds=40), "count": 3}
    assert render_tables([("Event", [event])], now=NOW) == (
        "LAST SEEN   TYPE     REASON    OBJECT        MESSAGE\n"
        "40s         Normal   Created   service/web   made it\n"
    )
    cm = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"}, "data": {"k": "v"}}
    assert render_tables([("ConfigMap", [cm])], now=NOW, all_namespaces=True) == (
        "NAMESPACE     NAME   DATA   AGE\nkube-system   c      1      <unknown>\n"
    )


# ----------------------------------------------------------------------------- decorations (§6.1)


def test_labels_label_columns_namespace_and_no_headers() -> None:
    obj = copy.deepcopy(BASE)
    obj["metadata"]["labels"] = {"tier": "fe", "app": "web", "example.com/team": "a"}
    out = render_tables([("Service", [obj])], now=NOW, all_namespaces=True, show_labels=True,
                        label_columns=("example.com/team", "missing"))
    assert out == (
        "NAMESPACE   NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   TEAM   MISSING   LABELS\n"
        "default     web    ClusterIP   10.96.0.10   <none>        80/TCP    5m    a                app=web,example.com/team=a,tier=fe\n"
    )
    assert render_tables([("Service", [obj])], now=NOW, no_headers=True) == (
        "web   ClusterIP   10.96.0.10   <none>   80/TCP   5m\n"
    )


def test_several_kinds_get_prefixes_and_blank_line() -> None:
    deploy = {"kind": "Deployment", "metadata": {"name": "web", "creationTimestamp": ts(days=1)},
              "spec": {"replicas": 1}, "status": {"readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}
    out = render_tables([("Service", [BASE]), ("Endpoints", []), ("Deployment", [deploy])], now=NOW, show_kind=True)
    assert out == (
        "NAME          TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
        "service/web   ClusterIP   10.96.0.10   <none>        80/TCP    5m\n"
        "\n"
        "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\n"
        "deployment.apps/web   1/1     1            1           24h\n"
    )


# ---------------------------------------------------------------------------------- tabwriter


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a\tb\n", "a     b\n"),  # min width 6 includes the padding
        ("abcd\tb\n", "abcd   b\n"),  # width = 4 + padding 3
        ("a\tb\tc\nlonger-cell\tb\n", "a             b     c\nlonger-cell   b\n"),
        ("a\t\n", "a     \n"),  # an empty last cell still pads the cell before it
        ("x\ty\nno tabs here\nlong-long\tz\n", "x     y\nno tabs here\nlong-long   z\n"),  # blocks break
        ("a\tb\tc\nd\te\nf\tg\th\n", "a     b     c\nd     e\nf     g     h\n"),
        ("a\tbbbbbbbbb\tc\nd\te\nf\tg\th\n", "a     bbbbbbbbb   c\nd     e\nf     g     h\n"),
        ("no newline\tend", "no newline   end"),
    ],
)
def test_tabwriter(text: str, expected: str) -> None:
    assert tabwrite(text) == expected


def test_tabwriter_describe_settings() -> None:
    assert tabwrite("Name:\tweb\nLabels:\tapp=web\n\ttier=fe\n", minwidth=0, padding=2) == (
        "Name:    web\nLabels:  app=web\n         tier=fe\n"
    )


# ------------------------------------------------------------------------------------ -o formats


def test_name_json_yaml() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    assert render_name([BASE, deploy]) == "service/web\ndeployment.apps/web\n"
    one = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    assert render_json([one], single=True) == (
        '{\n    "apiVersion": "v1",\n    "kind": "Service",\n    "metadata": {\n        "name": "web"\n    }\n}\n'
    )
    assert render_yaml([one], single=True) == "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
    assert render_yaml([one, one], single=False) == (
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n"
        "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\nkind: List\nmetadata:\n  resourceVersion: \"\"\n"
    )
    assert render_yaml([], single=False).endswith("items: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n")


def test_jsonpath_printing() -> None:
    web = sample_services()[4]
    assert render_jsonpath("{.spec.clusterIP}", web) == ""
    assert render_jsonpath("{.spec.clusterIPs[0]}", web) == "10.96.12.34"
    assert render_jsonpath("{.spec.ports[*].nodePort}", web) == "30080 31234"
    lst = {"kind": "List", "items": sample_services()}
    assert render_jsonpath('{range .items[*]}{.metadata.name}{"\\t"}{.spec.type}{"\\n"}{end}', lst) == (
        "db\tClusterIP\next\tExternalName\nkubernetes\tClusterIP\nlb\tLoadBalancer\nweb\tNodePort\n"
    )


@pytest.mark.parametrize(
    "template, message",
    [
        ("{.spec.x", "error parsing jsonpath {.spec.x, unclosed action"),
        ("{.spec[0}", "error parsing jsonpath {.spec[0}, unterminated array"),
        ("{.spec[x]}", "error parsing jsonpath {.spec[x]}, invalid array index x"),
        ("{.a,.b}", "error parsing jsonpath {.a,.b}, unrecognized character in action: U+002C ','"),
    ],
)
def test_jsonpath_parse_errors(template: str, message: str) -> None:
    with pytest.raises(ClientError) as err:
        render_jsonpath(template, {})
    assert err.value.message == message


def test_jsonpath_execution_error() -> None:
    with pytest.raises(ClientError) as err:
        render_jsonpath("{.spec.ports[5]}", BASE)
    assert err.value.message.startswith(
        'error executing jsonpath "{.spec.ports[5]}": Error executing template: array index out of bounds: '
        "index 5, length 1. Printing more information for debugging the template:\n"
    )


def test_custom_columns() -> None:
    objs = sample_services()
    out = render_custom_columns("NAME:.metadata.name,IP:.spec.clusterIP,PORTS:.spec.ports[*].port,SEL:{.spec.selector}", objs)
    assert out == (
        "NAME         IP       PORTS     SEL\n"
        "db           <none>   5432      map[app:db]\n"
        "ext          <none>   <none>    <none>\n"
        "kubernetes   <none>   443       <none>\n"
        "lb           <none>   443       map[app:web]\n"
        "web          <none>   80,9090   map[app:web]\n"
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("NAME", "unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>"),
        ("NAME:.metadata.name,IP", "unexpected custom-columns spec: IP, expected <header>:<json-path-expr>"),
        ("", "custom-columns format specified but no custom columns given"),
        ("A:{.x", "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or "
                  "'{.name1.name2}'"),
    ],
)
def test_custom_columns_errors(spec: str, message: str) -> None:
    with pytest.raises(ClientError) as err:
        render_custom_columns(spec, [BASE])
    assert err.value.message == message
