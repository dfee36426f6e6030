"""`kubesvc exec` runs the command in the container's recorded context (env, cwd, user), passes stdin with -i
and the exit code through, without an API server."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.streams_bed import bed  # noqa: F401
from tests.support.procs import ROOT
from tests.workloads.fixtures import POD_UID, Bed


def ks(bed: Bed, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: F811
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", bed.store_path, *args], input=input,
                          capture_output=True, text=True, cwd="/", timeout=30)


def test_exec_context_and_exit_codes(bed: Bed) -> None:  # noqa: F811
    r = ks(bed, "exec", "web", "--", "sh", "-c", 'echo "$GREETING|$PORT|$(pwd)|$(id -u)"')
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"hello from web|8080|{ROOT}|{POD_UID}\n"
    r = ks(bed, "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout) == (3, "out\n")
    assert r.stderr == "err\ncommand terminated with exit code 3\n"
    r = ks(bed, "exec", "svc/web", "-c", "app", "--", "true")
    assert r.returncode == 0 and r.stdout == ""


def test_exec_stdin(bed: Bed) -> None:  # noqa: F811
    r = ks(bed, "exec", "-i", "web", "--", "tr", "a-z", "A-Z", input="piped\n")
    assert r.stdout == "PIPED\n", r.stderr
    r = ks(bed, "exec", "web", "--", "cat", input="not passed without -i\n")
    assert r.returncode == 0 and r.stdout == ""
    r = ks(bed, "exec", "-it", "web", "--", "true", input="")
    assert r.returncode == 0 and "Unable to use a TTY - input is not a terminal or the right kind of file" in r.stderr


def test_exec_errors(bed: Bed) -> None:  # noqa: F811
    r = ks(bed, "exec", "web", "--", "no-such-binary-xyz")
    assert r.returncode == 1 and 'error: exec: "no-such-binary-xyz": executable file not found in $PATH' in r.stderr
    r = ks(bed, "exec", "web", "-c", "nope", "--", "true")
    assert r.returncode == 1 and "container nope is not valid for pod web" in r.stderr
    r = ks(bed, "exec", "nothere", "--", "true")
    assert r.returncode == 1 and 'pods "nothere" not found' in r.stderr
    r = ks(bed, "exec", "web")
    assert r.returncode == 1 and "you must specify at least one command for the container" in r.stderr
