"""`kubesvc get`'s kubectl flags compared with the real kubectl on the same store: --sort-by, --field-selector,
-o go-template / template / go-template-file / jsonpath-as-json / jsonpath-file / custom-columns-file,
--show-managed-fields, and `get -w -o json` printing one object per event."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl
from tests.support.procs import ROOT

pytestmark = needs_kubectl


def _services(api: Api, ns: str) -> None:
    for name, port in (("s10", 300), ("s9", 100), ("a", 200)):
        r = api.cli("create", "service", "clusterip", name, f"--tcp={port}:80", "-n", ns)
        assert r.code == 0, r.err


def test_get_flags_print_as_kubectl(api: Api, ns: str) -> None:
    _services(api, ns)
    api.write("t.tmpl", '{{range .items}}{{.metadata.name}}={{index .metadata.labels "app"}}{{"\\n"}}{{end}}')
    api.write("p.jsonpath", "{.items[*].metadata.name}")
    api.write("cols.txt", "NAME PORT\n.metadata.name .spec.ports[0].port\n")
    for args in (
        ["--sort-by=.spec.ports[0].port", "-o", "custom-columns=N:.metadata.name,P:.spec.ports[0].port"],
        ["--sort-by={.metadata.name}", "-o", "name"],  # byte order: s10 before s9, as kubectl
        ["--sort-by=.spec.nope", "-o", "name"],
        ["--field-selector", "metadata.name=a", "-o", "name"],
        ["--field-selector", "metadata.name!=a,metadata.namespace=" + ns, "-o", "name"],
        ["--field-selector", "spec.foo=x"],
        ["--field-selector", "bad"],
        ["-o", "go-template={{range .items}}{{.metadata.name}} {{.spec.ports}} {{.nope}} {{len .spec.ports}}{{\"\\n\"}}{{end}}"],
        ["-o", "template={{range $i, $s := .items}}{{if eq $s.metadata.name \"a\"}}{{$i}}:A{{else}}{{printf \"%s-%v\" $s.metadata.name $i}}{{end}};{{end}}"],
        ["-o", "go-template={{.a"],
        ["-o", "go-template"],
        ["-o", "go-template-file=t.tmpl"],
        ["-o", "jsonpath-file=p.jsonpath"],
        ["-o", "jsonpath-file=nope"],
        ["-o", "custom-columns-file=cols.txt", "--sort-by=.metadata.name"],
        ["-o", "jsonpath-as-json={.items[*].metadata.name}"],
        ["-o", "foo"],
    ):
        k, s = api.kubectl("get", "svc", "-n", ns, *args), api.cli("get", "svc", "-n", ns, *args)
        assert (k.code, k.out, k.err) == (s.code, s.out, s.err), (args, k, s)
    k, s = (t("get", "svc", "a", "-n", ns, "-o", "jsonpath-as-json={.metadata.name} {.kind}") for t in (api.kubectl, api.cli))
    assert (k.code, k.out) == (s.code, s.out) == (0, '[\n    "a"\n]\n[\n    " "\n]\n[\n    "Service"\n]\n')


def test_managed_fields_are_stripped_unless_asked(api: Api, ns: str) -> None:
    """The managedFields the registry records never print as JSON or YAML unless --show-managed-fields."""
    _services(api, ns)
    r = api.cli("get", "-n", ns, "svc", "a", "-o", "json", "--show-managed-fields")
    assert r.code == 0 and json.loads(r.out)["metadata"]["managedFields"], r
    for args in (["svc", "a", "-o", "json"], ["svc", "-o", "yaml"]):  # (jsonpath and templates see them, as kubectl's)
        r = api.cli("get", "-n", ns, *args)
        assert r.code == 0 and "managedFields" not in r.out and "fieldsV1" not in r.out, args
    r = api.cli("patch", "-n", ns, "svc", "a", "-p", '{"metadata":{"labels":{"q":"1"}}}', "-o", "json")
    assert r.code == 0 and "managedFields" not in r.out


def test_watch_json_prints_one_object_per_event(api: Api, ns: str) -> None:
    _services(api, ns)
    p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", api.store, "get", "svc", "-n", ns, "-w", "-o", "json",
                          "--request-timeout", "5s"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=api.env(), cwd=str(ROOT))
    try:
        assert p.stdout is not None
        lines: list[str] = []
        while lines.count("}\n") < 3:  # the three listed objects, each on its own
            line = p.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        r = api.cli("label", "-n", ns, "svc", "a", "w=1")
        assert r.code == 0, r.err
        lines += p.stdout.readlines()  # until the request timeout ends the watch
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = "".join(lines)
    assert text.startswith('{\n    "apiVersion"'), text[:300]  # objects, not a List
    docs = json.JSONDecoder()
    objs, i = [], 0
    while i < len(text.strip()):
        obj, end = docs.raw_decode(text, i)
        objs.append(obj)
        i = end + 1
    assert [o["kind"] for o in objs] == ["Service"] * 4
    assert sorted(o["metadata"]["name"] for o in objs[:3]) == ["a", "s10", "s9"]
    assert objs[3]["metadata"]["labels"]["w"] == "1"
