"""Pods that really run: environment and downward API, logs, phases, grace periods, liveness restarts."""

from __future__ import annotations

import os
import sys
import textwrap

from tests.workloads.fixtures import (
    POD_PYTHON,
    Bed,
    alive,
    container_pid,
    running_ready,
)

PRINT_ENV = textwrap.dedent("""
    import os, sys
    for k in ("POD_IP", "MY_IP", "MY_NAME", "MY_NS", "GREETING", "LITERAL", "POD_NAME"):
        print(f"{k}={os.environ.get(k, '<unset>')}")
    print("ARGS=" + "|".join(sys.argv[1:]))
    print("CWD=" + os.getcwd())
    print("to stderr", file=sys.stderr)
""")


def pod(name: str, containers: list[dict], **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": containers, **spec}}


def test_env_downward_api_working_dir_and_logs(bed: Bed) -> None:
    bed.start_kubelet()
    workdir = bed.share / "wd"
    workdir.mkdir()
    c = {"name": "main", "image": "busybox", "command": [POD_PYTHON, "-c", PRINT_ENV],
         "args": ["$(GREETING)-$(MY_NAME)", "$$(GREETING)", "$(UNDEFINED)"], "workingDir": str(workdir),
         "env": [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                 {"name": "GREETING", "value": "hello-$(MY_NS)"},
                 {"name": "LITERAL", "value": "$$(MY_NS)"}]}
    bed.create(pod("printer", [c], restartPolicy="Never"))
    done = bed.wait(lambda: (p := bed.pod("printer")) and p["status"].get("phase") == "Succeeded" and p,
                    what="pod Succeeded")
    ip = done["status"]["podIP"]
    assert ip.startswith("127.244.")
    r = bed.cli("logs", "printer")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"POD_IP={ip}" in lines and f"MY_IP={ip}" in lines
    assert "MY_NAME=printer" in lines and "MY_NS=default" in lines and "POD_NAME=printer" in lines
    assert "GREETING=hello-default" in lines and "LITERAL=$(MY_NS)" in lines
    assert "ARGS=hello-default-printer|$(GREETING)|$(UNDEFINED)" in lines
    assert f"CWD={workdir}" in lines and "to stderr" in lines
    r = bed.cli("get", "pods", "printer")
    assert r.stdout.split("\n")[1].split()[1:4] == ["0/1", "Completed", "0"], r.stdout
    r = bed.cli("logs", "printer", "-c", "nope")
    assert r.returncode == 1 and r.stderr.strip() == "Error from server (BadRequest): container nope is not valid for pod printer"


def test_grace_period_sigterm_then_sigkill(bed: Bed) -> None:
    bed.start_kubelet()
    flag = bed.share / "got-term"
    stubborn = textwrap.dedent(f"""
        import signal, time
        def on_term(*_):
            open({str(flag)!r}, "w").write("TERM")
        signal.signal(signal.SIGTERM, on_term)
        print("waiting", flush=True)
        while True:
            time.sleep(0.05)
    """)
    bed.create(pod("stubborn", [{"name": "main", "image": "x", "command": [POD_PYTHON, "-c", stubborn]}],
                   terminationGracePeriodSeconds=2))
    p = bed.wait(lambda: running_ready(bed.pod("stubborn")) and bed.pod("stubborn"), what="pod running")
    pid = container_pid(p)
    bed.wait(lambda: "waiting" in bed.cli("logs", "stubborn").stdout, what="program output")
    r = bed.cli("delete", "pod", "stubborn", "--wait=false")  # Terminating until its kubelet has stopped it
    assert r.returncode == 0, r.stderr
    assert bed.endpoints("stubborn") == ([], [])
    bed.wait(flag.exists, what="SIGTERM delivered")
    assert alive(pid), "killed before its grace period"  # it ignores SIGTERM: only SIGKILL ends it
    bed.wait(lambda: not alive(pid), timeout=10, what="SIGKILL after the grace period")


def test_liveness_failure_restarts_container_and_crash_backoff(bed: Bed) -> None:
    bed.start_kubelet()
    health = bed.share / "healthy"
    health.write_text("ok")
    live = {"exec": {"command": ["test", "-f", str(health)]}, "periodSeconds": 1, "failureThreshold": 1}
    c = {"name": "main", "image": "x", "command": [POD_PYTHON, "-c", "import time\nwhile True: time.sleep(1)"],
         "livenessProbe": live}
    bed.create(pod("livey", [c], terminationGracePeriodSeconds=1))
    first = bed.wait(lambda: running_ready(bed.pod("livey")) and container_pid(bed.pod("livey")), what="running")
    health.unlink()
    again = bed.wait(lambda: (p := bed.pod("livey")) and p["status"]["containerStatuses"][0]["restartCount"] >= 1
                     and container_pid(p) != first and p, what="liveness restart")
    assert not alive(first)
    health.write_text("ok")
    bed.wait(lambda: running_ready(bed.pod("livey")), what="running again")
    reasons = {e["reason"] for e in bed.store.list("Event", "default")
               if e["involvedObject"]["name"] == "livey"}
    assert {"Started", "Unhealthy", "Killing"} <= reasons
    assert again["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] != 0
    r = bed.cli("describe", "pod", "livey")
    assert "Liveness:" in r.stdout and "failed liveness probe, will be restarted" in r.stdout


def test_second_kubelet_refused_and_stop_kills_pods(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(pod("sleeper", [{"name": "main", "image": "x",
                                "command": [POD_PYTHON, "-c", "import time; time.sleep(60)"]}],
                   terminationGracePeriodSeconds=1))
    pid = bed.wait(lambda: running_ready(bed.pod("sleeper")) and container_pid(bed.pod("sleeper")), what="running")
    r = bed.ks("kubelet")
    assert r.returncode == 1 and "another kubesvc kubelet (pid" in r.stderr, r.stderr
    assert bed.kubelet is not None and bed.kubelet.stop() == 0
    assert not alive(pid)
    st = bed.pod("sleeper")["status"]
    assert next(c for c in st["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert os.path.exists(bed.store_path)


def test_logs_follow_streams_until_pod_goes(bed: Bed) -> None:
    import subprocess

    bed.start_kubelet()
    ticker = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True); time.sleep(0.1)"
    bed.create(pod("ticker", [{"name": "main", "image": "x", "command": [POD_PYTHON, "-c", ticker]}],
                   terminationGracePeriodSeconds=1))
    bed.wait(lambda: "tick 1" in bed.cli("logs", "ticker").stdout, what="first output")
    follower = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "logs", "-f", "ticker"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        seen = [follower.stdout.readline() for _ in range(30)]
        numbers = [int(s.split()[1]) for s in seen]
        assert numbers == list(range(numbers[0], numbers[0] + 30))  # in order, nothing lost
        assert bed.cli("delete", "pod", "ticker").returncode == 0
        follower.wait(timeout=15)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(5)
    assert follower.returncode == 0


def test_cli_errors_and_restart_stamp_without_agent(bed: Bed) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}},
                                 "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"]}]}}}}
    bed.create(dep)
    r = bed.cli("rollout", "restart", "deployment/d")
    assert (r.returncode, r.stdout) == (0, "deployment.apps/d restarted\n"), r.stderr
    tmpl = bed.store.get("Deployment", "default", "d")["spec"]["template"]["metadata"]
    assert "kubectl.kubernetes.io/restartedAt" in tmpl["annotations"]
    r = bed.cli("rollout", "undo", "deployment/d")
    assert (r.returncode, r.stderr) == (1, 'error: no rollout history found for deployment "d"\n')
    r = bed.cli("scale", "deployment/d")
    assert r.returncode == 1 and r.stderr.startswith("error: The --replicas=COUNT flag is required")
    r = bed.cli("scale", "svc/d", "--replicas", "2")
    assert r.returncode == 1 and "cannot scale services" in r.stderr
    r = bed.cli("rollout", "status", "deployment/d", "--no-watch")
    assert (r.returncode, r.stdout) == (0, "Waiting for deployment spec update to be observed...\n")  # no controller runs
    r = bed.cli("logs", "nope")
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): pods "nope" not found\n')
