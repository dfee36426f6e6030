"""Peers and load tools for bench/proxy_bench.py: HAProxy, nginx, iperf3, wrk and a small UDP echo/client pair.

Every process started here is a ``Spawned`` stopped by pid (SIGTERM, bounded wait, SIGKILL). Servers bind
loopback addresses only; every load run is bounded in time (and the UDP client in count too).
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
import textwrap
import time
from pathlib import Path

Addr = tuple[str, int]


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU time of processes (all their threads), from /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    return [int(x) for x in out]


class Spawned:
    def __init__(self, argv: list[str], name: str, **kw: object) -> None:
        self.name = name
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, **kw)  # type: ignore[call-overload]

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if self.p.stderr is not None:
            self.p.stderr.close()

    def check(self) -> None:
        if self.p.poll() is not None:
            err = self.p.stderr.read().decode(errors="replace") if self.p.stderr else ""
            raise RuntimeError(f"{self.name} exited ({self.p.returncode}): {err.strip()[-400:]}")


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_tcp(addr: Addr, proc: Spawned | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            proc.check()
        try:
            socket.create_connection(addr, timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {addr[0]}:{addr[1]} after {timeout}s")


def have(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


# ------------------------------------------------------------------------------------------ servers

def iperf3_server(addr: Addr) -> Spawned:
    p = Spawned(["iperf3", "-s", "-B", addr[0], "-p", str(addr[1])], "iperf3 -s")
    wait_tcp(addr, p)
    return p


def nginx(tmp: str, addr: Addr, *more: Addr) -> Spawned:
    """nginx answering every request with a 2-byte 200 (access log off), one worker: the HTTP backend. Under
    ``/u/`` each answer carries a unique ``X-Id`` header, so no two response heads are alike. ``more``: further
    addresses the same server listens on."""
    prefix = Path(tmp, "nginx")
    prefix.mkdir(exist_ok=True)
    cfg = prefix / "nginx.conf"
    listen = " ".join(f"listen {a[0]}:{a[1]} backlog=4096;" for a in (addr, *more))
    cfg.write_text(textwrap.dedent(f"""\
        worker_processes 1;
        daemon off;
        pid {prefix}/nginx.pid;
        error_log {prefix}/error.log;
        events {{ worker_connections 4096; }}
        http {{
          access_log off;
          client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix};
          uwsgi_temp_path {prefix}; scgi_temp_path {prefix};
          keepalive_requests 1000000;
          server {{
            {listen}
            location / {{ return 200 "ok"; }}
            location /u/ {{ add_header X-Id $request_id always; return 200 "ok"; }}  # a head never seen before
          }}
        }}
        """))
    p = Spawned(["nginx", "-p", str(prefix), "-c", str(cfg)], "nginx")
    for a in (addr, *more):
        wait_tcp(a, p)
    return p


def haproxy(tmp: str, routes: list[tuple[Addr, Addr]]) -> Spawned:
    """HAProxy in its default configuration, mode tcp: one frontend per (listen, backend) route."""
    lines = ["defaults", " mode tcp", " timeout connect 5s", " timeout client 60s", " timeout server 60s"]
    for i, (listen, backend) in enumerate(routes):
        lines += [f"frontend f{i}", f" bind {listen[0]}:{listen[1]}", f" default_backend b{i}",
                  f"backend b{i}", f" server s{i} {backend[0]}:{backend[1]}"]
    cfg = Path(tmp, "haproxy.cfg")
    cfg.write_text("\n".join(lines) + "\n")
    p = Spawned(["haproxy", "-db", "-f", str(cfg)], "haproxy")
    for listen, _ in routes:
        wait_tcp(listen, p)
    return p


UDP_ECHO = textwrap.dedent("""\
    import asyncio, socket, sys
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, t): self.t = t
        def datagram_received(self, d, a): self.t.sendto(d, a)
    async def main():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))
        await asyncio.get_running_loop().create_datagram_endpoint(Echo, sock=s)
        await asyncio.Event().wait()
    try:
        import uvloop; uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    """)


def udp_echo(addr: Addr) -> Spawned:
    p = Spawned([sys.executable, "-c", UDP_ECHO, addr[0], str(addr[1])], "udp echo")
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            p.check()
            s.sendto(b"ping", addr)
            try:
                if s.recv(64) == b"ping":
                    return p
            except OSError:
                pass
    p.stop()
    raise TimeoutError("udp echo did not answer")


# ------------------------------------------------------------------------------------------ load

def iperf3(addr: Addr, streams: int, seconds: float) -> float:
    """Gbit/s received by the server (the control connection goes through the same address)."""
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(["iperf3", "-c", addr[0], "-p", str(addr[1]), "-t", str(seconds), "-P", str(streams), "-J"],
                             capture_output=True, text=True, check=False, timeout=seconds + 30)
        data = json.loads(out.stdout)
        if "busy" in data.get("error", "") and time.monotonic() < deadline:
            time.sleep(0.2)  # the server is still closing the previous test
            continue
        if "error" in data:
            raise RuntimeError(f"iperf3 {addr}: {data['error']}")
        break
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


# wrk script: every request to a new path under /u/ (with _peers.nginx: new request and response heads each time)
UNIQUE_PATHS = 'n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, "/u/" .. n)\nend\n'


def wrk(addr: Addr, conns: int, seconds: float, close: bool = False, threads: int = 1, script: str = "") -> tuple[float, float]:
    """(requests/s, p99 latency ms) of wrk against http://addr/ (``close``: a new connection per request;
    ``script``: a wrk Lua script's path)."""
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    if script:
        argv += ["-s", script]
    out = subprocess.run([*argv, f"http://{addr[0]}:{addr[1]}/"], capture_output=True, text=True, check=False, timeout=seconds + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if rps is None or p99 is None:
        raise RuntimeError(f"wrk {addr}: cannot parse output: {out[-400:]}")
    if errors and close is False:
        print(f"    wrk {addr[0]}:{addr[1]}: socket errors {errors.group(1)}")
    return float(rps.group(1)), float(p99.group(1)) * _UNITS[p99.group(2)]


UDP_CLIENT = textwrap.dedent("""\
    import socket, sys, time
    host, port, seconds, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((host, port)); s.settimeout(0.2)
    payload = b"x" * 64
    got = sent = lost = 0
    limit = 10_000_000
    end = time.monotonic() + seconds
    for _ in range(window): s.send(payload); sent += 1
    t0 = time.monotonic()
    while sent < limit:
        try:
            s.recv(2048); got += 1
            s.send(payload); sent += 1
        except TimeoutError:
            lost += 1
            for _ in range(window): s.send(payload); sent += 1
        if got & 255 == 0 and time.monotonic() >= end:
            break
    print(got / (time.monotonic() - t0), lost)
    """)


def udp_rate(addr: Addr, seconds: float, window: int = 16) -> float:
    """Answers/s of a one-socket Python client keeping ``window`` 64-byte datagrams in flight."""
    out = subprocess.run([sys.executable, "-c", UDP_CLIENT, addr[0], str(addr[1]), str(seconds), str(window)],
                         capture_output=True, text=True, check=False, timeout=seconds + 30)
    if out.returncode:
        raise RuntimeError(f"udp client: {out.stderr[-400:]}")
    return float(out.stdout.split()[0])
