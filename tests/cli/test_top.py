"""`kubesvc top`: the live view driven through tmux (send-keys, capture-pane) against a real proxy, and `--once` output
(plain text: no ANSI codes off a terminal or with NO_COLOR)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.cli.observe_bed import Bed, bed  # noqa: F401
from tests.support.procs import ROOT, wait_for


def _row(text: str, first: str) -> list[str]:
    """The columns of the line starting (after indentation) with ``first``."""
    for line in text.splitlines():
        if line.strip().startswith(first):
            return line.split()
    raise AssertionError(f"no row {first!r} in:\n{text}")


def _top_once(bed: Bed, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, **(env or {}))
    if env is None or "NO_COLOR" not in env:
        e.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "top", *args], capture_output=True, text=True,
                          timeout=60, cwd=str(ROOT), env=e)


def test_once_shows_service_endpoints_active_connections_and_affinity(bed: Bed) -> None:  # noqa: F811
    held = [bed.hold(), bed.hold()]  # 127.0.0.1, ClientIP affinity: both on the live endpoint
    try:
        r = _top_once(bed, "--once", "--interval", "200ms")
    finally:
        for s in held:
            s.close()
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "\x1b[" not in out  # not a terminal: plain text
    svc = _row(out, "default/web")
    assert svc[1:5] == ["80/TCP", "ClusterIP", bed.vip[0], "<none>"] and svc[5] == "2/2", svc
    assert int(svc[6]) == 2  # active connections on the service port
    live = _row(out, f"{bed.live.host}:{bed.live.port}")
    assert live[1] == "yes" and live[2] == "2", live
    assert "127.0.0.1" in live  # its affinity entry, with the seconds left (10800 by default)
    left = int(live[live.index("127.0.0.1") + 1].rstrip("s"))
    assert 10700 < left <= 10800
    dead = _row(out, bed.dead)
    assert dead[1] == "yes" and dead[2] == "0", dead  # ready in the store, nothing listens
    assert "SERVICE / ENDPOINT" in out and "proxy: 1 process" in out


def test_once_json_and_filters(bed: Bed) -> None:  # noqa: F811
    bed.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other", "namespace": "default", "labels": {"tier": "x"}},
                "spec": {"ports": [{"port": 81}], "selector": {"app": "none"}}})
    r = _top_once(bed, "-o", "json", "--interval", "100ms")
    assert r.returncode == 0, r.stderr
    names = [s["service"] for s in json.loads(r.stdout)["services"]]
    assert names == ["default/other", "default/web"]
    r = _top_once(bed, "web", "-o", "json", "--interval", "100ms")
    assert [s["service"] for s in json.loads(r.stdout)["services"]] == ["default/web"]
    r = _top_once(bed, "-l", "tier=x", "-o", "json", "--interval", "100ms")
    assert [s["service"] for s in json.loads(r.stdout)["services"]] == ["default/other"]
    r = _top_once(bed, "-n", "kube-system", "-o", "json", "--interval", "100ms")
    assert json.loads(r.stdout)["services"] == []
    r = _top_once(bed, "nope", "--once")
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): services "nope" not found'
    r = _top_once(bed, "--once", "--interval", "soon")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--interval" in r.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is missing (scripts/sysdeps.sh installs it)")
def test_live_view_in_tmux_counts_connections_and_quits_on_q(bed: Bed) -> None:  # noqa: F811
    sock = f"kubesvc-top-{uuid.uuid4().hex[:12]}"  # a tmux server of this test only

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, timeout=30, check=True).stdout

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "top")

    cmd = (f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && "
           f"{shlex.quote(sys.executable)} -m kubesvc --store {shlex.quote(bed.store_path)} top --interval 200ms"
           "; echo TOP-EXITED $?; sleep 120")
    held = []
    try:
        tmux("-f", "/dev/null", "new-session", "-d", "-s", "top", "-x", "200", "-y", "50", cmd)
        wait_for(lambda: "default/web" in screen(), timeout=30, what="top's Service row")
        live = f"{bed.live.host}:{bed.live.port}"
        for i in range(3):
            assert bed.talk(bed.subnet + str(31 + i)) == b"hello"
        held = [bed.hold(), bed.hold(), bed.hold()]

        def counted() -> bool:
            text = screen()
            row = _row(text, live)
            return row[1] == "yes" and row[2] == "3" and int(_row(text, "default/web")[6]) == 3 and "%" in " ".join(row)

        wait_for(counted, timeout=30, what="3 active connections on the live endpoint")
        text = screen()
        assert _row(text, "default/web")[5] == "2/2"
        assert "q quits" in text
        tmux("send-keys", "-t", "top", "q")
        wait_for(lambda: "TOP-EXITED 0" in screen(), timeout=30, what="top quit on q")
    finally:
        for s in held:
            s.close()
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=30)


def test_once_no_color_on_a_terminal(bed: Bed) -> None:  # noqa: F811
    """On a terminal `--once` colours its output unless NO_COLOR is set (run in a pty through `script`)."""
    if shutil.which("script") is None:
        pytest.skip("script (util-linux) is missing")
    base = f"{shlex.quote(sys.executable)} -m kubesvc --store {shlex.quote(bed.store_path)} top --once --interval 100ms"
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    colored = subprocess.run(["script", "-qec", base, "/dev/null"], capture_output=True, text=True, timeout=60, cwd=str(ROOT), env=env)
    plain = subprocess.run(["script", "-qec", base, "/dev/null"], capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                           env={**env, "NO_COLOR": "1"})
    assert "default/web" in colored.stdout and "default/web" in plain.stdout
    assert "\x1b[" in colored.stdout
    assert re.search(r"\x1b\[[0-9;]*m", plain.stdout) is None, plain.stdout
