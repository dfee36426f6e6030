"""kubesvc's own verbs record the field managers kubectl's do (kubectl-create, kubectl-client-side-apply,
kubectl-label, kubectl-annotate, kubectl-expose, kubectl-run, kubectl-patch, kubectl-set), `get` hides
managedFields unless --show-managed-fields, and `apply --server-side` (conflicts, --force-conflicts,
--field-manager, removal of dropped fields) behaves as kubectl against the apiserver."""

from __future__ import annotations

import json

SVC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  selector: {{app: {name}}}
  ports:
  - port: 80
    targetPort: {target}
"""


def managed(cli, *what: str) -> list[dict]:
    r = cli("get", *what, "-o", "json", "--show-managed-fields")
    assert r.code == 0, r
    return json.loads(r.out)["metadata"].get("managedFields") or []


def managers(cli, *what: str) -> list[str]:
    r = cli("get", *what, "-o", "jsonpath={.metadata.managedFields[*].manager}")
    assert r.code == 0, r
    return r.out.split()


def test_verbs_record_kubectls_managers(cli, manifest):
    assert cli("create", "-f", manifest(SVC.format(name="web", target=8080))).code == 0
    assert managers(cli, "svc", "web") == ["kubectl-create"]
    assert cli("label", "svc", "web", "tier=front").code == 0
    assert cli("annotate", "svc", "web", "note=x").code == 0
    got = {e["manager"]: e for e in managed(cli, "svc", "web")}
    assert set(got) == {"kubectl-create", "kubectl-label", "kubectl-annotate"}
    assert got["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}
    assert got["kubectl-label"]["operation"] == "Update" and got["kubectl-label"]["apiVersion"] == "v1"
    assert cli("patch", "svc", "web", "-p", '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}').code == 0
    got = {e["manager"]: e for e in managed(cli, "svc", "web")}
    key = 'k:{"port":80,"protocol":"TCP"}'
    assert got["kubectl-patch"]["fieldsV1"]["f:spec"]["f:ports"][key] == {"f:targetPort": {}}
    assert "f:targetPort" not in got["kubectl-create"]["fieldsV1"]["f:spec"]["f:ports"][key]
    assert cli("run", "box", "--image=busybox", "--restart=Never").code == 0
    assert managers(cli, "pod", "box") == ["kubectl-run"]
    assert cli("expose", "pod", "box", "--port=80", "--name=box").code == 0
    assert managers(cli, "svc", "box") == ["kubectl-expose"]
    assert cli("set", "image", "pod/box", "box=busybox:1.36").code == 0
    assert "kubectl-set" in managers(cli, "pod", "box")
    assert cli("apply", "-f", manifest(SVC.format(name="csa", target=8080), "csa.yaml")).code == 0
    assert managers(cli, "svc", "csa") == ["kubectl-client-side-apply"]


def test_get_hides_managed_fields_unless_asked(cli, manifest):
    cli("create", "-f", manifest(SVC.format(name="web", target=8080)))
    assert "managedFields" not in cli("get", "svc", "web", "-o", "yaml").out
    assert "managedFields" not in cli("get", "svc", "web", "-o", "json").out
    assert "manager: kubectl-create" in cli("get", "svc", "web", "-o", "yaml", "--show-managed-fields").out


def test_server_side_apply(cli, manifest):
    path = manifest(SVC.format(name="web", target=8080))
    r = cli("apply", "--server-side", "-f", path)
    assert (r.code, r.out) == (0, "service/web serverside-applied\n")
    (entry,) = managed(cli, "svc", "web")
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    assert cli("apply", "--server-side", "-f", path).out == "service/web serverside-applied\n"
    other = manifest("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: 80\n"
                     "    targetPort: 9090\n", "other.yaml")
    r = cli("apply", "--server-side", "--field-manager=other", "-f", other)
    assert r.code == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.ports[port=80,protocol="TCP"].targetPort' in r.err
    assert "--force-conflicts" in r.err
    assert json.loads(cli("get", "svc", "web", "-o", "json").out)["spec"]["ports"][0]["targetPort"] == 8080
    r = cli("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", other)
    assert r.code == 0, r
    assert json.loads(cli("get", "svc", "web", "-o", "json").out)["spec"]["ports"][0]["targetPort"] == 9090
    assert sorted(managers(cli, "svc", "web")) == ["kubectl", "other"]
    # kubectl's apply drops its labels: nobody else owns them, so they go
    assert cli("apply", "--server-side", "-f", manifest(SVC.format(name="web", target=9090).replace(
        "  labels: {app: web}\n", ""), "nolabels.yaml")).code == 0
    assert "labels" not in json.loads(cli("get", "svc", "web", "-o", "json").out)["metadata"]


def test_server_side_apply_flags(cli, manifest):
    path = manifest(SVC.format(name="web", target=8080))
    r = cli("apply", "--force-conflicts", "-f", path)
    assert (r.code, r.err) == (1, "error: --force-conflicts only works with --server-side\n")
    r = cli("apply", "--server-side", "--dry-run=client", "-f", path)
    assert r.code == 1 and "--dry-run=client doesn't work with --server-side" in r.err
    r = cli("apply", "--server-side", "--dry-run=server", "-f", path)
    assert (r.code, r.out) == (0, "service/web serverside-applied (server dry run)\n")
    assert cli("get", "svc", "web").code == 1
