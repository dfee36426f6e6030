"""Hostile input: a clear one-line error, no traceback, and the store unchanged."""

from __future__ import annotations

import os

import pytest

from kubesvc.store.db import Store

CASES = {
    "malformed-yaml": b"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: a: b\n",
    "tabs": b"apiVersion: v1\n\tkind: Service\n",
    "binary-junk": os.urandom(4096),
    "nul-bytes": b"apiVersion: v1\x00\x00kind: Service",
    "not-a-mapping": b"- a\n- b\n",
    "scalar": b"just a string\n",
    "alias-bomb": b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
""",
    "deep-nesting-yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep-nesting-json": b"{\"a\": " + b"[" * 100000 + b"]" * 100000 + b"}",
    "duplicate-keys": b"apiVersion: v1\nkind: Service\nkind: Pod\n",
    "wrong-type-metadata": b"apiVersion: v1\nkind: Service\nmetadata: [1, 2]\n",
    "wrong-type-spec": b"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: 7\n",
    "name-is-object": b"apiVersion: v1\nkind: Service\nmetadata: {name: {a: b}}\nspec: {ports: [{port: 80}]}\n",
    "kind-is-number": b"apiVersion: v1\nkind: 7\nmetadata: {name: x}\n",
    "huge-label": b"apiVersion: v1\nkind: Service\nmetadata: {name: x, labels: {a: " + b"x" * 100000 + b"}}\nspec: {ports: [{port: 80}]}\n",
    "invalid-utf8": b"apiVersion: v1\nkind: Service\nmetadata: {name: \xff\xfe}\n",
    "ports-not-list": b"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: {port: 80}}\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_is_one_clear_line(ks, cli, store_path, name):
    assert cli("create", "service", "clusterip", "keep", "--tcp=80").code == 0  # the setup in-process; the input through a real process
    before = Store(store_path).revision()
    r = ks("create", "-f", "-", input=CASES[name])
    assert r.code == 1, r
    assert "Traceback" not in r.err
    lines = [ln for ln in r.err.splitlines() if ln]
    assert 1 <= len(lines) <= 2, r.err  # the mapping error has kubectl's second line
    assert lines[0].startswith(("error: ", "Error from server ", "The Service ")), r.err
    s = Store(store_path)
    assert s.revision() == before
    assert [o["metadata"]["name"] for o in s.list("Service", "default")] == ["keep"]
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_alias_bomb_is_refused_in_kubectls_words(ks):
    """Refused while composing, before any alias expands (tests/api/test_manifests.py bounds its memory)."""
    r = ks("create", "-f", "-", input=CASES["alias-bomb"])
    assert (r.code, r.err) == (1, "error: error parsing STDIN: error converting YAML to JSON: yaml: document contains excessive aliasing\n")


def test_huge_input_is_refused(ks, tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.write(b"# padding\n" * (4 * 1024 * 1024))
    r = ks("create", "-f", str(big))
    assert r.code == 1 and r.err.startswith("error: error parsing") and "larger than" in r.err


def test_store_path_that_is_not_a_database(tmp_path):
    import subprocess
    import sys

    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    p = subprocess.run([sys.executable, "-m", "kubesvc", "--store", str(bogus), "get", "svc"], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.startswith('error: cannot open the store "') and "Traceback" not in p.stderr
