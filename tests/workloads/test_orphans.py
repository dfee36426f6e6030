"""Nothing orphaned, no split brain: a kubelet killed with -9 leaves records; the next one adopts its
pods (same pids, one copy each) or stops those that are gone; `down` stops what a dead kubelet left."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.workloads.fixtures import POD_PYTHON, Bed, alive, container_pid, running_ready

SLEEP = [POD_PYTHON, "-c", "import time\nwhile True: time.sleep(1)"]


def pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "x", "command": SLEEP}],
                     "terminationGracePeriodSeconds": 1, **spec}}


def running_pids(bed: Bed, *names: str) -> dict[str, int]:
    pods = {n: bed.pod(n) for n in names}
    if not all(running_ready(p) for p in pods.values()):
        return {}
    return {n: container_pid(p) for n, p in pods.items()}  # type: ignore[arg-type]


def test_restarted_kubelet_adopts_its_pods_no_second_copy(bed: Bed) -> None:
    bed.start_kubelet()
    for name in ("one", "two"):
        bed.create(pod(name))
    before = bed.wait(lambda: running_pids(bed, "one", "two"), what="both running")
    bed.kill_kubelet()
    assert all(alive(pid) for pid in before.values())  # kill -9: the pods outlive it, recorded
    bed.start_kubelet()
    bed.create(pod("sentinel"))  # once it runs, the new kubelet has long dealt with the others
    bed.wait(lambda: running_pids(bed, "sentinel"), what="sentinel running")
    assert running_pids(bed, "one", "two") == before
    for name, pid in before.items():
        assert bed.copies(name) == [pid]
        assert bed.pod(name)["status"]["containerStatuses"][0]["restartCount"] == 0
    # An adopted container that exits is seen and restarted once, by the new kubelet.
    os.killpg(before["one"], signal.SIGKILL)
    again = bed.wait(lambda: (p := bed.pod("one")) and p["status"]["containerStatuses"][0]["restartCount"] == 1
                     and running_ready(p) and container_pid(p), what="adopted container restarted")
    assert again != before["one"] and bed.copies("one") == [again]
    assert bed.kubelet is not None and bed.kubelet.stop() == 0  # SIGTERM stops adopted pods too
    assert bed.copies("one") == [] and bed.copies("two") == []


def test_pod_deleted_while_kubelet_dead_is_stopped_on_restart(bed: Bed) -> None:
    bed.start_kubelet()
    bed.create(pod("gone"))
    bed.create(pod("kept"))
    pids = bed.wait(lambda: running_pids(bed, "gone", "kept"), what="running")
    bed.kill_kubelet()
    bed.reg.delete("Pod", "default", "gone")
    pods_dir = Path(bed.store_path + ".d/pods")
    assert any(d.name.startswith("default_gone_") for d in pods_dir.iterdir())
    bed.start_kubelet()
    bed.wait(lambda: not alive(pids["gone"]), what="orphan of a deleted pod stopped")
    bed.wait(lambda: not any(d.name.startswith("default_gone_") for d in pods_dir.iterdir()), what="its dir removed")
    assert bed.copies("kept") == [pids["kept"]]


def test_record_of_a_recycled_pid_is_not_signalled(bed: Bed) -> None:
    """A record whose pid now belongs to another process (start time differs) is never adopted or killed."""
    bed.start_kubelet()
    bed.create(pod("p"))
    pid = bed.wait(lambda: running_pids(bed, "p"), what="running")["p"]
    bed.kill_kubelet()
    record = next(Path(bed.store_path + ".d/pods").glob("default_p_*/main/process.json"))
    rec = json.loads(record.read_text())
    assert rec["pid"] == pid and rec["start"]
    rec["start"] = str(int(rec["start"]) + 1)  # as if pid had been reused by a process started later
    record.write_text(json.dumps(rec))
    bed.start_kubelet()
    # Not ours any more: the kubelet starts the container anew and leaves the "stranger" alone.
    new = bed.wait(lambda: (p := bed.pod("p")) and running_ready(p) and container_pid(p) != pid and container_pid(p),
                   what="started anew")
    assert alive(pid) and sorted(bed.copies("p")) == sorted([pid, new])
    os.killpg(pid, signal.SIGKILL)  # the test's own cleanup of its "stranger"


def test_up_after_killed_kubelet_adopts_and_down_stops_everything(bed: Bed) -> None:
    try:
        r = bed.ks("up", "--components", "kubelet", timeout=60)
        assert r.returncode == 0, r.stderr
        bed.create(pod("web"))
        pid = bed.wait(lambda: running_pids(bed, "web"), what="running", timeout=30)["web"]
        kubelet = json.loads(Path(bed.store_path + ".d/kubelet.pid").read_text())["pid"]
        os.kill(kubelet, signal.SIGKILL)
        bed.wait(lambda: not alive(kubelet), what="kubelet gone")
        r = bed.ks("up", "--components", "kubelet", timeout=60)
        assert r.returncode == 0, r.stderr
        bed.create(pod("sentinel"))
        bed.wait(lambda: running_pids(bed, "sentinel"), what="sentinel running", timeout=30)
        assert running_pids(bed, "web") == {"web": pid} and bed.copies("web") == [pid]  # adopted, no second copy
        r = bed.ks("down")
        assert r.returncode == 0, r.stderr
        assert bed.copies("web") == [] and bed.copies("sentinel") == []
    finally:
        bed.ks("down")


def test_down_after_killed_kubelet_stops_its_pods(bed: Bed) -> None:
    try:
        r = bed.ks("up", "--components", "kubelet", timeout=60)
        assert r.returncode == 0, r.stderr
        bed.create(pod("web"))
        pid = bed.wait(lambda: running_pids(bed, "web"), what="running", timeout=30)["web"]
        kubelet = json.loads(Path(bed.store_path + ".d/kubelet.pid").read_text())["pid"]
        os.kill(kubelet, signal.SIGKILL)
        bed.wait(lambda: not alive(kubelet), what="kubelet gone")
        assert bed.copies("web") == [pid]
        r = bed.ks("down")
        assert r.returncode == 0, r.stderr
        assert "pods: stopped 1 container process(es) a killed kubelet left running" in r.stdout, r.stdout
        assert bed.copies("web") == [] and not alive(pid)
    finally:
        bed.ks("down")
