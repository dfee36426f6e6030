"""`kubesvc logs` with kubectl's flags against a real kubelet's log files."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.streams_bed import bed  # noqa: F401
from tests.support.procs import ROOT
from tests.workloads.fixtures import Bed


def test_logs_flags(bed: Bed) -> None:  # noqa: F811
    r = bed.cli("logs", "logger")
    assert r.returncode == 0 and r.stdout == "line 0\nline 1\nline 2\nline 3\nline 4\nto stderr\n", r.stderr
    assert bed.cli("logs", "pod/logger", "--tail", "2").stdout == "line 4\nto stderr\n"
    assert bed.cli("logs", "logger", "--limit-bytes", "7").stdout == "line 0\n"
    stamped = bed.cli("logs", "logger", "--timestamps", "--tail", "1").stdout
    assert stamped.endswith("Z to stderr\n") and stamped[:2] == "20"
    assert bed.cli("logs", "logger", "--since", "1h").stdout.count("line") == 5
    assert bed.cli("logs", "logger", "--since-time", "2999-01-01T00:00:00Z").stdout == ""
    r = bed.cli("logs", "-l", "app=logger", "--prefix", "--tail", "1")
    assert r.stdout == "[pod/logger/app] to stderr\n", r.stderr
    r = bed.cli("logs", "-l", "app=logger", "--all-containers")  # a selector: the last 10 lines
    assert r.stdout.count("\n") == 6
    r = bed.cli("logs", "svc/web")
    assert r.returncode == 0, r.stderr


def test_logs_errors(bed: Bed) -> None:  # noqa: F811
    r = bed.cli("logs", "logger", "-c", "nope")
    assert r.returncode == 1 and "container nope is not valid for pod logger" in r.stderr
    r = bed.cli("logs", "nothere")
    assert r.returncode == 1 and 'pods "nothere" not found' in r.stderr
    r = bed.cli("logs", "logger", "--since", "1h", "--since-time", "2020-01-01T00:00:00Z")
    assert r.returncode == 1 and "at most one of `sinceTime` or `sinceSeconds` may be specified" in r.stderr
    r = bed.cli("logs", "logger", "--since-time", "yesterday")
    assert r.returncode == 1 and 'invalid sinceTime "yesterday"' in r.stderr
    r = bed.cli("logs")
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_logs_follow(bed: Bed) -> None:  # noqa: F811
    p = subprocess.Popen([sys.executable, "-m", "kubesvc", "--store", bed.store_path, "logs", "-f", "logger", "--tail", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == "to stderr\n"
        assert p.poll() is None
    finally:
        p.kill()
        p.wait(10)
