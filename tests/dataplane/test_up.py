"""`kubesvc up`, `status`, `down` from a shell, as a CI fixture would call them."""

from __future__ import annotations

import json
import re
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

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

    with urllib.request.urlopen(f"{api_url}/api/v1/namespaces/default/services/web", timeout=5) as resp:
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


def test_down_when_nothing_ever_ran(sh) -> None:  # type: ignore[no-untyped-def]
    r = sh("$KS down")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"kubesvc is not running for {sh.store}\n", "")


def test_up_fails_cleanly_when_healthz_port_is_taken(sh) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = sh(f"$KS up --components proxy --healthz-bind-address 127.0.0.1:{port} --metrics-bind-address 127.0.0.1:0")
    assert r.returncode == 1
    assert r.stderr.startswith("error: proxy exited with code 1 before it was ready")
    assert f"--healthz-bind-address 127.0.0.1:{port}" in r.stderr
    assert sh("$KS status").returncode == 3


def test_up_rejects_a_bad_flag_value_in_one_line(sh) -> None:  # type: ignore[no-untyped-def]
    r = sh("$KS up --udp-timeout soon")
    assert r.returncode == 1
    assert r.stderr == "error: --udp-timeout: invalid duration 'soon' (want e.g. 250ms, 10s, 1m)\n"
