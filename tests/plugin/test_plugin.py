"""The pytest plugin (kubesvc/testing/pytest_plugin.py), driven the way a user's suite drives it: inner test files in
a pytest subprocess (``pytester.runpytest_subprocess``) that loads the plugin through its ``pytest11`` entry point.

Inner tests write what they saw (the plane's processes with their start times, stores, addresses) to a JSON-lines
file; the outer test checks it after the inner run: every process the plane started is gone, whatever the inner
test did (failed with -x, raised KeyboardInterrupt, killed its own process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORD = '''
import json, os
from pathlib import Path

def record(cluster, **extra):
    procs = {}
    for pid in cluster.processes():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        procs[pid] = stat[stat.rindex(")") + 2:].split()[19]
    with open(os.environ["KUBESVC_PLUGIN_RECORD"], "a") as f:
        f.write(json.dumps({"store": cluster.store, "procs": procs, "components": sorted(cluster.ready),
                            "watchdog": cluster.watchdog.proc.pid, "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
                            "apiserver": cluster.ready.get("apiserver", {}).get("url"), **extra}) + "\\n")
'''

BACKEND = '''
BACKEND = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echo", "labels": {"app": "echo"}},
           "spec": {"containers": [{"name": "echo", "image": "python",
               "command": ["python3", "-m", "http.server", "8000", "--bind", "$(POD_IP)"],
               "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
               "ports": [{"containerPort": 8000, "name": "http"}],
               "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1}}]}}
'''


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _alive(pid: int, start: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0] != "Z" and fields[19] == start


def _wait_gone(pid: int, seconds: float = 60) -> None:
    """Wait (bounded) for a process that is not our child, e.g. a watchdog, to finish its work and exit."""
    deadline = time.monotonic() + seconds
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def _left_running(records: list[dict[str, Any]]) -> list[str]:
    return [f"{pid} ({_cmdline(int(pid))})" for r in records for pid, start in r["procs"].items() if _alive(int(pid), start)]


def _no_kubesvc_nft_table() -> None:
    if shutil.which("nft") and os.geteuid() == 0:
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert "kubesvc" not in {line.split()[-1] for line in out.splitlines() if line.startswith("table ")}, out  # the proxy's


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    record = pytester.path / "record.jsonl"
    monkeypatch.setenv("KUBESVC_PLUGIN_RECORD", str(record))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makepyfile(kubesvc_record=RECORD)
    return record


def _stop_leftovers(records: list[dict[str, Any]]) -> None:
    for r in records:
        subprocess.run([sys.executable, "-m", "kubesvc", "--store", r["store"], "down"], capture_output=True, timeout=60)


def test_loaded_but_idle_until_a_test_asks(pytester: pytest.Pytester, inner: Path) -> None:
    """Options, ini keys and the marker are registered; a session that never asks starts nothing and imports no
    kubesvc server code; a bad marker or scope is a clear error, not a traceback."""
    pytester.makepyfile(test_idle='''
import sys
import pytest

def test_nothing_started(request):
    assert request.config.pluginmanager.has_plugin("kubesvc")
    assert not [m for m in sys.modules if m.startswith(("kubesvc.dataplane", "kubesvc.store", "kubesvc.cli"))]
    assert request.config.stash[__import__("kubesvc.testing.pytest_plugin", fromlist=["_STATE"])._STATE].watchdog is None

@pytest.mark.kubesvc(nodes=9)
def test_nine_nodes(kubesvc_cluster):
    pass

@pytest.mark.kubesvc(components=["proxy", "etcd"])
def test_unknown_component(kubesvc_cluster):
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", timeout=120)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*nodes=9: want 0 (no kubelet) to 8*",
                                 "*unknown component etcd; choose from proxy, dns, apiserver, kubelet, ingress*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    # --help and a bad option value start nothing: in-process (a pytest process costs ~0.5 s of CPU to start), the
    # plugin still loaded by its entry point
    helped = pytester.runpytest_inprocess("--help")
    helped.stdout.fnmatch_lines(["*--kubesvc-scope*", "*--kubesvc-keep*", "*kubesvc_scope*", "*kubesvc_keep*"])
    bad = pytester.runpytest_inprocess("--kubesvc-scope", "class")
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(["*--kubesvc-scope*invalid choice*class*"])
    assert not inner.exists()


@pytest.mark.timeout(300)  # inner sessions of several planes: slow on a loaded 2-CPU machine
def test_a_session_plane_shared_by_tests_with_every_helper(pytester: pytest.Pytester, inner: Path) -> None:
    """kubesvc_scope=session (the ini key): one plane, the union of the components the tests ask for, shared by four
    tests that use kubeconfig with kubectl and the Python client, apply, wait_for, service_url (and its fallbacks when
    the proxy cannot bind a cluster port), resolve, port_forward, logs and kubesvc(); stopped at the end with
    everything it ran."""
    pytester.makepyfile(test_shared=BACKEND + '''
import urllib.request
import pytest
from kubesvc_record import record

@pytest.mark.kubesvc(components=["apiserver", "proxy"], nodes=1)
def test_apply_wait_and_reach(kubesvc_cluster):
    c = kubesvc_cluster
    got = c.apply(BACKEND)
    assert got[0]["kind"] == "Pod"
    c.apply("apiVersion: v1\\nkind: Service\\nmetadata: {name: echo}\\nspec:\\n  selector: {app: echo}\\n  ports: [{port: 8080, targetPort: http}]\\n")
    c.wait_for("pod/echo", "Ready")
    c.wait_for("endpoints/echo")
    url = c.service_url("echo", 8080)
    assert url == f"http://{c.get('service/echo')['spec']['clusterIP']}:8080"
    assert urllib.request.urlopen(url + "/", timeout=10).status == 200
    with c.port_forward("svc/echo", 8080) as fwd:
        assert urllib.request.urlopen(fwd.url + "/", timeout=10).status == 200
        assert fwd.proc.pid in c.processes()
    assert "GET / HTTP" in c.logs("echo")
    record(c)

@pytest.mark.kubesvc(components=["dns"])
def test_dns_and_clients(kubesvc_cluster):
    c = kubesvc_cluster
    assert set(c.ready) == {"apiserver", "proxy", "dns", "kubelet", "ingress"}  # the union (test_unmarked: all)
    ip = c.get("service/echo")["spec"]["clusterIP"]
    assert c.resolve("echo") == [ip]
    assert c.resolve("echo.default.svc.cluster.local.") == [ip]
    assert c.resolve("nosuch") == []
    pods = c.kubectl("get", "pods", "-o", "json")
    assert [p["metadata"]["name"] for p in pods["items"]] == ["echo"]
    table = c.kubectl("get", "svc", "echo")
    assert table.returncode == 0 and "echo" in table.stdout
    assert c.kubectl("get", "svc", "nosuch", check=False).returncode == 1
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(config_file=c.kubeconfig))
    assert api.read_namespaced_service("echo", "default").spec.cluster_ip == ip
    assert c.kubesvc("get", "svc", "echo", json=True)["spec"]["clusterIP"] == ip
    record(c)

def test_service_url_when_the_cluster_port_cannot_be_bound(kubesvc_cluster):
    """As for port 80 without root: the proxy cannot bind the cluster IP's port (here: this test holds it), so
    service_url answers with the NodePort, or without one with a port-forward to a pod."""
    import socket
    c = kubesvc_cluster
    held = [socket.create_server((ip, 8081)) for ip in ("127.96.0.50", "127.96.0.51")]
    try:
        for name, ip, kind in (("np", "127.96.0.50", "NodePort"), ("ci", "127.96.0.51", "ClusterIP")):
            c.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                     "spec": {"type": kind, "clusterIP": ip, "selector": {"app": "echo"}, "ports": [{"port": 8081, "targetPort": 8000}]}})
        c.wait_for("endpoints/np")
        node_port = c.get("service/np")["spec"]["ports"][0]["nodePort"]
        url = c.service_url("np")
        assert url.endswith(f":{node_port}")
        assert urllib.request.urlopen(url + "/", timeout=10).status == 200
        url = c.service_url("ci")
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":8081")
        assert urllib.request.urlopen(url + "/", timeout=10).status == 200
    finally:
        for sock in held:
            sock.close()

def test_unmarked(kubesvc_cluster):
    record(kubesvc_cluster)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "kubesvc_scope=session", timeout=180)
    records = _records(inner)
    try:
        result.assert_outcomes(passed=4)
        assert len({r["store"] for r in records}) == 1, records
        assert records[0]["components"] == ["apiserver", "dns", "ingress", "kubelet", "proxy"]  # unmarked: all
        assert len(records[0]["procs"]) >= 5  # the components and the pod
        _wait_gone(records[0]["watchdog"])
        assert _left_running(records) == []
        assert not Path(records[0]["store"] + ".d/watchdog.log").exists()  # the teardown did it, not the watchdog
        _no_kubesvc_nft_table()
    finally:
        _stop_leftovers(records)


@pytest.mark.parametrize("how", ["fails under -x", "KeyboardInterrupt", "kills its own process"])
def test_nothing_left_running_however_the_test_ends(pytester: pytest.Pytester, inner: Path, how: str) -> None:
    """A test that fails (with -x), is interrupted, or takes pytest down with it (os._exit: no teardown at all, the
    watchdog stops the plane): every process the plane started, its pod included, is gone afterwards."""
    end = {"fails under -x": "assert False, 'on purpose'", "KeyboardInterrupt": "raise KeyboardInterrupt",
           "kills its own process": "os._exit(3)"}[how]
    pytester.makepyfile(test_ends=BACKEND + f'''
import os
import pytest
from kubesvc_record import record

@pytest.mark.kubesvc(components=["apiserver", "proxy", "dns"], nodes=1)
def test_ends_badly(kubesvc_cluster):
    kubesvc_cluster.apply(BACKEND)
    kubesvc_cluster.wait_for("pod/echo", "Ready")
    record(kubesvc_cluster)
    {end}

def test_not_reached_under_x(kubesvc_cluster):
    record(kubesvc_cluster, second=True)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-x", "--kubesvc-scope", "function", timeout=120)
    records = _records(inner)
    try:
        assert len(records) == 1, (records, result.stdout.str())
        assert result.ret == {"fails under -x": 1, "KeyboardInterrupt": 2, "kills its own process": 3}[how]
        assert len(records[0]["procs"]) == 5  # apiserver, proxy, dns, kubelet and the pod
        _wait_gone(records[0]["watchdog"])
        assert _left_running(records) == []
        by_watchdog = Path(records[0]["store"] + ".d/watchdog.log").exists()
        assert by_watchdog == (how == "kills its own process")
        _no_kubesvc_nft_table()
    finally:
        _stop_leftovers(records)


def test_keep_leaves_the_plane_running_and_says_how_to_stop_it(pytester: pytest.Pytester, inner: Path) -> None:
    pytester.makepyfile(test_keep='''
import pytest
from kubesvc_record import record

@pytest.mark.kubesvc(components=["apiserver", "dns"])
def test_keep(kubesvc_cluster):
    record(kubesvc_cluster)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kubesvc-keep", timeout=120)
    records = _records(inner)
    try:
        result.assert_outcomes(passed=1)
        store = records[0]["store"]
        result.stdout.fnmatch_lines(["*kubesvc planes left running*",
                                     f"kubesvc: kept running for test_keep.py::test_keep (--kubesvc-keep): store {store}",
                                     f"  kubectl --kubeconfig {store}.d/kubeconfig get all",
                                     f"  stop it: kubesvc --store {store} down"])
        _wait_gone(records[0]["watchdog"])
        assert len(records[0]["procs"]) == 2
        assert len(_left_running(records)) == 2
        down = subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, "down"], capture_output=True, text=True, timeout=60)
        assert down.returncode == 0, down.stderr
        assert _left_running(records) == []
    finally:
        _stop_leftovers(records)


@pytest.mark.timeout(300)  # inner sessions of several planes: slow on a loaded 2-CPU machine
def test_xdist_workers_get_their_own_planes_and_the_example_passes(pytester: pytest.Pytester, inner: Path) -> None:
    """docs/commands/pytest.md's example (examples/pytest) as a user runs it, under pytest-xdist with two workers
    (each its own plane: own store, own ports), beside a file that records what its worker got."""
    for name in ("app.py", "backend.yaml", "test_app.py"):
        shutil.copy(ROOT / "examples" / "pytest" / name, pytester.path / name)
    pytester.makepyfile(test_workers='''
import pytest
from kubesvc_record import record

@pytest.mark.kubesvc(components=["apiserver", "dns"])
def test_one(kubesvc_cluster):
    record(kubesvc_cluster, dns=kubesvc_cluster.dns_address)

@pytest.mark.kubesvc(components=["apiserver", "dns"])
def test_two(kubesvc_cluster):
    record(kubesvc_cluster, dns=kubesvc_cluster.dns_address)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile", timeout=180)
    records = _records(inner)
    try:
        result.assert_outcomes(passed=4)
        assert len(records) == 2
        assert len({r["store"] for r in records}) == 2
        assert len({r["apiserver"] for r in records}) == 2
        assert len({tuple(r["dns"]) for r in records}) == 2
        for r in records:
            _wait_gone(r["watchdog"])
        assert _left_running(records) == []
    finally:
        _stop_leftovers(records)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"), reason="nodes=2 needs root, ip and nsenter")
def test_two_nodes_and_their_namespaces_go_at_teardown(pytester: pytest.Pytester, inner: Path) -> None:
    """nodes=2: `up --nodes 2` (a proxy and a kubelet per node, each node a network namespace); the teardown removes
    the namespaces with the processes."""
    pytester.makepyfile(test_nodes='''
import pytest
from kubesvc_record import record

@pytest.mark.kubesvc(components=["apiserver"], nodes=2)
def test_nodes(kubesvc_cluster):
    nodes = kubesvc_cluster.kubectl("get", "nodes", "-o", "json")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["kubesvc-node", "kubesvc-node-2"]
    record(kubesvc_cluster)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    records = _records(inner)
    try:
        result.assert_outcomes(passed=1)
        assert records[0]["components"] == ["apiserver", "kubelet", "kubelet-2"]
        _wait_gone(records[0]["watchdog"])
        assert _left_running(records) == []
        from kubesvc.dataplane import nodes

        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert nodes.prefix(records[0]["store"]) not in namespaces
    finally:
        _stop_leftovers(records)
