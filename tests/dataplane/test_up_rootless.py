"""`kubesvc up` run by an unprivileged user: every component starts, default privileged ports fall back.

The suite runs as root; these tests create the system user ``kubesvc-test`` (once) and run the real CLI as that
user (``runuser``), from a venv made with a Python that user can execute (root's own interpreter may live under
/root, which others cannot read). The venv reuses the test venv's packages through a ``.pth`` line instead of
installing them again, so it costs a fraction of a second; both interpreters must be the same X.Y.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dataplane.conftest import random_subnet

USER = "kubesvc-test"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
UP_EPHEMERAL = "--healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --apiserver-address 127.0.0.1:0"


def _system_python() -> str | None:
    """A python3.X (the suite's X.Y, for its compiled packages) outside root's home, executable by others."""
    want = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for d in ("/usr/bin", "/usr/local/bin", "/opt/python/bin"):
        p = Path(d) / want
        if p.exists() and os.stat(p).st_mode & 0o001:
            return str(p)
    return None


@dataclass
class Rootless:
    base: Path
    python: str
    uid: int
    gid: int

    def store_dir(self, name: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        d.chmod(0o755)
        os.chown(d, self.uid, self.gid)
        return d

    def run(self, store: Path, cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubesvc --store STORE`` + cmd, by the unprivileged user, in a bash like a shell user's."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(store.parent), "LANG": "C.UTF-8",
               "KS": f"{self.python} -m kubesvc --store {store}"}
        return subprocess.run([RUNUSER, "-u", USER, "--", "bash", "-c", cmd], capture_output=True, text=True,
                              env=env, cwd=str(store.parent), timeout=timeout)


@pytest.fixture(scope="session")
def rootless() -> Iterator[Rootless]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates the unprivileged user kubesvc-test and runs kubesvc as it")
    for tool in ("useradd", "runuser", "dig"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (make sysdeps installs it)")
    python = _system_python()
    if python is None:
        pytest.skip(f"needs a python{sys.version_info.major}.{sys.version_info.minor} that {USER} can run, "
                    "outside /root (Debian: apt-get install python3; make sysdeps does)")
    if subprocess.run(["id", "-u", USER], capture_output=True).returncode:
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                           capture_output=True, text=True)
        if r.returncode not in (0, 9):  # 9: made meanwhile by a parallel worker
            pytest.skip(f"cannot create the user {USER}: {r.stderr.strip()}")
    uid = int(subprocess.run(["id", "-u", USER], capture_output=True, text=True, check=True).stdout)
    gid = int(subprocess.run(["id", "-g", USER], capture_output=True, text=True, check=True).stdout)
    base = Path(tempfile.mkdtemp(prefix="kubesvc-rootless-"))
    try:
        base.chmod(0o755)
        venv = base / "venv"
        subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
        site = next(venv.glob("lib/python3*/site-packages"))
        # The suite's packages (kubesvc itself, editable, among them), processed like a site dir (their .pth files too).
        (site / "_kubesvc_test_packages.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
        env = Rootless(base, str(venv / "bin" / "python"), uid, gid)
        check = subprocess.run(["runuser", "-u", USER, "--", env.python, "-c", "import kubesvc.cli.app, uvloop, dns"],
                               capture_output=True, text=True, cwd="/")
        if check.returncode:
            pytest.skip(f"{USER} cannot import kubesvc from {venv}: {check.stderr.strip().splitlines()[-1:]}")
        yield env
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def user_store(rootless: Rootless) -> Iterator[Path]:
    """A private store owned by the unprivileged user; whatever `up` started there is stopped at the end."""
    d = rootless.store_dir("store")
    store = d / "store.db"
    try:
        yield store
    finally:
        run_dir = Path(str(store) + ".d")
        if run_dir.exists():
            run_dir.chmod(0o755)
            rootless.run(store, "$KS down")
            for pid_file in run_dir.glob("*.pid"):  # down failed: never leave a process behind
                try:
                    os.killpg(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)
                except (ProcessLookupError, ValueError, KeyError, PermissionError):
                    pass


def _first_unprivileged() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


@pytest.fixture
def privileged_ports() -> int:
    start = _first_unprivileged()
    if start <= 53:
        pytest.skip(f"net.ipv4.ip_unprivileged_port_start={start}: ports 53, 80 and 443 need no root here")
    return start


def test_up_as_a_normal_user_starts_everything_on_the_fallback_ports(rootless, user_store, privileged_ports, backend) -> None:  # type: ignore[no-untyped-def]
    ks = lambda cmd: rootless.run(user_store, cmd)  # noqa: E731
    net = random_subnet()
    assert ks(f"$KS init --service-cluster-ip-range {net}0/24").returncode == 0
    dns_ip = net + "10"  # kube-dns: the 10th address of the range
    b = backend("one", random_subnet() + "1", 0, "count")
    r = ks(f"""$KS create -f - <<EOF
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{selector: {{app: web}}, ports: [{{name: http, port: 8080, targetPort: {b.port}}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: low}}
spec: {{selector: {{app: web}}, ports: [{{name: http, port: 80, targetPort: {b.port}}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-1, labels: {{app: web}}}}
spec: {{containers: [{{name: c, image: x}}]}}
status: {{phase: Running, podIP: {b.host}}}
EOF""")
    assert r.returncode == 0, r.stderr

    up = ks(f"$KS up {UP_EPHEMERAL}")
    assert up.returncode == 0, up.stderr
    for comp in ("proxy", "dns", "apiserver", "kubelet", "ingress"):
        assert re.search(rf"^{comp}: running \(pid \d+\)", up.stdout, re.M), comp
    root = f"needs root (net.ipv4.ip_unprivileged_port_start={privileged_ports})"
    assert f"\ndns: {dns_ip}:53 {root}; listening on {dns_ip}:1053\n" in up.stdout
    assert f"udp={dns_ip}:1053 " in up.stdout
    http = re.search(rf"^ingress: 127.0.0.1:80 {re.escape(root)}; listening on (127.0.0.1:\d+)$", up.stdout, re.M)
    https = re.search(rf"^ingress: 127.0.0.1:443 {re.escape(root)}; listening on (127.0.0.1:\d+)$", up.stdout, re.M)
    assert http and https, up.stdout  # 8080 and 8443, or free ports when a neighbour holds those
    assert f" http={http.group(1)} https={https.group(1)} " in up.stdout
    notes = [line for line in up.stdout.splitlines() if "; listening on " in line]
    assert len(notes) == 3

    st = ks("$KS status")
    assert st.returncode == 0, st.stdout
    assert [line for line in st.stdout.splitlines() if "; listening on " in line] == notes
    low_ip = ks("$KS get svc low -o jsonpath='{.spec.clusterIP}'").stdout
    assert (f"  error: default/low:http: listen tcp {low_ip}:80: bind: permission denied (privileged port)"
            f" (net.ipv4.ip_unprivileged_port_start={privileged_ports})\n") in st.stdout  # that port only
    web_ip = ks("$KS get svc web -o jsonpath='{.spec.clusterIP}'").stdout
    assert f"  default/web:http  {web_ip}:8080/TCP (cluster)  endpoints=1\n" in st.stdout

    dig = subprocess.run(["dig", "+short", "+time=2", "+tries=1", "-p", "1053", f"@{dns_ip}", "web.default.svc.cluster.local"],
                         capture_output=True, text=True, timeout=10)
    assert dig.stdout.strip() == web_ip
    with socket.create_connection((web_ip, 8080), timeout=5) as conn:  # through the user's proxy to the backend
        conn.sendall(b"abc")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(100) == b"one:3\n"
    resolv = ks("$KS dns --print-resolv-conf")
    assert resolv.stdout.startswith(f"# kubesvc dns listens on {dns_ip}:1053, and resolv.conf cannot name a port")
    assert f"`dig -p 1053 @{dns_ip} NAME`" in resolv.stdout and "net.ipv4.ip_unprivileged_port_start=53" in resolv.stdout

    down = ks("$KS down")
    assert down.returncode == 0, down.stderr
    assert [line.split(" (")[0] for line in down.stdout.splitlines()] == [
        "proxy: stopped", "dns: stopped", "apiserver: stopped", "kubelet: stopped", "ingress: stopped"]
    assert ks("$KS status").returncode == 3


def test_an_explicit_privileged_address_is_an_error_with_the_reason_and_the_flag(rootless, user_store, privileged_ports) -> None:  # type: ignore[no-untyped-def]
    ks = lambda cmd: rootless.run(user_store, cmd)  # noqa: E731
    why = f"Permission denied (ports below {privileged_ports} need root: net.ipv4.ip_unprivileged_port_start={privileged_ports})"
    r = ks("$KS up --components ingress --ingress-http-address 127.0.0.1:80")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"error: cannot listen on 127.0.0.1:80 (--ingress-http-address): {why}; "
                        "choose another --ingress-http-address, e.g. 127.0.0.1:8080 (port 0 picks a free one)\n")
    r = ks("$KS up --components dns --dns-listen 127.0.0.1:53")
    assert r.stderr == (f"error: cannot listen on 127.0.0.1:53 (--dns-listen): {why}; "
                        "choose another --dns-listen, e.g. 127.0.0.1:1053 (port 0 picks a free one)\n")
    assert ks("$KS status").returncode == 3  # nothing started

    # The servers on their own (uvloop used to hide the reason: "could not bind to local_addr").
    r = ks("$KS dns --listen 127.0.0.1:53")
    assert (r.returncode, r.stderr) == (1, f"error: cannot listen on 127.0.0.1:53/udp: {why}; try --listen 127.0.0.1:1053\n")


def test_down_stops_everything_when_the_run_directory_is_read_only(rootless, user_store) -> None:  # type: ignore[no-untyped-def]
    ks = lambda cmd: rootless.run(user_store, cmd)  # noqa: E731
    up = ks("$KS up --components proxy,dns --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0"
            " --dns-listen 127.0.0.1:0")
    assert up.returncode == 0, up.stderr
    run_dir = Path(str(user_store) + ".d")
    pids = {n: json.loads((run_dir / f"{n}.pid").read_text())["pid"] for n in ("proxy", "dns")}
    subprocess.run(["chmod", "-R", "a-w", str(run_dir)], check=True)  # the lock file too
    down = ks("$KS down")
    assert down.returncode == 0, down.stderr
    assert down.stdout == f"proxy: stopped (pid {pids['proxy']})\ndns: stopped (pid {pids['dns']})\n"
    assert down.stderr.startswith(f"warning: {run_dir} is read-only: stale files left there (harmless): proxy.pid, dns.pid")
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    st = ks("$KS status")
    assert (st.returncode, st.stdout) == (3, f"kubesvc is not running for {user_store}\n")
