"""Graceful pod deletion with a real kubelet: Terminating, preStop hooks before SIGTERM, the grace period,
the final delete by the kubelet, --grace-period=0 --force, and pods nothing runs deleted at once."""

from __future__ import annotations

import textwrap

from tests.workloads.fixtures import POD_PYTHON, Bed, alive, container_pid, running_ready

# The main process: on SIGTERM it records whether the preStop hook had finished ("done" in the hook's file),
# then exits (or, STUBBORN, keeps running: only SIGKILL ends it).
MAIN = textwrap.dedent("""
    import os, signal, sys, time
    hook, term, stubborn = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    def on_term(*_):
        done = os.path.exists(hook) and "done" in open(hook).read()
        open(term, "w").write("hook-done" if done else "hook-not-done")
        if not stubborn:
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    print("waiting", flush=True)
    while True:
        time.sleep(0.05)
""")
# The preStop hook: "started", then waits for the test's go-ahead file, then "done". Bounded: a test that fails
# before writing the go-ahead must not leave the hook running (it outlived a killed kubelet once).
HOOK = textwrap.dedent("""
    import os, sys, time
    hook, go = sys.argv[1], sys.argv[2]
    open(hook, "w").write("started\\n")
    deadline = time.monotonic() + 90
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    open(hook, "a").write("done\\n")
""")


def pod(name: str, argv: list[str], grace: int, **container: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": grace,
                     "containers": [{"name": "main", "image": "x", "command": argv,
                                     "ports": [{"containerPort": 8080}], **container}]}}


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def running(bed: Bed, name: str) -> dict:
    p = bed.wait(lambda: running_ready(bed.pod(name)) and bed.pod(name), what=f"pod {name} running")
    bed.wait(lambda: "waiting" in bed.cli("logs", name).stdout, what="program output")
    return p


def status_column(bed: Bed, name: str) -> str:
    r = bed.cli("get", "pods", name)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[1].split()[2]


def slice_conditions(bed: Bed, svc: str) -> list[dict]:
    out = []
    for sl in bed.store.list("EndpointSlice", "default"):
        if (sl["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == svc:
            out += [ep.get("conditions") for ep in sl.get("endpoints") or []]
    return out


def test_prestop_hook_runs_before_sigterm_and_the_kubelet_removes_the_pod(bed: Bed) -> None:
    bed.start_kubelet()
    hook, go, term = bed.share / "hook", bed.share / "go", bed.share / "term"
    bed.create(service("graceful"))
    bed.create(pod("graceful", [POD_PYTHON, "-c", MAIN, str(hook), str(term), "0"], 120,
                   lifecycle={"preStop": {"exec": {"command": [POD_PYTHON, "-c", HOOK, str(hook), str(go)]}}}))
    pid = container_pid(running(bed, "graceful"))
    bed.wait(lambda: bed.endpoints("graceful")[0], what="ready endpoint")

    r = bed.cli("delete", "pod", "graceful", "--wait=false")
    assert r.returncode == 0 and r.stdout == 'pod "graceful" deleted\n', r.stdout + r.stderr
    p = bed.pod("graceful")
    assert p is not None, "a pod a kubelet runs stays until its kubelet stopped it"
    assert p["metadata"]["deletionGracePeriodSeconds"] == 120 and p["metadata"]["deletionTimestamp"]
    assert status_column(bed, "graceful") == "Terminating"
    assert bed.endpoints("graceful") == ([], [])  # out of the Endpoints at once
    assert slice_conditions(bed, "graceful") == [{"ready": False, "serving": True, "terminating": True}]

    bed.wait(hook.exists, what="preStop hook started")
    assert not term.exists() and alive(pid), "SIGTERM before the preStop hook finished"
    assert bed.pod("graceful") is not None
    go.write_text("go")
    bed.wait(lambda: bed.pod("graceful") is None, timeout=30, what="pod removed once its process exited")
    assert term.read_text() == "hook-done"
    assert not alive(pid)
    events = bed.cli("get", "events", "--field-selector", "involvedObject.name=graceful").stdout
    assert "Stopping container main" in events


def test_grace_period_from_delete_options_then_sigkill(bed: Bed) -> None:
    bed.start_kubelet()
    hook, term = bed.share / "hook", bed.share / "term"
    bed.create(pod("stubborn", [POD_PYTHON, "-c", MAIN, str(hook), str(term), "1"], 600))
    pid = container_pid(running(bed, "stubborn"))

    r = bed.cli("delete", "pod", "stubborn", "--grace-period=3", "--wait=false")
    assert r.returncode == 0, r.stderr
    assert bed.pod("stubborn")["metadata"]["deletionGracePeriodSeconds"] == 3
    bed.wait(term.exists, what="SIGTERM delivered")
    assert term.read_text() == "hook-not-done"  # no hook: SIGTERM at once
    assert alive(pid) and bed.pod("stubborn") is not None, "killed before its grace period"
    # ignores SIGTERM: SIGKILL after the 3 s (not the pod's 600 s), then the kubelet deletes the pod
    r = bed.cli("delete", "pod", "stubborn", "--timeout=60s")  # waits, as kubectl does; a second delete is no error
    assert r.returncode == 0, r.stderr
    assert bed.pod("stubborn") is None and not alive(pid)


def test_force_delete_with_grace_period_zero_is_immediate(bed: Bed) -> None:
    bed.start_kubelet()
    hook, term = bed.share / "hook", bed.share / "term"
    bed.create(pod("forced", [POD_PYTHON, "-c", MAIN, str(hook), str(term), "0"], 600))
    pid = container_pid(running(bed, "forced"))
    r = bed.cli("delete", "pod", "forced", "--grace-period=0", "--force")
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'pod "forced" force deleted\n'
    assert r.stderr.startswith("Warning: Immediate deletion does not wait for confirmation")
    assert bed.pod("forced") is None
    bed.wait(lambda: not alive(pid), what="the kubelet stops the pod's process")


def test_terminating_pod_deleted_again_with_grace_zero(bed: Bed) -> None:
    """A Terminating pod force-deleted goes at once; a shorter grace shortens the deletion."""
    bed.start_kubelet()
    hook, go, term = bed.share / "hook", bed.share / "go", bed.share / "term"
    bed.create(pod("twice", [POD_PYTHON, "-c", MAIN, str(hook), str(term), "0"], 600,
                   lifecycle={"preStop": {"exec": {"command": [POD_PYTHON, "-c", HOOK, str(hook), str(go)]}}}))
    running(bed, "twice")
    assert bed.cli("delete", "pod", "twice", "--wait=false").returncode == 0
    bed.wait(hook.exists, what="preStop hook started")
    assert bed.cli("delete", "pod", "twice", "--grace-period=100", "--wait=false").returncode == 0
    assert bed.pod("twice")["metadata"]["deletionGracePeriodSeconds"] == 100
    assert bed.cli("delete", "pod", "twice", "--grace-period=900", "--wait=false").returncode == 0
    assert bed.pod("twice")["metadata"]["deletionGracePeriodSeconds"] == 100  # never lengthened
    r = bed.cli("delete", "pod", "twice", "--force", "--grace-period=0")
    assert r.returncode == 0 and bed.pod("twice") is None, r.stderr
    go.write_text("go")


def test_pods_no_kubelet_runs_are_deleted_at_once(bed: Bed) -> None:
    """Registered backends (status given, nothing runs) and pods whose node has no live agent: no one
    would finish a graceful deletion, so the delete removes them at once."""
    backend = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "backend", "labels": {"app": "b"}},
               "spec": {"nodeName": "kubesvc-node", "containers": [{"name": "c", "image": "example.com/any"}]},
               "status": {"phase": "Running", "podIP": "127.0.0.9"}}
    bed.reg.create(backend)
    hook, term = bed.share / "hook", bed.share / "term"
    bed.create(pod("leftover", [POD_PYTHON, "-c", MAIN, str(hook), str(term), "0"], 600))
    bed.start_kubelet()
    running(bed, "leftover")
    r = bed.cli("delete", "pod", "backend", "--wait=false")
    assert r.returncode == 0, r.stderr
    assert bed.pod("backend") is None
    assert bed.kubelet is not None
    bed.note_pids()
    bed.kubelet.stop(timeout=15)  # stops its pods; "leftover" stays bound to the node, not Running
    r = bed.cli("delete", "pod", "leftover", "--wait=false")
    assert r.returncode == 0, r.stderr
    assert bed.pod("leftover") is None
