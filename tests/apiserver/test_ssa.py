"""metadata.managedFields and server-side apply through the real kubectl against `kubesvc apiserver`:
the manager each verb records (as upstream test/cmd reads them with
``-o jsonpath='{.metadata.managedFields[*].manager}'``), ``--show-managed-fields``, ``apply --server-side``
create/update/no-op, conflicts and ``--force-conflicts``, removal of fields no longer applied, and the
migration from client-side apply (upstream test/cmd/apply.sh's sequence)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl

pytestmark = needs_kubectl

SVC = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  selector: {{app: {name}}}
  ports:
  - name: http
    port: 80
    targetPort: {target}
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: test-pod
  labels:
    name: {label}
spec:
  containers:
  - name: kubernetes-pause
    image: registry.k8s.io/pause:3.10
"""


def managers(api: Api, ns: str, what: str) -> list[str]:
    r = api.kubectl("get", "-n", ns, what, "-o", "jsonpath={.metadata.managedFields[*].manager}")
    assert r.code == 0, r.err
    return r.out.split()


def entries(api: Api, ns: str, what: str) -> list[dict]:
    r = api.kubectl("get", "-n", ns, what, "-o", "json", "--show-managed-fields")
    assert r.code == 0, r.err
    return json.loads(r.out)["metadata"].get("managedFields") or []


def ok(r: object) -> None:
    assert r.code == 0, (r.out, r.err)  # type: ignore[attr-defined]


def test_each_verb_records_its_manager(api: Api, ns: str) -> None:
    ok(api.kubectl("create", "-n", ns, "-f", "-", input=SVC.format(name="web", target=8080)))
    assert managers(api, ns, "svc/web") == ["kubectl-create"]
    ok(api.kubectl("label", "-n", ns, "svc/web", "tier=front"))
    ok(api.kubectl("annotate", "-n", ns, "svc/web", "note=x"))
    ok(api.kubectl("patch", "-n", ns, "svc/web", "-p", '{"spec":{"sessionAffinity":"ClientIP"}}'))
    got = managers(api, ns, "svc/web")
    assert set(got) == {"kubectl-create", "kubectl-label", "kubectl-annotate", "kubectl-patch"}
    by = {e["manager"]: e for e in entries(api, ns, "svc/web")}
    assert by["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}
    assert by["kubectl-annotate"]["fieldsV1"] == {"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}}
    # the patched field moved from its creator to kubectl-patch (with what defaulting added for it)
    assert by["kubectl-patch"]["fieldsV1"] == {"f:spec": {"f:sessionAffinity": {}, "f:sessionAffinityConfig": {
        ".": {}, "f:clientIP": {".": {}, "f:timeoutSeconds": {}}}}}
    assert "f:sessionAffinity" not in by["kubectl-create"]["fieldsV1"]["f:spec"]
    create = by["kubectl-create"]
    assert (create["operation"], create["apiVersion"], create["fieldsType"]) == ("Update", "v1", "FieldsV1")
    assert create["fieldsV1"]["f:spec"]["f:ports"]['k:{"port":80,"protocol":"TCP"}'] == {
        ".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}
    assert create["time"].endswith("Z")
    # replace, expose, set, run, the fieldManager flag
    live = api.kubectl("get", "-n", ns, "svc/web", "-o", "yaml").out
    ok(api.kubectl("replace", "-n", ns, "-f", "-", input=live.replace("targetPort: 8080", "targetPort: 9090")))
    assert "kubectl-replace" in managers(api, ns, "svc/web")
    ok(api.kubectl("run", "-n", ns, "box", "--image=busybox", "--restart=Never", "--labels=app=box"))
    assert managers(api, ns, "pod/box") == ["kubectl-run"]
    ok(api.kubectl("expose", "-n", ns, "pod/box", "--port=80", "--name=box"))
    assert managers(api, ns, "svc/box") == ["kubectl-expose"]
    ok(api.kubectl("set", "image", "-n", ns, "pod/box", "box=busybox:1.36"))
    assert "kubectl-set" in managers(api, ns, "pod/box")
    ok(api.kubectl("label", "-n", ns, "svc/box", "x=y", "--field-manager=mine"))
    assert "mine" in managers(api, ns, "svc/box")


def test_show_managed_fields(api: Api, ns: str) -> None:
    ok(api.kubectl("apply", "-n", ns, "-f", "-", input=SVC.format(name="csa", target=8080)))
    plain = api.kubectl("get", "-n", ns, "svc/csa", "-o", "yaml")
    assert "managedFields" not in plain.out
    shown = yaml.safe_load(api.kubectl("get", "-n", ns, "svc/csa", "-o", "yaml", "--show-managed-fields").out)
    (entry,) = shown["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-client-side-apply"
    assert entry["fieldsV1"]["f:metadata"]["f:annotations"] == {
        ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}
    # kubesvc's own get strips them the same way
    assert "managedFields" not in api.ks("get", "-n", ns, "svc/csa", "-o", "yaml").out


def test_server_side_apply_create_update_noop_and_removal(api: Api, ns: str) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test\ndata:\n  key: value\n  legacy: unused\n"
    r = api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm)
    ok(r)
    assert r.out == "configmap/test serverside-applied\n"
    (entry,) = entries(api, ns, "cm/test")
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    assert entry["fieldsV1"] == {"f:data": {"f:key": {}, "f:legacy": {}}}  # ToFieldSet: data itself is no member
    rv = api.kubectl("get", "-n", ns, "cm/test", "-o", "jsonpath={.metadata.resourceVersion}").out
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm))
    assert api.kubectl("get", "-n", ns, "cm/test", "-o", "jsonpath={.metadata.resourceVersion}").out == rv
    # a field dropped from the applied configuration goes
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm.replace("legacy: unused", "ssaKey: ssaValue")))
    data = json.loads(api.kubectl("get", "-n", ns, "cm/test", "-o", "json").out)["data"]
    assert data == {"key": "value", "ssaKey": "ssaValue"}
    # ... unless another manager owns it too
    ok(api.kubectl("patch", "-n", ns, "cm/test", "-p", '{"data":{"ssaKey":"patched"}}'))
    ok(api.kubectl("apply", "--server-side", "--force-conflicts", "-n", ns, "-f", "-",
                   input=cm.replace("legacy: unused", "ssaKey: ssaValue")))
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input="apiVersion: v1\nkind: ConfigMap\n"
                   "metadata:\n  name: test\ndata:\n  key: value\n"))
    assert json.loads(api.kubectl("get", "-n", ns, "cm/test", "-o", "json").out)["data"] == {"key": "value"}


def test_conflicts_and_force(api: Api, ns: str) -> None:
    ok(api.kubectl("create", "-n", ns, "-f", "-", input=SVC.format(name="owned", target=8080)))
    changed = SVC.format(name="owned", target=9090)
    r = api.kubectl("apply", "--server-side", "--field-manager=other", "-n", ns, "-f", "-", input=changed)
    assert r.code != 0
    assert ('Apply failed with 1 conflict: conflict with "kubectl-create" using v1: '
            '.spec.ports[port=80,protocol="TCP"].targetPort') in r.err
    assert "--force-conflicts" in r.err
    # the raw Status: 409 Conflict with one FieldManagerConflict cause
    code, _, st = api.request("PATCH", f"/api/v1/namespaces/{ns}/services/owned?fieldManager=other",
                              changed.encode(), {"Content-Type": "application/apply-patch+yaml"})
    assert code == 409
    assert st["reason"] == "Conflict"
    assert st["details"]["causes"] == [{"type": "FieldManagerConflict", "message": 'conflict with "kubectl-create" using v1',
                                        "field": '.spec.ports[port=80,protocol="TCP"].targetPort'}]
    ok(api.kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-n", ns, "-f", "-", input=changed))
    assert api.kubectl("get", "-n", ns, "svc/owned", "-o", "jsonpath={.spec.ports[0].targetPort}").out == "9090"
    by = {e["manager"]: e for e in entries(api, ns, "svc/owned")}
    assert by["other"]["operation"] == "Apply"
    port = by["kubectl-create"]["fieldsV1"]["f:spec"]["f:ports"]['k:{"port":80,"protocol":"TCP"}']
    assert "f:targetPort" not in port  # ownership moved


def test_apply_patch_needs_field_manager(api: Api, ns: str) -> None:
    body = SVC.format(name="nofm", target=8080).encode()
    code, _, st = api.request("PATCH", f"/api/v1/namespaces/{ns}/services/nofm", body,
                              {"Content-Type": "application/apply-patch+yaml"})
    assert (code, st["message"]) == (422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
    code, _, st = api.request("PATCH", f"/api/v1/namespaces/{ns}/services/nofm?force=true&fieldManager=x", b"{}",
                              {"Content-Type": "application/merge-patch+json"})
    assert (code, st["message"]) == (422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch')


def test_migration_from_client_side_apply(api: Api, ns: str) -> None:
    """upstream test/cmd/apply.sh: client-side apply, then --server-side with another manager conflicts,
    with kubectl's own manager takes over, and later applies remove what they dropped."""
    ok(api.kubectl("apply", "-n", ns, "-f", "-", input=POD.format(label="test-pod-label")))
    assert managers(api, ns, "pod/test-pod") == ["kubectl-client-side-apply"]
    r = api.kubectl("apply", "--server-side", "--field-manager=not-kubectl", "-n", ns, "-f", "-",
                    input=POD.format(label="test-pod-applied"))
    assert r.code != 0 and 'conflict with "kubectl-client-side-apply"' in r.err
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=POD.format(label="test-pod-applied")))
    r = api.kubectl("apply", "view-last-applied", "-n", ns, "pod/test-pod", "-o", "json")
    assert '"name": "test-pod-applied"' in r.out
    assert set(managers(api, ns, "pod/test-pod")) <= {"kubectl", "kubectl-last-applied"}
    assert "kubectl" in managers(api, ns, "pod/test-pod")
    # and back to client-side apply
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=POD.format(label="test-pod-label")))
    ok(api.kubectl("apply", "-n", ns, "-f", "-", input=POD.format(label="test-pod-applied")))

    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: test\ndata:\n  key: value\n"
    ok(api.kubectl("apply", "-n", ns, "-f", "-", input=cm + "  legacy: unused\n"))
    r = api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm + "  legacy: unused\n")
    ok(r)
    assert "configmap/test serverside-applied" in r.out
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm + "  ssaKey: ssaValue\n"))
    data = lambda: json.loads(api.kubectl("get", "-n", ns, "cm/test", "-o", "json").out)["data"]  # noqa: E731
    assert data() == {"key": "value", "ssaKey": "ssaValue"}
    ok(api.kubectl("apply", "-n", ns, "-f", "-", input=cm + "  newKey: newValue\n"))
    assert data() == {"key": "value", "newKey": "newValue"}
    ok(api.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=cm + "  ssaKey: ssaValue\n"))
    assert data() == {"key": "value", "ssaKey": "ssaValue"}


def test_before_first_apply(api: Api, ns: str) -> None:
    """An object without managedFields (reset with managedFields: [{}]) that gets server-side applied:
    its fields go to before-first-apply first, so a changed field conflicts with it."""
    ok(api.kubectl("create", "-n", ns, "-f", "-", input=SVC.format(name="bfa", target=8080)))
    ok(api.kubectl("patch", "-n", ns, "svc/bfa", "--type=merge", "-p", '{"metadata":{"managedFields":[{}]}}'))
    assert managers(api, ns, "svc/bfa") == []
    ok(api.kubectl("label", "-n", ns, "svc/bfa", "untracked=yes"))  # not tracked: there were none
    assert managers(api, ns, "svc/bfa") == []
    r = api.kubectl("apply", "--server-side", "--field-manager=ssa", "-n", ns, "-f", "-",
                    input=SVC.format(name="bfa", target=9090))
    assert r.code != 0
    assert 'conflict with "before-first-apply" using v1: .spec.ports[port=80,protocol="TCP"].targetPort' in r.err
    ok(api.kubectl("apply", "--server-side", "--field-manager=ssa", "-n", ns, "-f", "-",
                   input=SVC.format(name="bfa", target=8080)))
    assert sorted(managers(api, ns, "svc/bfa")) == ["before-first-apply", "ssa"]


@pytest.mark.parametrize("ua,manager", [("OpenAPI-Generator/33.1.0/python", "OpenAPI-Generator"),
                                        ("my\tclient/1.0", "myclient")])
def test_manager_from_user_agent(api: Api, ns: str, ua: str, manager: str) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ua"}, "data": {"a": "b"}}).encode()
    code, _, obj = api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body,
                               {"Content-Type": "application/json", "User-Agent": ua})
    assert code == 201, obj
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == [manager]
