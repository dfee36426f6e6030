"""`kubesvc top` and `kubesvc trace` against the components other than the proxy, and the observe channel's limits:
DNS queries per name and the NXDOMAIN rate from a real `kubesvc dns` (queried with dnspython and dig); ingress
requests per rule and status class from a real `kubesvc ingress`; a trace subscriber that stops reading is dropped
while the proxy keeps serving and a reading one keeps receiving; another uid cannot use a component's socket."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from kubesvc.dataplane import observe
from tests.cli.observe_bed import Bed, bed  # noqa: F401
from tests.dataplane.dns_fixtures import Cluster, dig, dns_server, pod, service, write_resolv_conf
from tests.dataplane.ingress_fixtures import Bed as IngressBed
from tests.support.procs import ROOT, wait_for

# ------------------------------------------------------------------------------------------- helpers


def _top(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, "top", *args], capture_output=True, text=True,
                          timeout=60, cwd=str(ROOT), env=env)


def _top_while(store: str, work: Callable[[], None], *args: str, limit: int = 5000) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run `top ARGS` and call ``work`` until it exits (at most ``limit`` times): traffic during its interval."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", store, "top", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=env)
    n = 0
    try:
        while p.poll() is None and n < limit:
            work()
            n += 1
            time.sleep(0.005)  # a steady trickle, not a flood (the machine is shared)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), n


def _row(text: str, first: str) -> list[str]:
    for line in text.splitlines():
        if line.strip().startswith(first):
            return line.split()
    raise AssertionError(f"no row {first!r} in:\n{text}")


def _num(s: str) -> float:
    for suffix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if s.endswith(suffix):
            return float(s[:-1]) * size
    return float(s)


class Holder:
    """Attached to every socket of a component (so counting starts now and goes on between `top` runs)."""

    def __init__(self, store: str, component: str, n: int = 1) -> None:
        found = wait_for(lambda: [p for c, _, p in observe.sockets(store) if c == component][:n] if
                         len([1 for c, _, _ in observe.sockets(store) if c == component]) >= n else None,
                         timeout=20, what=f"{n} {component} socket(s)")
        self.clients = [observe.Client(p) for p in found]
        for c in self.clients:
            assert c.snapshot()["component"] == component  # attached

    def close(self) -> None:
        for c in self.clients:
            c.close()


# ------------------------------------------------------------------------------------------- DNS


@pytest.fixture
def dns_bed(tmp_path: Path) -> Iterator[tuple[Cluster, Any]]:
    c = Cluster(str(tmp_path / "store.db"))
    try:
        c.apply(pod("web-1", "127.0.0.21", {"app": "web"}),
                service("web", selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
        with dns_server(c.path, write_resolv_conf(tmp_path)) as s:
            yield c, s
    finally:
        c.close()


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed: run scripts/sysdeps.sh")
def test_dns_queries_per_name_and_nxdomain_rate(dns_bed: tuple[Cluster, Any]) -> None:
    cluster, server = dns_bed
    web, nope, late = ("web.default.svc.cluster.local.", "nope.default.svc.cluster.local.", "late.default.svc.cluster.local.")

    def ask(name: str) -> int:
        return dns.query.udp(dns.message.make_query(name, "A"), server.host, port=server.port, timeout=5).rcode()

    holder = Holder(cluster.path, "dns")
    try:
        for _ in range(5):
            assert ask(web) == dns.rcode.NOERROR
        assert dig(server.port, web.upper(), "A").status == "NOERROR"  # a real client; names are counted lower-cased
        for _ in range(4):
            assert ask(nope) == dns.rcode.NXDOMAIN
        # a name that is NXDOMAIN until its Service exists: its rate is the share of NXDOMAIN answers it got
        sent = [ask(late) for _ in range(3)]
        cluster.apply(service("late", ports=[{"name": "http", "port": 80}]))

        def resolved() -> bool:
            sent.append(ask(late))
            return sent[-1] == dns.rcode.NOERROR

        wait_for(resolved, timeout=20, interval=0.05, what="late resolving")
        sent += [ask(late) for _ in range(2)]
        nx = sent.count(dns.rcode.NXDOMAIN)
        assert 3 <= nx < len(sent)

        r = _top(cluster.path, "-o", "json", "--interval", "100ms")
        assert r.returncode == 0, r.stderr
        m = json.loads(r.stdout)
        rows = {d["name"]: d for d in m["dns"]}
        assert m["components"] == {"dns": 1}
        assert set(rows) == {web, nope, late}, rows
        assert rows[web]["queries"] == 6 and rows[web]["nxdomain"] == 0.0
        assert rows[nope]["queries"] == 4 and rows[nope]["nxdomain"] == 1.0
        assert rows[late]["queries"] == len(sent) and rows[late]["nxdomain"] == pytest.approx(nx / len(sent))
        assert [d["queries"] for d in m["dns"]] == sorted((d["queries"] for d in m["dns"]), reverse=True)  # busiest first
        # another namespace's view shows none of them; -A all of them
        assert json.loads(_top(cluster.path, "-n", "kube-system", "-o", "json", "--interval", "100ms").stdout)["dns"] == []
        assert len(json.loads(_top(cluster.path, "-A", "-o", "json", "--interval", "100ms").stdout)["dns"]) == 3

        # queries/s: queries sent while top --once measures (over 1 s)
        r, n = _top_while(cluster.path, lambda: (ask(web), ask(nope)) and None, "--once", "--interval", "1s")
        assert r.returncode == 0, r.stderr
        assert n > 0
        w = _row(r.stdout, web)  # DNS NAME  Q/S  QUERIES  NXDOMAIN
        assert 0 < _num(w[1]) <= n and 6 < int(w[2]) <= 6 + n and w[3] == "0%", w
        x = _row(r.stdout, nope)
        assert 0 < _num(x[1]) <= n and x[3] == "100%", x
        lt = _row(r.stdout, late)
        assert lt[1] == "0" and lt[3] == f"{nx / len(sent) * 100:.0f}%", lt  # no queries for it meanwhile
        assert "DNS NAME" in r.stdout and "dns: 1 process" in r.stdout
    finally:
        holder.close()


# ------------------------------------------------------------------------------------------- ingress


@pytest.fixture
def ing(tmp_path: Path) -> Iterator[IngressBed]:
    b = IngressBed(tmp_path)
    try:
        yield b
    finally:
        b.close()


def test_ingress_requests_per_rule_and_status_class(ing: IngressBed) -> None:
    a = ing.backend("a")
    ing.service("svc-a", [(a.host, a.port)])
    ing.service("svc-gone", [])  # no endpoints: 503
    # two rules (hosts) with the same path: one row each
    ing.ingress("shop", [("a.shop.test", [("/", "Prefix", "svc-a")]), ("b.shop.test", [("/", "Prefix", "svc-a")]),
                         ("gone.shop.test", [("/", "Prefix", "svc-gone")])])
    ing.start()
    ing.sync()
    rule_a = "default/shop a.shop.test/ -> svc-a:80"
    rule_b = "default/shop b.shop.test/ -> svc-a:80"
    rule_gone = "default/shop gone.shop.test/ -> svc-gone:80"
    holder = Holder(ing.store_path, "ingress")
    try:
        statuses = [ing.request("GET", "/x", host="a.shop.test")[0] for _ in range(5)]
        statuses += [ing.request("GET", "/status/404", host="a.shop.test")[0] for _ in range(2)]
        statuses += [ing.request("GET", "/status/302", host="b.shop.test")[0]]
        statuses += [ing.request("GET", "/", host="gone.shop.test")[0] for _ in range(3)]
        statuses += [ing.request("GET", "/", host="nobody.test")[0] for _ in range(2)]
        assert statuses == [200] * 5 + [404] * 2 + [302] + [503] * 3 + [404] * 2
        curl = ing.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: b.shop.test", f"http://127.0.0.1:{ing.http_port}/y")
        assert curl.stdout == "200"

        r = _top(ing.store_path, "-A", "-o", "json", "--interval", "100ms")
        assert r.returncode == 0, r.stderr
        m = json.loads(r.stdout)
        rows = {g["rule"]: g for g in m["ingress"]}
        assert m["components"] == {"ingress": 1}
        assert set(rows) == {rule_a, rule_b, rule_gone, "(no rule)"}, rows
        cls = ("requests", "2xx", "3xx", "4xx", "5xx")
        assert [rows[rule_a][k] for k in cls] == [7, 5, 0, 2, 0]
        assert [rows[rule_b][k] for k in cls] == [2, 1, 1, 0, 0]
        assert [rows[rule_gone][k] for k in cls] == [3, 0, 0, 0, 3]
        assert [rows["(no rule)"][k] for k in cls] == [2, 0, 0, 2, 0]
        # the default namespace's view leaves out requests no rule of it matched; another namespace sees none
        r = _top(ing.store_path, "-o", "json", "--interval", "100ms")
        assert {g["rule"] for g in json.loads(r.stdout)["ingress"]} == {rule_a, rule_b, rule_gone}
        r = _top(ing.store_path, "svc-gone", "-o", "json", "--interval", "100ms")
        assert [g["rule"] for g in json.loads(r.stdout)["ingress"]] == [rule_gone]
        assert json.loads(_top(ing.store_path, "-n", "other", "-o", "json", "--interval", "100ms").stdout)["ingress"] == []

        # requests/s while top --once measures
        r, n = _top_while(ing.store_path, lambda: ing.request("GET", "/z", host="a.shop.test") and None, "--once", "--interval", "1s")
        assert r.returncode == 0, r.stderr
        assert n > 0
        row = _row(r.stdout, "default/shop a.shop.test/")  # RULE (4 words)  REQ/S  REQUESTS  2xx 3xx 4xx 5xx
        assert 0 < _num(row[4]) <= n and 7 < int(row[5]) <= 7 + n and int(row[6]) - 5 == int(row[5]) - 7, row
        assert row[7:] == ["0", "2", "0"], row
        gone = _row(r.stdout, "default/shop gone.shop.test/")
        assert gone[4] == "0" and gone[5:] == ["3", "0", "0", "0", "3"], gone
        assert "INGRESS RULE" in r.stdout and "ingress: 1 process" in r.stdout
    finally:
        holder.close()


# ------------------------------------------------------------------------------------------- a slow trace subscriber


def test_a_trace_subscriber_that_stops_reading_is_dropped_and_the_proxy_keeps_serving(bed: Bed) -> None:  # noqa: F811
    (path,) = [p for c, _, p in observe.sockets(bed.store_path) if c == "proxy"]
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    good = observe.Client(path)
    got: list[dict[str, Any]] = []
    stop = threading.Event()

    def read_good() -> None:
        while not stop.is_set():
            try:
                line = good.readline()
            except OSError:  # closed by the test
                return
            if line is None:
                return
            got.append(json.loads(line))

    reader = threading.Thread(target=read_good, daemon=True)
    try:
        slow.connect(path)
        slow.sendall(b'{"op":"trace"}\n')  # and never reads
        good.request({"op": "trace"})
        assert json.loads(good.readline() or b"{}")["event"] == "attached"
        good.sock.settimeout(30)
        reader.start()
        poller = select.poll()
        poller.register(slow, select.POLLHUP | select.POLLRDHUP)

        def dropped() -> bool:
            return bool(poller.poll(0))

        # each connection makes an open and a close event (~700 B); 1 MiB plus the kernel's buffers is a few thousand
        talks = 0
        while not dropped():
            assert talks < 8000, "the slow subscriber was never dropped"
            assert bed.talk() == b"hello"  # served throughout
            talks += 1
        assert talks > 1000  # it was dropped for its backlog, not at once
        for _ in range(20):  # and after
            assert bed.talk() == b"hello"
            talks += 1
        # the reading subscriber saw every connection
        wait_for(lambda: sum(e["event"] == "close" for e in got) >= talks, timeout=60, what=f"{talks} close events")
        opens = [e for e in got if e["event"] == "open"]
        assert len(opens) == talks and len({e["id"] for e in opens}) == talks
        # the dropped one got a prefix of the stream and then the end
        slow.setblocking(False)
        data = b""
        try:
            while chunk := slow.recv(1 << 20):
                data += chunk
        except (BlockingIOError, ConnectionResetError):
            pass
        assert json.loads(data.split(b"\n", 1)[0])["event"] == "attached" and len(data) < (8 << 20)
        # the proxy still answers snapshots (the dropped client is gone from it, the reading one is there)
        snap = observe.Client(path)
        try:
            assert snap.snapshot()["component"] == "proxy"
        finally:
            snap.close()
    finally:
        stop.set()
        slow.close()
        good.close()
        reader.join(10)


# ------------------------------------------------------------------------------------------- another uid

NOBODY = 65534
CONNECT = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1])\nexcept OSError as e:\n"
           " print('refused', e.errno); sys.exit(0)\ns.settimeout(10)\n"
           "try:\n s.sendall(b'{\"op\":\"snapshot\"}\\n')\n d=s.recv(65536)\nexcept OSError as e:\n d=b''\n"
           "print('closed' if not d else 'answered '+d[:40].decode())\n")


def _between(d: Path) -> list[Path]:
    """``d`` and its parents below the system's temporary directory."""
    top = Path(tempfile.gettempdir()).resolve()
    out = []
    for p in [d, *d.parents]:
        if p.resolve() == top or top not in p.resolve().parents:
            break
        out.append(p)
    return out


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/python3", *argv],
                          capture_output=True, text=True, timeout=30, cwd="/")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"),
                    reason="needs root and setpriv: runs a client as uid 65534")
def test_another_uid_is_refused(bed: Bed, tmp_path: Path) -> None:  # noqa: F811
    (path,) = [p for c, _, p in observe.sockets(bed.store_path) if c == "proxy"]
    run = os.path.dirname(path)
    assert stat.S_IMODE(os.stat(run).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # pytest's directories are 0700: the test lets everyone through them down to the store, and restores them
    saved = [(d, stat.S_IMODE(os.stat(d).st_mode)) for d in _between(Path(run).parent)]
    spot = tmp_path / "nobody"
    spot.mkdir()
    exposed = spot / "proxy.sock"
    os.link(path, exposed)  # the same socket, in a directory anyone may enter
    try:
        for d, mode in saved:
            os.chmod(d, mode | 0o111)
        os.chmod(spot, 0o777)
        # the run directory's mode keeps it out; so does the socket's, where the directory does not
        r = _as_nobody("-c", CONNECT, path)
        assert r.stdout.strip() == "refused 13", (r.stdout, r.stderr)
        r = _as_nobody("-c", CONNECT, str(exposed))
        assert r.stdout.strip() == "refused 13", (r.stdout, r.stderr)
        # with the mode opened up (as a careless admin might), the peer-uid check alone turns it away unanswered
        os.chmod(path, 0o666)
        r = _as_nobody("-c", CONNECT, str(exposed))
        assert r.stdout.strip() == "closed", (r.stdout, r.stderr)
        with contextlib.closing(observe.Client(path)) as c:  # root still is served
            assert c.snapshot()["component"] == "proxy"
        os.chmod(path, 0o600)
        os.unlink(exposed)

        # the other way round: top does not talk to a socket served by another uid in the run directory
        os.chown(spot, NOBODY, NOBODY)
        serve = ("import os,socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\nos.chmod(sys.argv[1],0o666)\n"
                 "s.listen(4)\nprint('ready',os.getpid(),flush=True)\nc,_=s.accept()\nc.settimeout(10)\n"
                 "try:\n d=c.recv(100)\nexcept OSError:\n d=b''\nprint('got',repr(d),flush=True)\n")
        fake = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/python3", "-c", serve,
                                 str(spot / "s.sock")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        try:
            assert fake.stdout is not None
            ready = fake.stdout.readline().split()
            assert ready[0] == "ready", fake.stderr.read() if fake.stderr else ""
            planted = os.path.join(run, f"proxy-{ready[1]}.sock")
            os.rename(spot / "s.sock", planted)
            assert any(p == planted for _, _, p in observe.sockets(bed.store_path))
            r = _top(bed.store_path, "-o", "json", "--interval", "100ms")
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["components"] == {"proxy": 1}  # the real proxy only
            out, _ = fake.communicate(timeout=30)
            assert out.strip() == "got b''", out  # top hung up without sending it anything
        finally:
            if fake.poll() is None:
                fake.kill()
                fake.wait(10)
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(run, f"proxy-{fake.pid}.sock"))
    finally:
        os.chmod(path, 0o600)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(exposed)
        for d, mode in saved:
            os.chmod(d, mode)
