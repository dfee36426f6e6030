"""get: kubectl's tables, -o formats, selectors, namespaces and watch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

AGE = re.compile(r"\b\d+s\b")


def mask_age(text: str) -> str:
    return AGE.sub("AGE", text)


def setup_services(cli):
    cli("create", "-f", "examples/services.yaml")
    cli("create", "service", "nodeport", "web", "--tcp=80:8080", "--node-port=30080")


def test_get_svc_table(cli):
    setup_services(cli)
    out = cli("get", "svc").out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["db"][1:5] == ["ClusterIP", "None", "<none>", "5432/TCP"]
    assert rows["ext"][1:5] == ["ExternalName", "<none>", "example.com", "<none>"]
    assert rows["lb"][1] == "LoadBalancer" and rows["lb"][3].startswith("127.240.")
    assert re.fullmatch(r"443:3\d{4}/TCP", rows["lb"][4])
    assert rows["web"][4] == "80:30080/TCP"
    # columns separated by at least three spaces, aligned
    starts = [ln.index("TYPE") if i == 0 else None for i, ln in enumerate(lines[:1])]
    assert all(ln[starts[0] - 3:starts[0]] == "   " for ln in lines)


def test_get_wide_has_selector(cli):
    setup_services(cli)
    lines = cli("get", "svc", "-o", "wide").out.splitlines()
    assert lines[0].split()[-1] == "SELECTOR"
    assert lines[-1].split()[-1] == "app=web"
    assert [ln.split()[-1] for ln in lines if ln.startswith("ext ")] == ["<none>"]


def test_no_resources_found(cli):
    r = cli("get", "svc")
    assert (r.code, r.out, r.err) == (0, "", "No resources found in default namespace.\n")
    r = cli("get", "svc", "-A")
    assert r.err == "No resources found\n"
    r = cli("get", "svc", "-n", "kube-system")
    assert r.err == "No resources found in kube-system namespace.\n"


def test_output_yaml_json_name(cli):
    setup_services(cli)
    y = cli("get", "svc", "web", "-o", "yaml").out
    assert y.startswith("apiVersion: v1\nkind: Service\nmetadata:\n")
    assert "  ports:\n  - name: 80-8080\n" in y
    j = json.loads(cli("get", "svc", "-o", "json").out)
    assert j["kind"] == "List" and j["metadata"] == {"resourceVersion": ""} and len(j["items"]) == 4
    assert cli("get", "svc", "-o", "name").out == "service/db\nservice/ext\nservice/lb\nservice/web\n"


def test_jsonpath_and_custom_columns(cli):
    setup_services(cli)
    ip = cli("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}").out
    assert re.fullmatch(r"127\.\d+\.\d+\.\d+", ip)  # no trailing newline
    names = cli("get", "svc", "-o", "jsonpath={.items[*].metadata.name}").out
    assert names == "db ext lb web"
    out = cli("get", "svc", "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}").out
    assert out == "db\next\nlb\nweb\n"
    cc = cli("get", "svc", "-o", "custom-columns=NAME:.metadata.name,PORTS:.spec.ports[*].port,X:.spec.nope").out
    lines = cc.splitlines()
    assert lines[0].split() == ["NAME", "PORTS", "X"]
    assert lines[1].split() == ["db", "5432", "<none>"]


def test_labels_selectors_and_namespaces(cli):
    cli("create", "namespace", "other")
    cli("create", "service", "clusterip", "a", "--tcp=80")
    cli("create", "service", "clusterip", "b", "--tcp=80")
    cli("create", "service", "clusterip", "c", "--tcp=80", "-n", "other")
    cli("label", "svc", "a", "tier=fe")
    assert cli("get", "svc", "-l", "tier=fe", "-o", "name").out == "service/a\n"
    assert cli("get", "svc", "-l", "tier!=fe", "-o", "name").out == "service/b\n"
    assert cli("get", "svc", "-l", "app in (a,c)", "-A", "-o", "name").out == "service/a\nservice/c\n"
    out = cli("get", "svc", "-A").out.splitlines()
    assert out[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [ln.split()[:2] for ln in out[1:]] == [["default", "a"], ["default", "b"], ["other", "c"]]
    out = cli("get", "svc", "--show-labels", "--no-headers").out.splitlines()
    assert out[0].split()[-1] == "app=a,tier=fe" and out[1].split()[-1] == "app=b"
    out = cli("get", "svc", "-L", "tier").out.splitlines()
    assert out[0].split()[-1] == "TIER"


def test_several_types_and_not_found(cli):
    setup_services(cli)
    r = cli("get", "svc/web", "ep/web", "svc/nosuch")
    assert r.code == 1
    assert "service/web" in r.out and "endpoints/web" in r.out
    assert r.err == 'Error from server (NotFound): services "nosuch" not found\n'
    r = cli("get", "SVC")
    assert (r.code, r.err) == (1, 'error: the server doesn\'t have a resource type "SVC"\n')


def test_get_all_and_other_kinds(cli):
    cli("create", "-f", "examples/web.yaml")
    cli("create", "-f", "examples/rc.yaml")
    cli("create", "-f", "examples/deployment.yaml")
    out = cli("get", "all").out
    assert "pod/web-1" in out and "service/web" in out and "replicationcontroller/echo" in out
    assert "deployment.apps/api" in out
    ep = cli("get", "ep", "web").out.splitlines()
    assert ep[0].split() == ["NAME", "ENDPOINTS", "AGE"]
    assert ep[1].split()[1] == "127.0.0.11:8080,127.0.0.12:8080"
    pods = cli("get", "pods").out.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert cli("get", "ns", "-o", "name").out.splitlines()[0] == "namespace/default"


def test_watch_sees_a_create_from_another_process(store_path):
    env = dict(os.environ, KUBESVC_STORE=store_path)
    subprocess.run([sys.executable, "-m", "kubesvc", "create", "service", "clusterip", "first", "--tcp=80"], env=env, check=True)
    w = subprocess.Popen([sys.executable, "-m", "kubesvc", "get", "svc", "-w", "--request-timeout=20s"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = w.stdout.readline()
        assert first.split()[0] == "NAME"
        assert w.stdout.readline().split()[0] == "first"
        subprocess.run([sys.executable, "-m", "kubesvc", "create", "service", "clusterip", "second", "--tcp=80"], env=env, check=True)
        line = w.stdout.readline()
        assert line.split()[0] == "second"
    finally:
        w.terminate()
        try:
            w.wait(timeout=5)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
