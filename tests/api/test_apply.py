"""Client-side apply: annotation text, three-way patch, strategic merge.

The Service cases are also checked against real kubectl: a tiny in-process API server on
127.0.0.1:0 serves discovery, GETs the live object and records the PATCH body kubectl sends
(kubectl falls back to its built-in patch metadata, as it does without OpenAPI).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubesvc.api.apply import (
    LAST_APPLIED,
    apply_strategic_patch,
    last_applied_annotation,
    original_configuration,
    three_way_patch,
    with_last_applied,
)

KUBECTL = shutil.which("kubectl")

FILE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "x": "1"}},
    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                                   {"name": "https", "port": 443}]},
}


def live_from(applied: dict[str, Any], **spec_extra: Any) -> dict[str, Any]:
    """What the server stores after applying ``applied``: defaults, allocations, annotation."""
    live = with_last_applied(applied)
    live["metadata"].update(uid="u-1", resourceVersion="7", creationTimestamp="2024-01-01T00:00:00Z")
    spec = live["spec"]
    for p in spec.get("ports", []):
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p["port"])
    spec.setdefault("type", "ClusterIP")
    spec.update(clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"], sessionAffinity="None")
    spec.update(spec_extra)
    live["status"] = {"loadBalancer": {}}
    return live


def tweak(obj: dict[str, Any], fn: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    fn(out)
    return out


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d[int(p)] if isinstance(d, list) else d[p]
    if value is None:
        del d[int(last) if isinstance(d, list) else last]
    elif isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


def case(name: str, new_file: dict[str, Any], live: dict[str, Any] | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    return name, new_file, live if live is not None else live_from(FILE)


LIVE = live_from(FILE)
CASES = [
    case("unchanged", FILE),
    case("change-target-port", tweak(FILE, lambda o: _set(o, "spec.ports.0.targetPort", 9090))),
    case("remove-port", tweak(FILE, lambda o: _set(o, "spec.ports.1", None))),
    case("add-port", tweak(FILE, lambda o: o["spec"]["ports"].append({"name": "alt", "port": 8080}))),
    case("remove-label", tweak(FILE, lambda o: _set(o, "metadata.labels.x", None))),
    case("add-annotation", tweak(FILE, lambda o: _set(o, "metadata.annotations", {"team": "a"}))),
    case("reorder-ports", tweak(FILE, lambda o: o["spec"]["ports"].reverse())),
    case("change-type", tweak(FILE, lambda o: _set(o, "spec.type", "NodePort"))),
    case("remove-selector", tweak(FILE, lambda o: _set(o, "spec.selector", None))),
    case("no-annotation-on-live", FILE, tweak(LIVE, lambda o: _set(o, "metadata.annotations", None))),
    case("drop-node-port", FILE,
         live_from(tweak(FILE, lambda o: _set(o, "spec.ports.0.nodePort", 30080)), type="NodePort")),
    case("rename-port-and-target", tweak(FILE, lambda o: o["spec"]["ports"][1].update(name="tls", targetPort=8443))),
    case("replace-all-ports", tweak(FILE, lambda o: _set(o, "spec.ports", [{"name": "x", "port": 9000}]))),
    case("external-ips", tweak(FILE, lambda o: _set(o, "spec.externalIPs", ["1.2.3.4"])),
         live_from(tweak(FILE, lambda o: _set(o, "spec.externalIPs", ["5.6.7.8", "1.2.3.4"])))),
]


def _api_server(objects: dict[str, dict[str, Any]], patches: dict[str, Any]) -> ThreadingHTTPServer:
    resources = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": "services", "singularName": "service", "namespaced": True, "kind": "Service",
         "shortNames": ["svc"], "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _name(self) -> str:
            return self.path.split("?")[0].rpartition("/services/")[2]

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/api":
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
            if path == "/apis":
                return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
            if path == "/api/v1":
                return self._send(200, resources)
            if "/services/" in path and self._name() in objects:
                return self._send(200, objects[self._name()])
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                             "code": 404, "message": "not found"})

        def do_PATCH(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            patches[self._name()] = body
            self._send(200, objects[self._name()])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def kubectl_patches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """case name -> the patch body kubectl sent, or {} when it sent none (printed unchanged)."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    root: Path = tmp_path_factory.mktemp("apply")
    objects: dict[str, dict[str, Any]] = {}
    patches: dict[str, Any] = {}
    for name, new_file, live in CASES:
        # One Service per case, named after it, so kubectl runs can share one server.
        objects[name] = tweak(live, lambda o, n=name: o["metadata"].update(name=n))
        renamed = tweak(new_file, lambda o, n=name: o["metadata"].update(name=n))
        (root / f"{name}.json").write_text(json.dumps(renamed))
    server = _api_server(objects, patches)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"

        def run(name: str) -> str:
            p = subprocess.run(
                [KUBECTL or "kubectl", "--cache-dir", str(root / "cache"), "--server", url, "apply",
                 "--validate=false", "-f", str(root / f"{name}.json")],
                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, env={"HOME": str(root)},
            )
            assert p.returncode == 0, p.stderr
            return p.stdout

        with ThreadPoolExecutor(max_workers=8) as pool:
            outputs = dict(zip([c[0] for c in CASES], pool.map(run, [c[0] for c in CASES]), strict=True))
        for name, out in outputs.items():
            assert (name in patches) == out.endswith("configured\n"), (name, out)
        yield {name: patches.get(name, {}) for name, _, _ in CASES}
    finally:
        server.shutdown()
        server.server_close()


def _ours(new_file: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    return three_way_patch(original_configuration(live), with_last_applied(new_file), live)


@pytest.mark.parametrize(("name", "new_file", "live"), CASES, ids=[c[0] for c in CASES])
def test_three_way_patch_matches_kubectl(kubectl_patches: dict[str, Any], name: str, new_file: dict[str, Any],
                                         live: dict[str, Any]) -> None:
    live = tweak(live, lambda o: o["metadata"].update(name=name))
    new_file = tweak(new_file, lambda o: o["metadata"].update(name=name))
    assert _ours(new_file, live) == kubectl_patches[name]


# Plain expectations (no kubectl needed).


def test_annotation_text() -> None:
    assert last_applied_annotation(FILE) == (
        '{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"labels":{"app":"web","x":"1"},'
        '"name":"web","namespace":"default"},"spec":{"ports":[{"name":"http","port":80,"targetPort":8080},'
        '{"name":"https","port":443}],"selector":{"app":"web"}}}\n'
    )


def test_annotation_leaves_out_itself_and_escapes_like_go() -> None:
    obj = tweak(FILE, lambda o: _set(o, "metadata.annotations", {LAST_APPLIED: "old", "note": "<a&b>"}))
    text = last_applied_annotation(obj)
    assert LAST_APPLIED not in text
    assert '"annotations":{"note":"\\u003ca\\u0026b\\u003e"}' in text


def test_reapply_unchanged_is_empty() -> None:
    assert _ours(FILE, LIVE) == {}


def test_server_fields_untouched() -> None:
    patch = _ours(tweak(FILE, lambda o: _set(o, "spec.ports.0.targetPort", 9090)), LIVE)
    result = apply_strategic_patch(LIVE, patch)
    assert result["spec"]["clusterIP"] == "10.96.0.20"
    assert result["status"] == {"loadBalancer": {}}
    assert result["metadata"]["uid"] == "u-1"
    assert result["spec"]["ports"][0] == {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9090}


def test_remove_port_patch_and_result() -> None:
    patch = _ours(tweak(FILE, lambda o: _set(o, "spec.ports.0", None)), LIVE)
    assert patch["spec"] == {"$setElementOrder/ports": [{"port": 443}], "ports": [{"$patch": "delete", "port": 80}]}
    assert [p["port"] for p in apply_strategic_patch(LIVE, patch)["spec"]["ports"]] == [443]


def test_remove_label() -> None:
    patch = _ours(tweak(FILE, lambda o: _set(o, "metadata.labels.x", None)), LIVE)
    assert patch["metadata"]["labels"] == {"x": None}
    assert apply_strategic_patch(LIVE, patch)["metadata"]["labels"] == {"app": "web"}


def test_reorder_ports_applies_new_order() -> None:
    patch = _ours(tweak(FILE, lambda o: o["spec"]["ports"].reverse()), LIVE)
    assert [p["port"] for p in apply_strategic_patch(LIVE, patch)["spec"]["ports"]] == [443, 80]


def test_server_only_port_keeps_its_place_and_is_unchanged() -> None:
    # A port added by someone else (not in the file, not in last-applied): kubectl would send a bare
    # $setElementOrder; kubesvc reports unchanged since nothing would change.
    live = tweak(LIVE, lambda o: o["spec"]["ports"].insert(1, {"port": 9999, "protocol": "TCP", "targetPort": 9999}))
    assert _ours(FILE, live) == {}
    patch = _ours(tweak(FILE, lambda o: o["spec"]["ports"].append({"port": 7000})), live)
    ports = [p["port"] for p in apply_strategic_patch(live, patch)["spec"]["ports"]]
    assert ports == [80, 9999, 443, 7000]


def test_same_port_two_protocols() -> None:
    dns = tweak(FILE, lambda o: _set(o, "spec.ports", [{"name": "dns", "port": 53, "protocol": "UDP"},
                                                       {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]))
    live = live_from(dns)
    assert _ours(dns, live) == {}
    drop_udp = tweak(dns, lambda o: _set(o, "spec.ports.0", None))
    patch = _ours(drop_udp, live)
    assert patch["spec"]["ports"] == [{"$patch": "delete", "port": 53, "protocol": "UDP"}]
    assert apply_strategic_patch(live, patch)["spec"]["ports"] == [
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}
    ]
    retarget = tweak(dns, lambda o: _set(o, "spec.ports.0.targetPort", 5353))
    result = apply_strategic_patch(live, _ours(retarget, live))["spec"]["ports"]
    assert [(p["protocol"], p["targetPort"]) for p in result] == [("UDP", 5353), ("TCP", 53)]


def test_kubectl_style_patch_without_protocol_finds_udp_port() -> None:
    live = live_from(tweak(FILE, lambda o: _set(o, "spec.ports", [{"port": 53, "protocol": "UDP"}])))
    result = apply_strategic_patch(live, {"spec": {"ports": [{"port": 53, "targetPort": 5353}]}})
    assert result["spec"]["ports"] == [{"port": 53, "protocol": "UDP", "targetPort": 5353}]
    gone = apply_strategic_patch(live, {"spec": {"ports": [{"$patch": "delete", "port": 53}]}})
    assert gone["spec"]["ports"] == []


def test_containers_and_env_merge_by_name() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "a", "image": "i:1", "env": [{"name": "A", "value": "1"},
                                                                          {"name": "B", "value": "2"}]},
                                   {"name": "b", "image": "j:1"}]}}
    live = with_last_applied(pod)
    live["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    new = tweak(pod, lambda o: (_set(o, "spec.containers.0.env.1", None), _set(o, "spec.containers.1.image", "j:2")))
    patch = _ours(new, live)
    assert patch["spec"]["containers"] == [
        {"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "a"},
        {"image": "j:2", "name": "b"},
    ]
    result = apply_strategic_patch(live, patch)["spec"]["containers"]
    assert result == [{"name": "a", "image": "i:1", "env": [{"name": "A", "value": "1"}], "imagePullPolicy": "IfNotPresent"},
                      {"name": "b", "image": "j:2"}]


@pytest.mark.parametrize(
    ("current", "patch", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, {"a": {"c": 2}}),
        ({"a": 1}, {"b": {"c": None, "d": 1}}, {"a": 1, "b": {"d": 1}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}, {"a": {"c": 2}}),
        ({"a": [1, 2, 3]}, {"$deleteFromPrimitiveList/a": [2]}, {"a": [1, 3]}),
        ({"a": 1, "b": 2}, {"$retainKeys": ["a"], "a": 5}, {"a": 5}),
    ],
)
def test_apply_strategic_patch_map_rules(current: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply_strategic_patch(current, patch) == expected


def test_apply_replace_directive_in_list() -> None:
    live = LIVE
    patch = {"spec": {"ports": [{"port": 1, "targetPort": 1}, {"$patch": "replace"}]}}
    assert apply_strategic_patch(live, patch)["spec"]["ports"] == [{"port": 1, "targetPort": 1}]
