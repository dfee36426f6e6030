"""`kubesvc up`, `status`, `down` from a shell, as a CI fixture would call them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dataplane.conftest import random_subnet
from tests.support.procs import ROOT, wait_for


@pytest.fixture
def sh(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    store = str(tmp_path / "store.db")

    def run(cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBESVC_STORE=store, KS=f"{sys.executable} -m kubesvc")
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=timeout)

    run.store = store  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        run("$KS down")
        for name in ("proxy", "dns", "apiserver", "kubelet", "ingress"):
            pid_file = Path(store + f".d/{name}.pid")
            if pid_file.exists():  # down failed: never leave a process behind
                try:
                    os.killpg(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)
                except (ProcessLookupError, ValueError, KeyError):
                    pass


UP = ("$KS up --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --nodeport-addresses {node}/32"
      " --dns-listen {node}:0 --apiserver-address 127.0.0.1:0"
      " --ingress-http-address {node}:0 --ingress-https-address {node}:0")


def test_up_status_down_cycle(sh, backend) -> None:  # type: ignore[no-untyped-def]
    node = random_subnet() + "254"
    b = backend("one", random_subnet() + "1", 0, "count")
    r = sh(f"""$KS create -f - <<EOF
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{selector: {{app: web}}, ports: [{{name: http, port: 8080, targetPort: {b.port}}}], type: NodePort}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-1, labels: {{app: web}}}}
spec: {{containers: [{{name: c, image: x}}]}}
status: {{phase: Running, podIP: {b.host}}}
EOF""")
    assert r.returncode == 0, r.stderr

    r = sh(UP.format(node=node))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("proxy: running (pid ")
    assert "\ndns: running (pid " in r.stdout and "\napiserver: running (pid " in r.stdout
    assert "\nkubelet: running (pid " in r.stdout and "\ningress: running (pid " in r.stdout
    ingress_http = re.search(r"ingress: running .* http=(\S+)", r.stdout).group(1)
    api_url = re.search(r"url=(\S+)", r.stdout).group(1)
    assert "healthz=127.0.0.1:" in r.stdout and f"logs: {sh.store}.d/" in r.stdout
    dns_port = re.search(rf"udp={re.escape(node)}:(\d+)", r.stdout).group(1)
    dig = subprocess.run(["dig", "+short", "+time=2", "+tries=1", "-p", dns_port, f"@{node}", "web.default.svc.cluster.local"],
                         capture_output=True, text=True, timeout=10)

    # Serving right after `up` returns: no sleep needed.
    ip = sh("$KS get svc web -o jsonpath='{.spec.clusterIP}'").stdout
    assert dig.stdout.strip() == ip  # the DNS server that `up` started answers for the Service
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"{api_url}/api/v1/namespaces/default/services/web", timeout=5,
                                context=api_ssl_context(sh.store, api_url)) as resp:
        assert json.loads(resp.read())["spec"]["clusterIP"] == ip  # and so does the API server
    try:  # and the ingress router: no Ingress yet, so a plain 404
        urllib.request.urlopen(f"http://{ingress_http}/", timeout=5)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    with socket.create_connection((ip, 8080), timeout=5) as s:
        s.sendall(b"abc")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(100) == b"one:3\n"

    again = sh(UP.format(node=node))
    assert again.returncode == 0
    assert again.stdout.startswith(f"kubesvc is already running for {sh.store}\n")

    st = sh("$KS status")
    assert st.returncode == 0, st.stderr
    assert "proxy: running" in st.stdout and "dns: running" in st.stdout
    assert f"default/web:http  {ip}:8080/TCP (cluster), {node}:" in st.stdout
    assert "endpoints=1" in st.stdout

    pid = json.loads(Path(sh.store + ".d/proxy.pid").read_text())["pid"]
    dns_pid = json.loads(Path(sh.store + ".d/dns.pid").read_text())["pid"]
    api_pid = json.loads(Path(sh.store + ".d/apiserver.pid").read_text())["pid"]
    kubelet_pid = json.loads(Path(sh.store + ".d/kubelet.pid").read_text())["pid"]
    ingress_pid = json.loads(Path(sh.store + ".d/ingress.pid").read_text())["pid"]
    down = sh("$KS down")
    assert down.returncode == 0
    assert down.stdout == (f"proxy: stopped (pid {pid})\ndns: stopped (pid {dns_pid})\napiserver: stopped (pid {api_pid})\n"
                           f"kubelet: stopped (pid {kubelet_pid})\ningress: stopped (pid {ingress_pid})\n")
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1], timeout=5)

    st = sh("$KS status")
    assert st.returncode == 3
    assert st.stdout == f"kubesvc is not running for {sh.store}\n"
    down = sh("$KS down")
    assert (down.returncode, down.stdout) == (0, f"kubesvc is not running for {sh.store}\n")


def api_ssl_context(store: str, url: str) -> ssl.SSLContext | None:
    """Trust the store's CA and present its admin certificate (the API server serves https by default)."""
    if not url.startswith("https://"):
        return None
    pki = Path(store + ".d") / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    return ctx


def test_down_when_nothing_ever_ran(sh) -> None:  # type: ignore[no-untyped-def]
    r = sh("$KS down")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"kubesvc is not running for {sh.store}\n", "")


def test_up_fails_cleanly_when_healthz_port_is_taken(sh) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = sh(f"$KS up --components proxy --healthz-bind-address 127.0.0.1:{port} --metrics-bind-address 127.0.0.1:0")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"error: cannot listen on 127.0.0.1:{port} (--healthz-bind-address): Address already in use; "
                        "choose another --healthz-bind-address (port 0 picks a free one)\n")
    assert not Path(sh.store + ".d/proxy.pid").exists()  # checked before anything started
    assert sh("$KS status").returncode == 3


@contextmanager
def holding(*addrs: tuple[str, int]) -> Iterator[None]:
    """Listen on each address that is free (a busy machine: a web server on :80, a cluster on :6443...)."""
    socks = []
    try:
        for host, port in addrs:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM) if port == 53 or port == 1053 else (socket.SOCK_STREAM,):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind((host, port))
                    if kind == socket.SOCK_STREAM:
                        s.listen()
                except OSError:
                    s.close()
                    continue
                socks.append(s)
        yield
    finally:
        for s in socks:
            s.close()


BUSY = [("127.0.0.1", 80), ("127.0.0.1", 443), ("127.0.0.1", 8080), ("127.0.0.1", 8443), ("127.0.0.1", 6443),
        ("127.0.0.1", 10256), ("127.0.0.1", 10249)]


def test_default_addresses_that_are_taken_fall_back_and_say_so(sh) -> None:  # type: ignore[no-untyped-def]
    net = random_subnet()
    assert sh(f"$KS init --service-cluster-ip-range {net}0/24").returncode == 0
    dns_ip = net + "10"  # kube-dns: the 10th address of the range
    with holding(*BUSY, (dns_ip, 53), (dns_ip, 1053)):
        r = sh("$KS up --components proxy,dns,apiserver,ingress")
        assert r.returncode == 0, r.stderr
        st = sh("$KS status")
    bound = dict(re.findall(r" (healthz|metrics|udp|address|http|https)=(\S+)", r.stdout))
    bound["healthz"] = re.findall(r"^proxy: .* healthz=(\S+)", r.stdout, re.M)[0]  # dns and ingress have one too
    for key in ("healthz", "metrics", "udp", "address", "http", "https"):
        assert not bound[key].endswith(tuple(f":{p}" for _, p in BUSY)), bound
    assert bound["udp"].startswith(dns_ip + ":")
    notes = [line for line in r.stdout.splitlines() if "; listening on " in line]
    assert notes == [
        f"proxy: 127.0.0.1:10256 is in use; listening on {bound['healthz']}",
        f"proxy: 127.0.0.1:10249 is in use; listening on {bound['metrics']}",
        f"dns: {dns_ip}:53 is in use; listening on {bound['udp']}",
        f"apiserver: 127.0.0.1:6443 is in use; listening on {bound['address']}",
        f"ingress: 127.0.0.1:80 is in use; listening on {bound['http']}",
        f"ingress: 127.0.0.1:443 is in use; listening on {bound['https']}",
    ]
    assert st.returncode == 0 and [line for line in st.stdout.splitlines() if "; listening on " in line] == notes
    dig = subprocess.run(["dig", "+short", "+time=2", "+tries=1", "-p", bound["udp"].rpartition(":")[2], f"@{dns_ip}",
                          "kube-dns.kube-system.svc.cluster.local"], capture_output=True, text=True, timeout=10)
    assert dig.stdout.strip() == dns_ip


def test_an_explicit_address_that_is_taken_is_an_error_naming_its_flag(sh) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag, comp in (("--apiserver-address", "apiserver"), ("--ingress-http-address", "ingress"),
                           ("--dns-listen", "dns")):
            r = sh(f"$KS up --components {comp} {flag} 127.0.0.1:{port}")
            assert (r.returncode, r.stdout) == (1, ""), flag
            assert r.stderr == (f"error: cannot listen on 127.0.0.1:{port} ({flag}): Address already in use; "
                                f"choose another {flag} (port 0 picks a free one)\n")
    assert sh("$KS status").returncode == 3


def ci_recipe() -> str:
    """The CI recipe in docs/commands/up.md, as written."""
    text = (ROOT / "docs/commands/up.md").read_text()
    return text.split("<!-- ci-recipe -->", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_ci_recipe_in_the_docs_works_on_a_busy_machine(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "kubesvc").write_text(f"#!/bin/sh\nexec {sys.executable} -m kubesvc \"$@\"\n")
    (shim / "kubesvc").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESVC_")}
    env.update(PATH=f"{shim}:{env['PATH']}", RUNNER_TEMP=str(tmp_path), HOME=str(tmp_path))
    store = str(tmp_path / "kubesvc.db")
    try:
        with holding(*BUSY):
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", ci_recipe()], capture_output=True, text=True,
                               env=env, cwd=str(tmp_path), timeout=120)
        assert r.returncode == 0, r.stderr
        for comp in ("proxy", "dns", "apiserver", "kubelet", "ingress"):
            assert f"\n{comp}: stopped (pid " in "\n" + r.stdout
        assert (tmp_path / "kubeconfig").stat().st_mode & 0o777 == 0o600
        assert "apiserver: running (pid" in r.stdout
    finally:
        subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, "down"], capture_output=True, env=env, timeout=60)


def test_up_rejects_a_bad_flag_value_in_one_line(sh) -> None:  # type: ignore[no-untyped-def]
    r = sh("$KS up --udp-timeout soon")
    assert r.returncode == 1
    assert r.stderr == "error: --udp-timeout: invalid duration 'soon' (want e.g. 250ms, 10s, 1m)\n"


def test_the_kubelet_is_told_where_up_put_the_dns_server(sh) -> None:  # type: ignore[no-untyped-def]
    """netns pods reach the cluster DNS through the kubelet's relay: off the kube-dns IP's port 53 (a fallback or
    --dns-listen), the kubelet is started with --cluster-dns naming that address."""
    node = random_subnet() + "254"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((node, 0))
        port = probe.getsockname()[1]
    r = sh(f"$KS up --components dns,kubelet --dns-listen {node}:{port}")
    assert r.returncode == 0, r.stderr
    started = Path(sh.store + ".d/kubelet.log").read_text().splitlines()[0]
    assert started.endswith(f"kubelet --isolation loopback --cluster-dns {node}:{port}"), started
