"""The kubelet never runs pods as root unless told to: who each container runs as, read from /proc."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from kubesvc.dataplane.kubelet import identity
from kubesvc.dataplane.kubelet.spec import ConfigError
from tests.workloads.fixtures import BED_ARGS, POD_PYTHON, ROOT_USER, Bed, container_pid, running_ready

root_only = pytest.mark.skipif(not ROOT_USER or bool(BED_ARGS), reason="needs root and a python nobody can run")
SLEEP = [POD_PYTHON, "-c", "import time\nwhile True: time.sleep(1)"]


def pod(name: str, container_sc: dict | None = None, **pod_sc: object) -> dict:
    c: dict = {"name": "main", "image": "x", "command": SLEEP}
    if container_sc is not None:
        c["securityContext"] = container_sc
    spec: dict = {"containers": [c], "terminationGracePeriodSeconds": 1}
    if pod_sc:
        spec["securityContext"] = pod_sc
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "uid": "u1"}, "spec": spec}


def ids(pid: int) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary groups) from /proc/PID/status."""
    lines = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(lines["Uid"].split()[0]), int(lines["Gid"].split()[0]), [int(g) for g in lines["Groups"].split()]


def running_pid(bed: Bed, name: str) -> int:
    return bed.wait(lambda: (p := bed.pod(name)) and running_ready(p) and container_pid(p), what=f"{name} running")


def waiting_message(bed: Bed, name: str) -> str:
    def msg() -> str:
        p = bed.pod(name) or {}
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            w = (cs.get("state") or {}).get("waiting") or {}
            if w.get("reason") == "CreateContainerConfigError":
                return str(w.get("message", ""))
        return ""

    return str(bed.wait(msg, what=f"{name} refused"))


# ------------------------------------------------------------------------- the rules (pure)


def test_rules_as_root() -> None:
    def who(p: dict, run_as_root: bool = False) -> tuple[int, int, tuple[int, ...], bool]:
        i = identity.resolve(p, p["spec"]["containers"][0], run_as_root=run_as_root, euid=0, egid=0)
        return i.uid, i.gid, i.groups, i.switch

    assert who(pod("a")) == (65534, 65534, (), True)
    assert who(pod("a"), run_as_root=True) == (0, 0, (), False)
    assert who(pod("a", runAsUser=1234, runAsGroup=2345, supplementalGroups=[3456])) == (1234, 2345, (3456,), True)
    assert who(pod("a", {"runAsUser": 4321}, runAsUser=1234, runAsGroup=2345)) == (4321, 2345, (), True)
    assert who(pod("a", runAsUser=0)) == (0, 0, (), False)
    assert who(pod("a", runAsNonRoot=True)) == (65534, 65534, (), True)
    with pytest.raises(ConfigError, match=r'^container has runAsNonRoot and image will run as root \(pod: "a_default\(u1\)", container: main\)$'):
        who(pod("a", runAsNonRoot=True), run_as_root=True)
    with pytest.raises(ConfigError, match=r"^container's runAsUser breaks non-root policy \(pod: "):
        who(pod("a", {"runAsNonRoot": True}, runAsUser=0))
    for bad in (-1, "1000", True, 2**31):
        with pytest.raises(ConfigError, match="securityContext.runAsUser must be an integer between 0 and 2147483647"):
            who(pod("a", runAsUser=bad))


def test_rules_as_non_root_kubelet() -> None:
    def who(p: dict) -> identity.Identity:
        return identity.resolve(p, p["spec"]["containers"][0], run_as_root=True, euid=1000, egid=1000)

    assert who(pod("a")) == identity.Identity(1000, 1000)
    assert who(pod("a", runAsUser=1000, runAsNonRoot=True)) == identity.Identity(1000, 1000)
    with pytest.raises(ConfigError, match="^runAsUser 0 is not possible: the kubelet runs as uid 1000, not root"):
        who(pod("a", runAsUser=0))


def test_path_keeps_only_what_the_user_can_search(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    nobody = identity.Identity(65534, 65534, (), switch=True)
    if ROOT_USER:
        path = identity.container_path(f"{private}:/usr/bin:/bin", nobody)
        assert path.split(":")[:2] == ["/usr/bin", "/bin"] and str(private) not in path
        assert "/usr/local/bin" in path.split(":")
    me = identity.Identity(os.geteuid(), os.getegid())
    assert identity.container_path(f"{private}:/bin", me) == f"{private}:/bin"


# ------------------------------------------------------------------------- real pods (root)


@root_only
def test_pods_run_as_nobody_by_default_and_as_their_security_context(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(pod("plain"))
    bed.create(pod("chosen", runAsUser=1234, runAsGroup=2345, supplementalGroups=[3456]))
    bed.create(pod("own", {"runAsUser": 4321}, runAsUser=1234))
    bed.create(pod("asroot", runAsUser=0))
    assert ids(running_pid(bed, "plain")) == (65534, 65534, [])
    assert ids(running_pid(bed, "chosen")) == (1234, 2345, [3456])
    assert ids(running_pid(bed, "own"))[0] == 4321
    assert ids(running_pid(bed, "asroot"))[:2] == (0, 0)
    # Output may hold secrets: each container's directory is the kubelet's alone; the pods directory may be
    # searched (a pod's user reaches its volumes there) but not listed.
    pods = Path(bed.store_path + ".d/pods")
    assert stat.S_IMODE(pods.stat().st_mode) == 0o711
    log = next(pods.glob("default_plain_*/main/0.log"))
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@root_only
def test_run_as_root_flag_and_run_as_non_root_refusal(bed: Bed) -> None:
    bed.start_kubelet("--run-as-root")
    bed.create(pod("plain"))
    bed.create(pod("strict", runAsNonRoot=True))
    bed.create(pod("strict-zero", {"runAsUser": 0}, runAsNonRoot=True))
    assert ids(running_pid(bed, "plain"))[:2] == (0, 0)
    msg = waiting_message(bed, "strict")
    assert msg.startswith('container has runAsNonRoot and image will run as root (pod: "strict_default('), msg
    assert waiting_message(bed, "strict-zero").startswith("container's runAsUser breaks non-root policy")
    r = bed.ks("get", "pod", "strict")
    assert "CreateContainerConfigError" in r.stdout
    events = [e["message"] for e in bed.store.list("Event", "default") if e["involvedObject"]["name"] == "strict"]
    assert any("container has runAsNonRoot and image will run as root" in m for m in events)


@root_only
def test_exec_probe_runs_as_the_container_user(bed: Bed) -> None:
    """An exec probe must not be a way to run a command as root: it runs as the container's user."""
    bed.start_kubelet()
    probe = {"exec": {"command": [POD_PYTHON, "-c", "import os, sys; sys.exit(os.getuid() != 65534)"]},
             "periodSeconds": 1}
    p = pod("probed")
    p["spec"]["containers"][0]["readinessProbe"] = probe
    bed.create(p)
    running_pid(bed, "probed")  # Ready only when the probe saw uid 65534


@root_only
def test_unreachable_interpreter_is_a_clear_start_error(bed: Bed) -> None:
    """Root's own Python (under /root) is not executable by nobody: the error says who the container runs as."""
    if not os.path.realpath(sys.executable).startswith("/root/"):
        pytest.skip("needs an interpreter under /root")
    bed.start_kubelet()
    p = pod("rootpy")
    p["spec"]["containers"][0]["command"] = [sys.executable, "-c", "pass"]
    p["spec"]["restartPolicy"] = "Never"
    bed.create(p)
    term = bed.wait(lambda: (q := bed.pod("rootpy")) and q["status"].get("phase") == "Failed"
                    and q["status"]["containerStatuses"][0]["state"]["terminated"], what="failed to start")
    assert term["reason"] == "StartError" and "the container runs as uid 65534" in term["message"], term
