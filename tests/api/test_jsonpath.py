"""kubectl's JSONPath templates: one object, one template per case, exact output strings."""

from __future__ import annotations

from typing import Any

import pytest

from kubesvc.api.jsonpath import JSONPath, JSONPathError, go_float, go_sprint

SVC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default",
                 "labels": {"app": "web", "app.kubernetes.io/name": "web"},
                 "annotations": {"note": "<a&b>"}},
    "spec": {
        "type": "NodePort",
        "clusterIP": "10.96.12.34",
        "ports": [
            {"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "nodePort": 31234, "protocol": "TCP"},
        ],
        "selector": {"app": "web"},
        "weight": 1.5,
        "gone": None,
        "flag": True,
    },
}

LIST: dict[str, Any] = {
    "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
    "items": [
        {"metadata": {"name": "a"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}},
        {"metadata": {"name": "b"}, "spec": {"type": "NodePort", "ports": [{"port": 81}, {"port": 82}]}},
        {"metadata": {"name": "c"}, "spec": {"type": "NodePort"}},
    ],
}


@pytest.mark.parametrize(
    "template, data, text",
    [
        ("{.spec.clusterIP}", SVC, "10.96.12.34"),
        ("{.metadata.name}/{.metadata.namespace}", SVC, "web/default"),
        ("plain text", SVC, "plain text"),
        ("{.spec.ports[*].nodePort}", SVC, "30080 31234"),
        ("{.spec.ports[0].name}", SVC, "http"),
        ("{.spec.ports[-1].name}", SVC, "metrics"),
        ("{.spec.ports[0:2].port}", SVC, "80 9090"),
        ("{.spec.ports[1:].port}", SVC, "9090"),
        ("{.spec.ports[::2].port}", SVC, "80"),
        ("{.spec.ports[0,1].port}", SVC, "80 9090"),
        ("{.metadata.labels['app.kubernetes.io/name']}", SVC, "web"),
        ("{.metadata.labels.app\\.kubernetes\\.io/name}", SVC, "web"),
        ("{.metadata.labels['app','app.kubernetes.io/name']}", SVC, "web web"),
        ("{.spec.selector}", SVC, '{"app":"web"}'),
        ("{.spec.ports[0]}", SVC, '{"name":"http","nodePort":30080,"port":80,"protocol":"TCP"}'),
        ("{.metadata.annotations}", SVC, '{"note":"\\u003ca\\u0026b\\u003e"}'),
        ("{.spec.weight} {.spec.flag} {.spec.gone}", SVC, "1.5 true <nil>"),
        ("{.spec.missing}", SVC, ""),
        ("{.nope.deeper[*].x}", SVC, ""),
        ("{.spec.missing}{.spec.type}", SVC, "NodePort"),
        ('{"a\\tb\\n"}', SVC, "a\tb\n"),
        ("{'single'}", SVC, "single"),
        ("{.items[*].metadata.name}", LIST, "a b c"),
        ('{range .items[*]}{.metadata.name}{"\\n"}{end}', LIST, "a\nb\nc\n"),
        ('{range .items[*]}[{.metadata.name}:{range .spec.ports[*]}{.port},{end}]{end}', LIST, "[a:80,][b:81,82,][c:]"),
        ('{range .items[?(@.spec.type=="NodePort")]}{.metadata.name} {end}', LIST, "b c "),
        ('{.items[?(@.spec.type=="NodePort")].metadata.name}', LIST, "b c"),
        ("{.items[?(@.spec.type!='NodePort')].metadata.name}", LIST, "a"),
        ("{.items[?(@.spec.ports)].metadata.name}", LIST, "a b"),
        ("{.items[*].spec.ports[?(@.port>80)].port}", LIST, "81 82"),
        ("{.items[*].spec.ports[?(@.port<=81)].port}", LIST, "80 81"),
        ("{..port}", LIST, "80 81 82"),
        ("{.items[0].metadata.*}", LIST, "a"),
        ("{@.kind}", LIST, "List"),
        ("{$.kind}", LIST, "List"),
        ("{.items[2].spec}", LIST, '{"type":"NodePort"}'),
        ("{range .items[*]}{end}done", LIST, "done"),
        ("{range .nothing[*]}{.x}{end}after", LIST, "after"),
        ("{.items[5:5]}", LIST, ""),
    ],
)
def test_execute(template: str, data: Any, text: str) -> None:
    assert JSONPath(template).execute(data) == text


@pytest.mark.parametrize(
    "template, message",
    [
        ("{.spec.x", "unclosed action"),
        ("{.spec[0", "unterminated array"),
        ("{.spec[a:b]}", "invalid array index a:b"),
        ('{"abc}', "unterminated quoted string"),
        ("{.a[?(@.x==1}", "unterminated filter"),
        ("{#}", "unrecognized character in action: U+0023 '#'"),
        ("{..}{....x}", "invalid multiple recursive descent"),
    ],
)
def test_parse_errors(template: str, message: str) -> None:
    with pytest.raises(JSONPathError) as err:
        JSONPath(template)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "template, message",
    [
        ("{.spec.ports[5]}", "array index out of bounds: index 5, length 2"),
        ("{.spec.ports[0:5]}", "array index out of bounds: index 4, length 2"),
        ("{.spec.ports[1:0]}", "starting index 1 is greater than ending index 0"),
        ("{.spec.ports[0::0]}", "step must be > 0"),
        ("{.spec[0]}", "map[string]interface {} is not array or slice"),
        ("{end}", "not in range, nothing to end"),
        ("{foo}", "unrecognized identifier foo"),
        ("{.spec.ports[?(@.port=='80')]}", "incompatible types for comparison"),
    ],
)
def test_execution_errors(template: str, message: str) -> None:
    with pytest.raises(JSONPathError) as err:
        JSONPath(template).execute(SVC)
    assert str(err.value) == message


def test_missing_keys_can_be_an_error() -> None:
    with pytest.raises(JSONPathError) as err:
        JSONPath("{.spec.missing}", allow_missing_keys=False).execute(SVC)
    assert str(err.value) == "missing is not found"


@pytest.mark.parametrize(
    "value, text",
    [(1.5, "1.5"), (100000.0, "100000"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"),
     (0.00001, "1e-05"), (-2.0, "-2"), (0.0, "0")],
)
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text


def test_go_sprint() -> None:
    assert go_sprint({"b": [1, "x"], "a": None}) == "map[a:<nil> b:[1 x]]"
