"""apply (created/unchanged/configured), delete forms, label and annotate."""

from __future__ import annotations

import json

SVC = """apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {{app: web}}
spec:
  selector: {{app: web}}
  ports:
  - port: {port}
"""


def test_apply_created_unchanged_configured(cli, manifest):
    path = manifest(SVC.format(port=80))
    assert cli("apply", "-f", path).out == "service/web created\n"
    obj = json.loads(cli("get", "svc", "web", "-o", "json").out)
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["ports"] == [{"port": 80}]
    assert cli("apply", "-f", path).out == "service/web unchanged\n"
    path2 = manifest(SVC.format(port=81), "b.yaml")
    assert cli("apply", "-f", path2).out == "service/web configured\n"
    obj2 = json.loads(cli("get", "svc", "web", "-o", "json").out)
    assert [p["port"] for p in obj2["spec"]["ports"]] == [81]
    assert obj2["spec"]["clusterIP"] == obj["spec"]["clusterIP"]
    # kubectl's client dry run does not diff: an existing object is "configured", whatever would change
    assert cli("apply", "-f", path2, "--dry-run=client").out == "service/web configured (dry run)\n"
    assert cli("apply", "-f", path2, "--dry-run=server").out == "service/web unchanged (server dry run)\n"


def test_apply_invalid_reports_and_leaves_live_object(cli, manifest):
    cli("apply", "-f", manifest(SVC.format(port=80)))
    r = cli("apply", "-f", manifest(SVC.format(port=80) + "    protocol: HTTP\n", "bad.yaml"))
    assert r.code == 1
    assert r.err == 'The Service "web" is invalid: spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"\n'
    assert json.loads(cli("get", "svc", "web", "-o", "json").out)["spec"]["ports"][0]["port"] == 80


def test_delete_forms(cli, manifest):
    path = manifest(SVC.format(port=80), "one.yaml")
    cli("create", "-f", path)
    assert cli("delete", "svc", "web").out == 'service "web" deleted\n'
    r = cli("delete", "svc", "web")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): services "web" not found\n')
    assert cli("delete", "svc", "web", "--ignore-not-found").code == 0
    r = cli("delete", "-f", path)
    assert r.err == f'Error from server (NotFound): error when deleting "{path}": services "web" not found\n'
    cli("create", "-f", path)
    assert cli("delete", "-f", path).out == 'service "web" deleted\n'
    for n in ("a", "b"):
        cli("create", "service", "clusterip", n, "--tcp=80")
    cli("label", "svc", "a", "gone=yes")
    assert cli("delete", "svc", "-l", "gone=yes").out == 'service "a" deleted\n'
    assert cli("delete", "svc", "--all").out == 'service "b" deleted\n'
    r = cli("delete", "svc")
    assert r.code == 1 and r.err.startswith("error: resource(s) were provided, but no name was specified")


def test_delete_namespace_deletes_contents_and_releases(cli, store_path):
    cli("create", "namespace", "tmp")
    cli("create", "service", "nodeport", "np", "--tcp=80", "--node-port=30111", "-n", "tmp")
    assert cli("delete", "ns", "tmp").out == 'namespace "tmp" deleted\n'
    assert cli("get", "svc", "np", "-n", "tmp").code == 1
    assert cli("create", "service", "nodeport", "np", "--tcp=80", "--node-port=30111").code == 0
    r = cli("delete", "ns", "default")
    assert r.code == 1 and r.err == 'Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted\n'


def test_label_and_annotate(cli):
    cli("create", "service", "clusterip", "web", "--tcp=80")
    assert cli("label", "svc", "web", "tier=fe").out == "service/web labeled\n"
    r = cli("label", "svc", "web", "tier=be")
    assert (r.code, r.err) == (1, "error: 'tier' already has a value (fe), and --overwrite is false\n")
    assert cli("label", "svc", "web", "tier=be", "--overwrite").out == "service/web labeled\n"
    assert cli("label", "svc", "web", "tier-").out == "service/web unlabeled\n"
    assert cli("label", "svc/web", "app=web").out == "service/web not labeled\n"
    r = cli("label", "svc", "web", "bad key=x")
    assert r.code == 1 and r.err.startswith('The Service "web" is invalid: metadata.labels: Invalid value: "bad key"')
    assert cli("annotate", "svc", "web", "owner=team-a").out == "service/web annotated\n"
    obj = json.loads(cli("get", "svc", "web", "-o", "json").out)
    assert obj["metadata"]["annotations"] == {"owner": "team-a"}
    assert obj["metadata"]["labels"] == {"app": "web"}


def test_apply_over_a_created_object_warns_like_kubectl(cli, manifest):
    path = manifest(SVC.format(port=80))
    cli("create", "-f", path)
    r = cli("apply", "-f", path)
    assert r.code == 0 and r.out == "service/web configured\n"
    assert r.err == ("Warning: resource services/web is missing the kubectl.kubernetes.io/last-applied-configuration "
                     "annotation which is required by kubectl apply. kubectl apply should only be used on resources "
                     "created declaratively by either kubectl create --save-config or kubectl apply. The missing "
                     "annotation will be patched automatically.\n")
    assert cli("apply", "-f", path).out == "service/web unchanged\n"
