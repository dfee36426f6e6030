"""`kubesvc wait`, `delete`'s kubectl flags (--wait, --now, --force, --cascade) and `replace` (--force), compared
with the real kubectl on the same store where they print the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl
from tests.support.procs import ROOT, wait_for

pytestmark = needs_kubectl


def _svc(api: Api, ns: str, name: str) -> None:
    r = api.cli("create", "service", "clusterip", name, "--tcp=80:8080", "-n", ns)
    assert r.code == 0, r.err


def test_wait_prints_and_exits_as_kubectl(api: Api, ns: str) -> None:
    _svc(api, ns, "web")
    for args in (
        ["--for=delete", "svc/nope", "--timeout=1s"],
        ["--for=condition=Ready", "svc/web", "--timeout=0.3s"],
        ["--for=jsonpath={.spec.type}=ClusterIP", "svc/web"],
        ["--for=jsonpath={.spec.type}=NodePort", "svc/web", "--timeout=0.3s"],
        ["--for=jsonpath={.spec.type}", "svc/web"],
        ["--for=create", "svc/web"],
        ["--for=create", "svc/nope", "--timeout=0.3s"],
        ["svc/web"],
        ["--for=foo", "svc/web"],
        ["--for=delete", "svc", "-l", "app=nomatch", "--timeout=1s"],
        ["--for=condition=Ready", "svc", "-l", "app=nomatch", "--timeout=1s"],
        ["--for=condition=Ready", "svc/nope", "--timeout=1s"],
    ):
        k, s = api.kubectl("wait", "-n", ns, *args), api.cli("wait", "-n", ns, *args)
        assert (k.code, k.out, k.err) == (s.code, s.out, s.err), (args, k, s)


def _polling(p: subprocess.Popen[str]) -> None:
    """Until the `kubesvc wait` process ``p`` sleeps in its polling loop (its wait channel is the kernel's nanosleep,
    what time.sleep blocks in; nothing before its first read sleeps): it has read its object, so a change made now is
    one it sees happen (made before, `--for=delete` would find nothing to report)."""

    def sleeping() -> bool:
        assert p.poll() is None, f"kubesvc wait exited ({p.returncode}) before polling"
        return "nanosleep" in Path(f"/proc/{p.pid}/wchan").read_text()

    wait_for(sleeping, timeout=30, interval=0.02, what=f"kubesvc wait (pid {p.pid}) polling")


def test_wait_returns_when_the_change_happens(api: Api, ns: str) -> None:
    _svc(api, ns, "web")
    base = [sys.executable, "-m", "kubesvc", "--store", api.store, "wait", "-n", ns, "--timeout=60s"]
    procs = [subprocess.Popen([*base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=api.env(),
                              cwd=str(ROOT)) for args in (["--for=jsonpath={.metadata.labels.ready}=yes", "svc/web"],
                                                          ["--for=delete", "svc/web"])]
    try:
        assert procs[0].stdout is not None
        _polling(procs[0])
        assert api.cli("label", "-n", ns, "svc", "web", "ready=yes").code == 0
        assert procs[0].communicate(timeout=60) == ("service/web condition met\n", "")
        _polling(procs[1])
        assert api.cli("delete", "-n", ns, "svc", "web").code == 0
        assert procs[1].communicate(timeout=60) == ("service/web condition met\n", "")
        assert [p.returncode for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_delete_flags_as_kubectl(api: Api, ns: str) -> None:
    _svc(api, ns, "d1")
    for args in (["--cascade=bogus"], ["--now", "--grace-period=3"], ["--force", "--grace-period=5"]):
        k, s = api.kubectl("delete", "-n", ns, "svc", "d1", *args), api.cli("delete", "-n", ns, "svc", "d1", *args)
        assert (k.code, k.out, k.err) == (s.code, s.out, s.err) and k.code == 1, (args, k, s)
    for args in (["--force", "--grace-period=0"], ["--force"], ["--now", "--cascade=orphan"], ["--wait=false"],
                 ["--cascade=foreground", "--timeout=10s"]):
        _svc(api, ns, "k1")
        _svc(api, ns, "k2")
        k = api.kubectl("delete", "-n", ns, "svc", "k1", *args)
        s = api.cli("delete", "-n", ns, "svc", "k2", *args)
        assert (k.code, k.out.replace("k1", "k2"), k.err) == (s.code, s.out, s.err) and k.code == 0, (args, k, s)
        assert api.cli("get", "-n", ns, "svc", "k2").code == 1  # gone when delete returns


def test_delete_cascade_orphan_keeps_dependents(api: Api, ns: str) -> None:
    """A Pod owned by a ReplicaSet goes with it (background), stays with --cascade=orphan, minus its reference."""
    for name in ("keep", "drop"):
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"rs": name}},
                       "template": {"metadata": {"labels": {"rs": name}},
                                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
        assert api.cli("create", "-n", ns, "-f", api.write(f"{ns}-{name}.json", json.dumps(rs))).code == 0
        uid = json.loads(api.cli("get", "-n", ns, "rs", name, "-o", "json").out)["metadata"]["uid"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{name}-pod", "labels": {"rs": name}, "ownerReferences": [
                   {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid, "controller": True}]},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        r = api.cli("create", "-n", ns, "-f", api.write(f"{ns}-{name}-pod.json", json.dumps(pod)))
        assert r.code == 0, r.err
    assert api.cli("delete", "rs", "keep", "-n", ns, "--cascade=orphan").code == 0
    assert api.cli("delete", "rs", "drop", "-n", ns).code == 0
    left = json.loads(api.cli("get", "pods", "-n", ns, "-o", "json").out)["items"]
    assert [o["metadata"]["name"] for o in left] == ["keep-pod"]
    assert "ownerReferences" not in left[0]["metadata"]  # orphaned: no reference to the deleted owner


def test_replace_and_force_as_kubectl(api: Api, ns: str) -> None:
    _svc(api, ns, "web")
    live = json.loads(api.cli("get", "-n", ns, "svc", "web", "-o", "json").out)
    live["spec"]["ports"][0]["targetPort"] = 9999
    api.write("rep.json", json.dumps(live))
    r = api.cli("replace", "-n", ns, "-f", "rep.json")
    assert (r.code, r.out, r.err) == (0, "service/web replaced\n", "")
    k, s = api.kubectl("replace", "-n", ns, "-f", "rep.json"), api.cli("replace", "-n", ns, "-f", "rep.json")
    assert (k.code, k.out, k.err) == (s.code, s.out, s.err) and k.code == 1 and "Conflict" in k.err  # stale resourceVersion
    fresh = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"selector": {"app": "x"}, "ports": [{"port": 81}]}}
    api.write("fresh.json", json.dumps(fresh))
    api.write("nope.json", json.dumps({**fresh, "metadata": {"name": "nope"}}))
    for args in (["-f", "fresh.json"], ["--force", "-f", "fresh.json"], ["-f", "fresh.json", "-o", "name"], [],
                 ["-f", "nope.json"], ["-f", "fresh.json", "--dry-run=server"], ["-f", "fresh.json", "--dry-run=client"]):
        k, s = api.kubectl("replace", "-n", ns, *args), api.cli("replace", "-n", ns, *args)
        assert (k.code, k.out, k.err) == (s.code, s.out, s.err), (args, k, s)
    before = json.loads(api.cli("get", "-n", ns, "svc", "web", "-o", "json").out)["metadata"]["uid"]
    r = api.cli("replace", "-n", ns, "--force", "--grace-period=0", "-f", "fresh.json")
    assert (r.code, r.out) == (0, 'service "web" deleted\nservice/web replaced\n'), r.err
    assert json.loads(api.cli("get", "-n", ns, "svc", "web", "-o", "json").out)["metadata"]["uid"] != before
