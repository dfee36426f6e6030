"""`kubesvc ingress` as a controller: class ownership, default backends, status written for `get ing`,
named service ports, and the command's one-line errors (bind failures, bad flags)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

from tests.dataplane import ingress_fixtures
from tests.dataplane.ingress_fixtures import Bed, three
from tests.support.procs import ROOT, wait_for

make_bed = ingress_fixtures.make_bed  # the fixture


def kubesvc(bed: Bed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", bed.store_path, *args], capture_output=True, text=True,
                          timeout=30, cwd=str(ROOT))


def test_status_address_shown_by_get_and_describe_then_removed_on_stop(make_bed: Any) -> None:
    bed: Bed = make_bed()
    three(bed)
    bed.ingress("web", [("web.test", [("/", "Prefix", "svc-a")]), ("api.test", [("/v1", "Exact", "svc-b")])],
                tls=[{"hosts": ["web.test"], "secretName": "web-cert"}])
    bed.ingress("theirs", [("x.test", [("/", "Prefix", "svc-a")])], cls="other")
    bed.start()

    def table() -> list[list[str]]:
        out = kubesvc(bed, "get", "ing").stdout
        return [ln.split(None, 3) for ln in out.splitlines()]

    wait_for(lambda: any(r[0] == "web" and "127.0.0.1" in r[3] for r in table()), timeout=10, what="ADDRESS in get ing")
    out = kubesvc(bed, "get", "ing").stdout.splitlines()
    assert out[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    web = next(ln for ln in out if ln.startswith("web "))
    assert web.split()[:6] == ["web", "kubesvc", "web.test,api.test", "127.0.0.1", "80,", "443"]
    theirs = next(ln for ln in out if ln.startswith("theirs "))
    assert theirs.split()[:4] == ["theirs", "other", "x.test", "80"]  # not ours: no address
    desc = kubesvc(bed, "describe", "ing", "web").stdout
    assert "127.0.0.1" in desc and "web.test" in desc and "svc-a:80" in desc
    assert bed.proc is not None and bed.proc.stop() == 0
    obj = bed.store.get("Ingress", "default", "web")
    assert obj is not None and not (obj.get("status") or {}).get("loadBalancer", {}).get("ingress")


def test_class_less_ingress_served_once_our_class_is_default(make_bed: Any) -> None:
    bed: Bed = make_bed()
    three(bed)
    bed.apply({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "other"},
               "spec": {"controller": "example.com/other"}})
    bed.ingress("noclass", [("noclass.test", [("/", "Prefix", "svc-a")])], cls=None)
    bed.ingress("other", [("other.test", [("/", "Prefix", "svc-b")])], cls="other")
    bed.start()
    bed.sync()
    assert bed.who("noclass.test", "/") == "404" and bed.who("other.test", "/") == "404"
    r = kubesvc(bed, "annotate", "ingressclass", "kubesvc", "ingressclass.kubernetes.io/is-default-class=true")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: bed.who("noclass.test", "/") == "a", timeout=10, what="class-less Ingress served")
    assert bed.who("other.test", "/") == "404"


def test_default_backend_serves_every_host_path_and_method(make_bed: Any) -> None:
    bed: Bed = make_bed()
    three(bed)
    bed.ingress("dflt", default="svc-c")
    bed.ingress("named", [("named.test", [("/", "Prefix", "svc-a")])], port="http")  # service port by name
    bed.start()
    bed.sync()
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        status, _, body = bed.request(method, "/any/path", host="whatever.test", body=b"x" if method != "GET" else None)
        assert status == 200 and json.loads(body) | {"method": method, "name": "c"} == json.loads(body)
    assert bed.who("named.test", "/") == "a"
    status, _, body = bed.request("GET", "/", host=None)  # http.client sends Host 127.0.0.1:port
    assert json.loads(body)["name"] == "c"


def test_bind_failure_is_one_line(make_bed: Any) -> None:
    bed: Bed = make_bed()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = kubesvc(bed, "ingress", "--http-address", f"127.0.0.1:{port}", "--https-address", "127.0.0.1:0")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} (--http-address): Address already in use (another process listens there)"]


def test_bad_flags_are_one_line(make_bed: Any) -> None:
    bed: Bed = make_bed()
    for args, text in ((["--http-address", "nonsense"], 'invalid --http-address "nonsense"'),
                       (["--proxy-body-size", "lots"], "--proxy-body-size: invalid size 'lots'"),
                       (["--proxy-read-timeout", "-1s"], "--proxy-read-timeout: invalid duration"),
                       (["--http-address", "", "--https-address", ""], "nothing to serve")):
        r = kubesvc(bed, "ingress", *args)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, (args, r.stderr)


def test_sigterm_lets_requests_in_flight_finish(make_bed: Any) -> None:
    import signal
    import threading

    bed: Bed = make_bed()
    three(bed)
    bed.ingress("slow", [("slow.test", [("/", "Prefix", "svc-a")])])
    bed.start()
    bed.sync()
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(r=bed.request("GET", "/sleep/1", host="slow.test")))
    t.start()
    assert bed.proc is not None
    wait_for(lambda: any(s[1] == "/sleep/1" for b in bed.backends for s in b.seen), timeout=10, what="request at the backend")
    bed.proc.p.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"][0] == 200 and bed.proc.p.wait(10) == 0
