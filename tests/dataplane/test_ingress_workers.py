"""`kubesvc ingress --workers N`: every process serves the shared listeners (SO_REUSEPORT), each follows the store,
a dead worker is restarted, and a killed primary takes its workers down. Which process holds an accepted
connection is read from /proc (socket inodes of each pid against /proc/net/tcp)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

from tests.dataplane import ingress_fixtures
from tests.dataplane.ingress_fixtures import Bed, three
from tests.support.procs import wait_for

make_bed = ingress_fixtures.make_bed  # the fixture


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def accepted_on(pid: int, port: int) -> int:
    """Established connections with local port ``port`` whose socket ``pid`` holds."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return 0
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01" and f[9] in inodes:
            n += 1
    return n


def open_keepalive(bed: Bed, host: str, n: int) -> list[socket.socket]:
    """n connections, each answered once (so each is accepted and served) and kept open."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", bed.http_port), timeout=10)
        socks.append(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
        got = b""
        while b"\r\n\r\n" not in got:
            d = s.recv(65536)
            assert d, "closed before answering"
            got += d
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
    return socks


def started(bed: Bed, workers: int) -> list[int]:
    three(bed)
    bed.ingress("web", [("web.test", [("/", "Prefix", "svc-a")])])
    fields = bed.start("--workers", str(workers))
    assert fields["workers"] == str(workers)
    assert bed.proc is not None
    kids = wait_for(lambda: (k := children(bed.proc.p.pid)) and len(k) == workers - 1 and k, timeout=10, what="worker pids")
    return [bed.proc.p.pid, *kids]


def test_every_process_serves_and_follows_the_store(make_bed: Any) -> None:
    bed: Bed = make_bed()
    pids = started(bed, 2)
    socks = open_keepalive(bed, "web.test", 48)  # all 48 on one process: chance 2**-47
    try:
        counts = {pid: accepted_on(pid, bed.http_port) for pid in pids}
        assert all(counts.values()) and sum(counts.values()) == 48, counts
    finally:
        for s in socks:
            s.close()
    # a route added later is served by every process: each fresh connection lands on either
    bed.ingress("late", [("late.test", [("/", "Prefix", "svc-b")])])
    # (each process follows the store on its own: one may lag the other by a sync, so wait until a batch of
    # fresh connections, spread over both, all get it)
    wait_for(lambda: all(bed.who("late.test", "/") == "b" for _ in range(16)), timeout=10, what="late.test served everywhere")
    socks = open_keepalive(bed, "late.test", 48)
    try:
        counts = {pid: accepted_on(pid, bed.http_port) for pid in pids}
        assert all(counts.values()), counts
    finally:
        for s in socks:
            s.close()
    # status is the primary's job alone, and a clean stop removes it
    wait_for(lambda: (bed.store.get("Ingress", "default", "late") or {}).get("status", {}).get("loadBalancer", {}).get("ingress"),
             timeout=10, what="status written")
    assert bed.proc is not None and bed.proc.stop() == 0
    wait_for(lambda: not any(alive(p) for p in pids[1:]), timeout=10, what="workers gone after a clean stop")
    assert not (bed.store.get("Ingress", "default", "late") or {}).get("status", {}).get("loadBalancer", {}).get("ingress")


def test_dead_worker_restarted_and_killed_primary_takes_workers_down(make_bed: Any) -> None:
    bed: Bed = make_bed()
    primary, worker = started(bed, 2)
    os.kill(worker, signal.SIGKILL)
    assert bed.proc is not None
    new = wait_for(lambda: [p for p in children(primary) if p != worker], timeout=10, what="a restarted worker")
    def new_one_serves() -> bool:  # once it has bound, some of a batch of fresh connections reach it
        socks = open_keepalive(bed, "web.test", 16)
        try:
            return accepted_on(new[0], bed.http_port) > 0
        finally:
            for s in socks:
                s.close()

    wait_for(new_one_serves, timeout=15, interval=0.1, what="the restarted worker serving")
    bed.proc.p.send_signal(signal.SIGKILL)
    bed.proc.p.wait(5)
    wait_for(lambda: not alive(new[0]), timeout=10, what="worker gone after the primary was killed")
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", bed.http_port)) != 0  # nobody listens any more


def test_workers_flag_checked(make_bed: Any) -> None:
    import subprocess
    import sys

    from tests.support.procs import ROOT

    bed: Bed = make_bed()
    r = subprocess.run([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "ingress", "--workers", "0",
                        "--http-address", "127.0.0.1:0", "--https-address", ""], capture_output=True, text=True, timeout=30, cwd=str(ROOT), check=False)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == ["error: --workers: want 1 to 64, got 0"]
