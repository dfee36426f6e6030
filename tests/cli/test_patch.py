"""`kubesvc patch` against kubectl patch on the same store (through `kubesvc apiserver`): messages, errors and
exit codes; the three patch types, --patch-file, --dry-run, --subresource=status, -o, and `patched (no change)`."""

from __future__ import annotations

import json

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl

pytestmark = needs_kubectl

SVC = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  selector: {{app: web}}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""


def _svcs(api: Api, ns: str, *names: str) -> None:
    r = api.cli("create", "-n", ns, "-f", api.write(f"{ns}.yaml", "---\n".join(SVC.format(name=n) for n in names)))
    assert r.code == 0, r.err


def both(api: Api, *args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    k, s = api.kubectl(*args), api.cli(*args)
    return (k.code, k.out, k.err), (s.code, s.out, s.err)


def test_patch_types_print_as_kubectl(api: Api, ns: str) -> None:
    _svcs(api, ns, "k", "s")
    for args, out in (
        (["-p", '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}'], "patched"),
        (["--type", "merge", "-p", '{"metadata":{"labels":{"x":"y"}}}'], "patched"),
        (["--type=json", "-p", '[{"op":"add","path":"/metadata/labels/z","value":"1"}]'], "patched"),
        (["-p", "metadata:\n  labels:\n    yaml: 'yes'\n"], "patched"),
    ):
        k = api.kubectl("patch", "-n", ns, "svc", "k", *args)
        s = api.cli("patch", "-n", ns, "svc", "s", *args)
        assert (k.code, k.out.replace("/k ", "/s "), k.err) == (s.code, s.out, s.err) == (0, f"service/s {out}\n", "")
    kobj = json.loads(api.kubectl("get", "-n", ns, "svc", "k", "-o", "json").out)
    sobj = json.loads(api.kubectl("get", "-n", ns, "svc", "s", "-o", "json").out)
    assert kobj["spec"]["ports"] == sobj["spec"]["ports"] and sobj["spec"]["ports"][0]["targetPort"] == 9090
    assert kobj["metadata"]["labels"] == sobj["metadata"]["labels"] == {"app": "web", "x": "y", "z": "1", "yaml": "yes"}


def test_patch_no_change_and_dry_runs(api: Api, ns: str) -> None:
    _svcs(api, ns, "web")
    rev = api.revision()
    r = api.cli("patch", "-n", ns, "svc", "web", "-p", '{"metadata":{"labels":{"app":"web"}}}')
    assert (r.code, r.out, r.err) == (0, "service/web patched (no change)\n", "")
    assert api.revision() == rev
    for mode in ("client", "server"):
        k, s = both(api, "patch", "-n", ns, "svc", "web", "-p", '{"metadata":{"labels":{"f":"1"}}}', f"--dry-run={mode}")
        assert k == s == (0, "service/web patched\n", "")
        k, s = both(api, "patch", "-n", ns, "svc", "web", "-p", '{"metadata":{"labels":{"f":"2"}}}', f"--dry-run={mode}",
                    "-o", "jsonpath={.metadata.labels.f}")
        assert k == s == (0, "2", "")
    k, s = both(api, "patch", "-n", ns, "svc", "web", "-p", '{"metadata":{"labels":{"app":"web"}}}', "--dry-run=client")
    assert k == s == (0, "service/web patched (no change)\n", "")
    assert "f" not in json.loads(api.cli("get", "-n", ns, "svc", "web", "-o", "json").out)["metadata"]["labels"]


def test_patch_errors_as_kubectl(api: Api, ns: str, tmp_path: pytest.TempPathFactory) -> None:
    _svcs(api, ns, "web")
    for args in (
        ["svc", "web"],
        ["svc", "web", "-p", "{}", "--type", "foo"],
        ["svc", "-p", "{}"],
        ["-p", "{}"],
        ["svc/web", "--patch-file", "nope.json"],
        ["svc/web", "--patch-file", "nope.json", "-p", "{}"],
        ["svc", "nope", "-p", "{}"],
        ["svc", "web", "-p", '{"spec":{"type":"Bogus"}}'],
        ["svc", "web", "-p", '{"spec":{"ports":"x"}}'],
        ["svc", "web", "-p", "a: ["],
        ["svc", "web", "--type", "json", "-p", '{"a":1}'],
        ["svc", "web", "--type", "merge", "-p", "[1]"],
        ["svc", "web", "-p", "- a"],
        ["svc", "web", "-o", "wide", "-p", "{}"],
        ["svc", "web", "--local", "-p", "{}"],
        ["svc", "web", "--subresource=foo", "-p", "{}"],
    ):
        k = api.kubectl("patch", "-n", ns, *args)
        rev = api.revision()
        s = api.cli("patch", "-n", ns, *args)
        assert (k.code, k.out, k.err) == (s.code, s.out, s.err) and k.code == 1, args
        assert api.revision() == rev  # kubesvc wrote nothing (kubectl -o wide patches first, then fails)


def test_patch_file_status_subresource_and_f(api: Api, ns: str) -> None:
    _svcs(api, ns, "web")
    api.write("p.json", '{"metadata":{"labels":{"f":"1"}}}')
    r = api.cli("patch", "-n", ns, "svc/web", "--patch-file", "p.json")
    assert (r.code, r.out) == (0, "service/web patched\n"), r.err
    r = api.cli("patch", "-n", ns, "svc", "web", "--subresource=status",
               "-p", '{"status":{"loadBalancer":{"ingress":[{"ip":"127.0.0.9"}]}},"metadata":{"labels":{"g":"1"}}}')
    assert (r.code, r.out) == (0, "service/web patched\n"), r.err
    obj = json.loads(api.cli("get", "-n", ns, "svc", "web", "-o", "json").out)
    assert obj["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.9"}]
    assert obj["metadata"]["labels"] == {"app": "web", "f": "1"}  # status patch leaves the rest alone
    api.write("web.yaml", SVC.format(name="web"))
    r = api.cli("patch", "-n", ns, "-f", "web.yaml", "-p", '{"metadata":{"labels":{"h":"1"}}}', "-o", "name")
    assert (r.code, r.out) == (0, "service/web\n"), r.err
