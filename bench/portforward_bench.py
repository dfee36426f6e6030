"""Port-forward throughput: one bulk TCP download (a pod that sends SIZE bytes per connection) read directly
from the pod IP, through `kubesvc port-forward`, and through `kubectl port-forward` against `kubesvc
apiserver` (SPDY in WebSocket, kubectl 1.32's default). Median of ROUNDS, interleaved. Short by design."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = 256 * 1024 * 1024
ROUNDS = 3
SOURCE = ("import os, socket\n"
          "s = socket.create_server((os.environ['POD_IP'], 8080)); block = b'x' * (1 << 20)\n"
          f"while True:\n    c, _ = s.accept()\n    [c.sendall(block) for _ in range({SIZE >> 20})]\n    c.close()\n")


def download(port: int, host: str = "127.0.0.1") -> float:
    with socket.create_connection((host, port), timeout=30) as s:
        t0, got = time.perf_counter(), 0
        while data := s.recv(1 << 20):
            got += len(data)
        assert got == SIZE, got
        return SIZE * 8 / (time.perf_counter() - t0) / 1e9


def forwarded_port(p: subprocess.Popen[str]) -> int:
    assert p.stdout is not None
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("port-forward ended")
        if line.startswith("Forwarding from 127.0.0.1:"):
            return int(line.split(":")[1].split()[0])


def main() -> int:
    from tests.support.procs import Proc, ready_fields

    kubectl = shutil.which("kubectl")
    tmp = Path(tempfile.mkdtemp(prefix="kubesvc-pfbench-"))
    os.chmod(tmp, 0o711)
    store = str(tmp / "store.db")
    procs: list[Proc] = []
    forwards: list[subprocess.Popen[str]] = []
    py = "/usr/bin/python3" if os.geteuid() == 0 else sys.executable
    try:
        subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, "init"], check=True, capture_output=True)
        procs.append(Proc(store, "kubelet", "--workdir", "/"))
        procs[-1].wait_line("kubesvc kubelet ready", timeout=30)
        ks = [sys.executable, "-m", "kubesvc", "--store", store]
        manifest = ('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"src"},"spec":{"containers":[{"name":"app",'
                    f'"image":"python","command":["{py}","-c",{__import__("json").dumps(SOURCE)}]}}]}}}}')
        subprocess.run([*ks, "apply", "-f", "-"], input=manifest, text=True, check=True, capture_output=True)
        ip = ""
        for _ in range(300):
            out = subprocess.run([*ks, "get", "pod", "src", "-o", "jsonpath={.status.phase} {.status.podIP}"],
                                 capture_output=True, text=True).stdout.split()
            if out[:1] == ["Running"] and len(out) == 2:
                ip = out[1]
                break
            time.sleep(0.1)
        time.sleep(0.5)
        forwards.append(subprocess.Popen([*ks, "port-forward", "pod/src", ":8080"], stdout=subprocess.PIPE, text=True))
        ks_port = forwarded_port(forwards[-1])
        kc_port = 0
        if kubectl:
            api = Proc(store, "apiserver", "--port", "0")
            procs.append(api)
            url = ready_fields(api.wait_line("kubesvc apiserver ready", timeout=30))["url"]
            cfg = tmp / "kubeconfig"
            subprocess.run([*ks, "config", "view", "--server", url, "--write-kubeconfig", str(cfg)], check=True,
                           capture_output=True)
            env = dict(os.environ, KUBECONFIG=str(cfg), HOME=str(tmp))
            forwards.append(subprocess.Popen([kubectl, "port-forward", "pod/src", ":8080"], stdout=subprocess.PIPE,
                                             text=True, env=env))
            kc_port = forwarded_port(forwards[-1])
        rows: dict[str, list[float]] = {"direct": [], "kubesvc port-forward": [], "kubectl port-forward": []}
        for _ in range(ROUNDS):
            rows["direct"].append(download(8080, ip))
            rows["kubesvc port-forward"].append(download(ks_port))
            if kc_port:
                rows["kubectl port-forward"].append(download(kc_port))
        direct = statistics.median(rows["direct"])
        print(f"| path | Gbit/s (median of {ROUNDS}, {SIZE >> 20} MiB each) | ratio to direct |")
        print("|---|---|---|")
        for name, vals in rows.items():
            if vals:
                m = statistics.median(vals)
                print(f"| {name} | {m:.2f} | {m / direct:.2f}x |")
        return 0
    finally:
        for f in forwards:
            f.terminate()
            f.wait(10)
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
