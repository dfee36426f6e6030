"""`kubesvc edit` with a scripted $EDITOR (a Python script that rewrites the file): kubectl's header, 'edited',
'Edit cancelled, no changes made.', the re-opened file with the errors as comments, the saved copy when the
same invalid file is saved twice, a change made by someone else while the editor is open, $KUBE_EDITOR first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubesvc.cli.commands.edit import HEADER
from tests.cli.conftest import ROOT

EDITOR = r'''
import os, subprocess, sys
path = sys.argv[-1]
text = open(path).read()
log = os.environ["EDLOG"]
with open(log, "a") as f:
    f.write(text + "\0")
n = open(log).read().count("\0")
mode = os.environ.get("EDMODE", "")
if mode == "port":
    text = text.replace("targetPort: 8080", "targetPort: 8181")
elif mode == "bad":
    text = text.replace("type: ClusterIP", "type: Bogus")
elif mode == "badthenfix":
    fixed = text.replace("type: Bogus", "type: ClusterIP").replace("targetPort: 8080", "targetPort: 8282")
    text = text.replace("type: ClusterIP", "type: Bogus") if n == 1 else fixed
elif mode == "empty":
    text = ""
elif mode == "concurrent":  # someone labels the object while the editor is open
    subprocess.run([sys.executable, "-m", "kubesvc", "label", "svc", "web", "other=1"], check=True, capture_output=True)
    text = text.replace("targetPort: 8080", "targetPort: 8383")
open(path, "w").write(text)
'''


@pytest.fixture
def edit(tmp_path: Path, store_path: str):  # type: ignore[no-untyped-def]
    script = tmp_path / "ed.py"
    script.write_text(EDITOR)
    log = tmp_path / "log"
    env = {k: v for k, v in os.environ.items() if k not in ("EDITOR", "KUBE_EDITOR", "KUBESVC_DEBUG")}
    env.update(KUBESVC_STORE=store_path, EDLOG=str(log))

    def run(mode: str, *args: str, var: str = "EDITOR") -> tuple[int, str, str, list[str]]:
        log.write_text("")
        e = dict(env, EDMODE=mode, **{var: f"{sys.executable} {script}"})
        p = subprocess.run([sys.executable, "-m", "kubesvc", "edit", *args], capture_output=True, text=True, env=e,
                           cwd=str(ROOT), timeout=60)
        return p.returncode, p.stdout, p.stderr, [t for t in log.read_text().split("\0") if t]

    subprocess.run([sys.executable, "-m", "kubesvc", "create", "service", "clusterip", "web", "--tcp=80:8080"],
                   env=env, check=True, capture_output=True)
    return run


def _get(store_path: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "kubesvc", "--store", store_path, "get", "svc", "web", "-o", "json"],
                       capture_output=True, text=True, check=True, cwd=str(ROOT))
    return json.loads(p.stdout)


def test_edit_saves_a_change(edit, store_path: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err, opened = edit("port", "svc", "web")
    assert (code, out, err) == (0, "service/web edited\n", "")
    assert len(opened) == 1 and opened[0].startswith(HEADER + "apiVersion: v1\nkind: Service\n")
    assert _get(store_path)["spec"]["ports"][0]["targetPort"] == 8181
    code, out, err, _ = edit("port", "svc/web", "-o", "jsonpath={.metadata.name}", var="KUBE_EDITOR")
    assert (code, out, err) == (0, "", "Edit cancelled, no changes made.\n")  # already 8181: nothing changed


def test_edit_unchanged_cancels(edit, store_path: str) -> None:  # type: ignore[no-untyped-def]
    rv = _get(store_path)["metadata"]["resourceVersion"]
    assert edit("", "svc", "web")[:3] == (0, "", "Edit cancelled, no changes made.\n")
    assert _get(store_path)["metadata"]["resourceVersion"] == rv


def test_edit_reopens_with_errors_then_gives_up(edit, store_path: str) -> None:  # type: ignore[no-untyped-def]
    rv = _get(store_path)["metadata"]["resourceVersion"]
    code, out, err, opened = edit("bad", "svc", "web")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == 'error: services "web" is invalid'
    assert lines[1].startswith('A copy of your changes has been stored to "') and lines[2] == "error: Edit cancelled, no valid changes were saved."
    copy = lines[1].split('"')[1]
    try:
        assert "type: Bogus" in Path(copy).read_text()
    finally:
        os.unlink(copy)
    assert len(opened) == 2
    assert opened[1].startswith(HEADER + '# services "web" was not valid:\n# * spec.type: Unsupported value: "Bogus": '
                                'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"\n#\napiVersion: v1\n')
    assert _get(store_path)["metadata"]["resourceVersion"] == rv
    code, out, err, opened = edit("empty", "svc", "web")
    assert code == 1 and '# * <nil>: Invalid value: "The edited file failed validation": invalid object to validate\n' in opened[1]
    os.unlink(err.split('"')[3])


def test_edit_fixed_on_reopen_is_saved(edit, store_path: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err, opened = edit("badthenfix", "svc", "web")
    assert (code, out, err) == (0, "service/web edited\n", 'error: services "web" is invalid\n')
    assert len(opened) == 2 and _get(store_path)["spec"]["ports"][0]["targetPort"] == 8282


def test_edit_keeps_a_change_made_while_the_editor_was_open(edit, store_path: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err, _ = edit("concurrent", "svc", "web")
    assert (code, out, err) == (0, "service/web edited\n", "")
    obj = _get(store_path)
    assert obj["spec"]["ports"][0]["targetPort"] == 8383 and obj["metadata"]["labels"]["other"] == "1"


def test_edit_errors(edit) -> None:  # type: ignore[no-untyped-def]
    assert edit("port", "svc", "nope")[:3] == (1, "", 'Error from server (NotFound): services "nope" not found\n')
    assert edit("port", "svc")[:3] == (1, "", "error: resource(s) were provided, but no name was specified\n")
