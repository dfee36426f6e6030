"""`kubesvc diff -f`: diff -u -N of LIVE and MERGED directories as kubectl lays them out, $KUBECTL_EXTERNAL_DIFF,
and kubectl's exit codes (0 no differences, 1 differences, >1 the diff program's error); nothing is written."""

from __future__ import annotations

import re
from pathlib import Path

SVC = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


def test_diff_exit_codes_and_layout(ks, manifest, store_path: str) -> None:  # type: ignore[no-untyped-def]
    same = manifest(SVC, "svc.yaml")
    changed = manifest(SVC.replace("8080", "9999"), "svc2.yaml")
    new = manifest(SVC.replace("name: web", "name: fresh"), "new.yaml")
    assert ks("apply", "-f", same).code == 0
    rev = ks("get", "svc", "web", "-o", "jsonpath={.metadata.resourceVersion}").out
    r = ks("diff", "-f", same)
    assert (r.code, r.out, r.err) == (0, "", "")
    r = ks("diff", "-f", changed)
    assert r.code == 1, r
    lines = r.out.splitlines()
    assert re.fullmatch(r"diff -u -N /\S+/LIVE-\S+/v1\.Service\.default\.web /\S+/MERGED-\S+/v1\.Service\.default\.web", lines[0])
    assert "-    targetPort: 8080" in lines and "+    targetPort: 9999" in lines
    r = ks("diff", "-f", new)
    assert r.code == 1 and "@@ -0,0 +1," in r.out and "+  name: fresh" in r.out
    assert ks("get", "svc", "web", "-o", "jsonpath={.metadata.resourceVersion}").out == rev  # nothing written
    assert ks("get", "svc", "fresh").code == 1
    assert ks("diff").err == "error: must specify one of -f and -k\n"


def test_diff_external_program(ks, manifest, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    changed = manifest(SVC.replace("8080", "9999"), "svc2.yaml")
    assert ks("apply", "-f", manifest(SVC, "svc.yaml")).code == 0
    monkeypatch.setenv("KUBECTL_EXTERNAL_DIFF", "ls -1")
    r = ks("diff", "-f", changed)
    assert r.code == 0 and r.out.count("v1.Service.default.web") == 2  # ls LIVE MERGED: one file each
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("KUBECTL_EXTERNAL_DIFF", str(script))
    assert ks("diff", "-f", changed).code == 3  # >1: the program's error, passed through
