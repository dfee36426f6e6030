"""Reading -f manifests (kubesvc/api/manifests.py, kubesvc/api/yamlload.py) as kubectl 1.32 reads them.

The tables were read off kubectl 1.32.4 (``kubectl label --local -o json -f FILE a=b``, which decodes a manifest
without a cluster); where kubectl is installed, ``test_*_as_kubectl`` ask it again. Hostile input is checked in a
child process with its address space capped, so a regression fails instead of eating the machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubesvc.api import yamlload
from kubesvc.api.manifests import parse_documents, read_sources
from kubesvc.errors import ClientError

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"

# plain scalar -> the value kubectl holds (go-yaml v2 resolve.go: YAML 1.1, no sexagesimal, timestamps as text)
SCALARS: list[tuple[str, Any]] = [
    ("0755", 493), ("0x1F", 31), ("0X1F", 31), ("0o17", 15), ("0b101", 5), ("0B11", 3), ("-0b11", -3), ("+0b1", 1),
    ("017_7", 127), ("1_000", 1000), ("1__0", 10), ("0x_1F", 31), ("+80", 80), ("080", 80), ("1e3", 1000),
    ("1E3", 1000), ("1e+3", 1000), ("8.0", 8), ("0.", 0), ("1.", 1), (".5", 0.5), ("+.5", 0.5), ("0.1e2", 10),
    ("685.230_15e+03", 685230.15), ("+685_230", 685230), ("1.0e+21", 1e21), ("1.5e400", "1.5e400"),
    ("9223372036854775807", 9223372036854775807),
    ("1:30", "1:30"), ("190:20:30", "190:20:30"), ("2001-12-14", "2001-12-14"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("0x", "0x"), ("0o", "0o"), ("0b", "0b"), ("_1", "_1"), (".e3", ".e3"), ("=", "="), ("<<", "<<"),
    ("~", None), ("null", None), ("Null", None), ("NULL", None), ("", None),
    ("y", True), ("Y", True), ("yes", True), ("Yes", True), ("YES", True), ("on", True), ("On", True), ("ON", True),
    ("true", True), ("True", True), ("TRUE", True), ("n", False), ("N", False), ("no", False), ("NO", False),
    ("off", False), ("Off", False), ("false", False), ("FALSE", False), ("tRue", "tRue"), ("oN", "oN"),
    ('"80"', "80"), ("'yes'", "yes"), ('"0755"', "0755"), ("!!str 0755", "0755"), ("!!str yes", "yes"),
    ('!!int "12"', 12), ("!!float 3", 3), ('!!float "1"', 1), ("!!bool yes", True), ('!!null ""', None),
    ("!!timestamp 2001-12-14", "2001-12-14"), ("!!binary aGVsbG8=", "hello"), ("!foo 1", "1"),
]
# numbers past int64 become floats (go-yaml gives uint64/float64, Go's JSON writes shortest digits, the decoder
# reads a float64); kubectl prints them as 9223372036854776000, which is the same float
BIG = [("9223372036854775808", 9.223372036854776e18), ("18446744073709551616", 1.8446744073709552e19),
       ("-9223372036854775809", -9.223372036854776e18), ("123456789012345678901.0", 1.2345678901234568e20)]


def doc(body: str) -> dict[str, Any]:
    objs = parse_documents((CM + body).encode(), "m.yaml")
    assert len(objs) == 1
    return objs[0]


def scalar_list(cases: list[tuple[str, Any]]) -> str:
    return "v:\n" + "".join(f"- {text}\n" for text, _ in cases)


@pytest.mark.parametrize("parser", ["libyaml", "pure"])
def test_scalars_are_yaml_1_1_as_kubectl_reads_them(parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if parser == "pure":
        monkeypatch.setattr(yamlload, "CParser", None)
    got = doc(scalar_list(SCALARS + BIG))["v"]
    for (text, w), g in zip(SCALARS + BIG, got, strict=True):
        assert (g, type(g)) == (w, type(w)), text


def test_the_c_parser_is_used() -> None:
    assert yamlload.libyaml(), "ruamel.yaml.clib is a declared dependency: the C parser should load"


def test_a_bool_label_is_refused_as_kubectl_refuses_it(tmp_path: Path) -> None:
    m = tmp_path / "svc.yaml"
    m.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    enabled: yes\n"
                 "spec:\n  ports:\n  - port: 80\n")
    assert read_sources([str(m)])[0].obj["metadata"]["labels"] == {"enabled": True}
    r = run_cli(tmp_path, "create", "-f", str(m))
    assert r.returncode == 1, r
    assert r.stderr.count("\n") == 1 and r.stderr.endswith(
        "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string\n"), r.stderr
    assert run_cli(tmp_path, "get", "svc", "web").returncode == 1  # nothing was stored


def test_keys_become_strings_as_sigs_k8s_io_yaml_writes_them() -> None:
    got = doc("data:\n  yes: 1\n  n: 2\n  3: a\n  0x10: b\n  1.5: c\n  1e3: d\n  1e6: e\n  .inf: f\n  '0755': g\n")
    assert got["data"] == {"true": 1, "false": 2, "3": "a", "16": "b", "1.5": "c", "1000": "d", "1e+06": "e",
                           ".inf": "f", "0755": "g"}


def test_anchors_aliases_and_merge_keys_as_go_yaml_v2() -> None:
    got = doc("f: &f {a: 1, c: 1}\nh: &h {a: 3, d: 3}\n"
              "g:\n  a: 0\n  <<: *f\n  b: 2\n"  # a merged key overwrites one written before it (go-yaml v2)
              "i:\n  <<: [*f, *h]\n"  # of several, the first wins
              "j:\n  <<: *f\n  a: 9\n"
              "k: {<<: {x: 1}, '<<': 2}\n"  # a quoted << is an ordinary key
              "l: &l [1, {m: 2}]\nm: [*l, *l]\n")
    assert got["g"] == {"a": 1, "b": 2, "c": 1}
    assert got["i"] == {"a": 1, "c": 1, "d": 3}
    assert got["j"] == {"a": 9, "c": 1}
    assert got["k"] == {"x": 1, "<<": 2}
    assert got["m"] == [[1, {"m": 2}], [1, {"m": 2}]]
    got["m"][0][1]["m"] = 7  # an alias is a copy: changing one use changes nothing else
    assert got["m"][1][1]["m"] == 2 and got["l"][1]["m"] == 2


ERRORS = [
    # (body after the ConfigMap head, kubectl's message after "error parsing m.yaml: ")
    ("data:\n  labels: a: b\n", "error converting YAML to JSON: yaml: line 6: mapping values are not allowed in this context"),
    ("a: [1, 2\n", "error converting YAML to JSON: yaml: line 5: did not find expected ',' or ']'"),
    ("a: 'abc\n", "error converting YAML to JSON: yaml: line 6: found unexpected end of stream"),
    ("- a\n", "error converting YAML to JSON: yaml: line 4: did not find expected key"),
    ('a: "\\q"\n', "error converting YAML to JSON: yaml: line 5: found unknown escape character"),
    ("a: b\x07\n", "error converting YAML to JSON: yaml: control characters are not allowed"),
    ("a: *x\n", "error converting YAML to JSON: yaml: unknown anchor 'x' referenced"),
    ("a: .nan\n", "error converting YAML to JSON: json: unsupported value: NaN"),
    ("a: -.inf\n", "error converting YAML to JSON: json: unsupported value: -Inf"),
    ("a: !!int abc\n", "error converting YAML to JSON: yaml: cannot decode !!str `abc` as a !!int"),
    ("a: !!bool 1\n", "error converting YAML to JSON: yaml: cannot decode !!int `1` as a !!bool"),
    ("a: {<<: 1}\n", "error converting YAML to JSON: yaml: map merge requires map or sequence of maps as the value"),
]


@pytest.mark.parametrize("body,message", ERRORS, ids=[m.rsplit(": ", 1)[-1] for _, m in ERRORS])
def test_errors_read_as_kubectl_words_them(body: str, message: str) -> None:
    with pytest.raises(ClientError) as e:
        parse_documents((CM + body).encode(), "m.yaml")
    assert str(e.value) == f"error parsing m.yaml: {message}"


def test_duplicate_keys_in_go_yaml_strict_wording() -> None:
    """kubectl's own client keeps the last value; its apiserver refuses the object under fieldValidation=Strict,
    in go-yaml's strict words. kubesvc refuses it before anything is sent."""
    with pytest.raises(ClientError) as e:
        parse_documents(b"apiVersion: v1\nkind: Service\nkind: Pod\n", "STDIN")
    assert str(e.value) == ('error parsing STDIN: error converting YAML to JSON: yaml: unmarshal errors: '
                            'line 3: key "kind" already set in map')
    with pytest.raises(ClientError, match='line 2: key "true" already set in map'):
        parse_documents(b"yes: 1\n'true': 2\n", "STDIN")  # the same key once written as JSON
    assert parse_documents(b"kind: Service\n<<: {kind: Pod}\n", "STDIN") == [{"kind": "Pod"}]  # a merge is no duplicate


@needs_kubectl
def test_scalars_as_kubectl(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(CM + scalar_list(SCALARS))
    p = subprocess.run([KUBECTL, "label", "--local", "-o", "json", "-f", str(path), "a=b"],  # type: ignore[list-item]
                       capture_output=True, text=True, timeout=60, env=kubectl_env(tmp_path))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["v"] == read_sources([str(path)])[0].obj["v"]


@needs_kubectl
@pytest.mark.parametrize("body,message", ERRORS, ids=[m.rsplit(": ", 1)[-1] for _, m in ERRORS])
def test_errors_as_kubectl(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(CM + body)
    p = subprocess.run([KUBECTL, "label", "--local", "-o", "json", "-f", str(path), "a=b"],  # type: ignore[list-item]
                       capture_output=True, text=True, timeout=60, env=kubectl_env(tmp_path))
    assert p.returncode == 1 and p.stderr == f"error: error parsing {path}: {message}\n"


def kubectl_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return dict(os.environ, HOME=str(home), KUBECONFIG=str(home / "none"))


# --------------------------------------------------------------------------------------------- hostile input


def bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": width**levels strings from a few hundred bytes."""
    lines = [f'a0: &a0 [{", ".join(["lol"] * width)}]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


CAP = 1 << 30  # address space of the child that reads hostile input

_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from kubesvc.api.manifests import read_sources
from kubesvc.errors import ClientError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    n = len(read_sources(sys.argv[1:]))
    print("read", n)
except ClientError as e:
    print(e)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def probe(*paths: str) -> tuple[str, int]:
    """read_sources(paths) in a child capped at CAP bytes: (its one line of outcome, its peak RSS growth in KiB)."""
    p = subprocess.run([sys.executable, "-c", _PROBE.format(cap=CAP), *paths], capture_output=True, text=True,
                       timeout=120, cwd=str(ROOT))
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    outcome, grown = p.stdout.splitlines()
    return outcome, int(grown)


@pytest.mark.parametrize("text", [
    bomb(),  # 9**9 strings, ~400 bytes
    bomb(levels=30, width=2),  # 2**30, deep and narrow
    "a: &a [" + ",".join(["x"] * 1000) + "]\nb: [" + ",".join(["*a"] * 1000) + "]\n",  # quadratic, a million values
    "m0: &m0 {" + ", ".join(f"k{j}: lol" for j in range(9)) + "}\n"
    + "".join(f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(9)) + "}\n" for i in range(1, 9)),
], ids=["billion-laughs", "deep-doubling", "quadratic", "mappings"])
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(CM + text)
    outcome, grown_kib = probe(str(path))
    assert outcome == f"error parsing {path}: error converting YAML to JSON: yaml: document contains excessive aliasing"
    assert grown_kib < 30 * 1024, f"reading a {len(text)}-byte bomb grew the process by {grown_kib} KiB"


def test_the_bomb_through_the_cli_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    assert len(bomb()) < 500
    r = run_cli(tmp_path, "create", "-f", str(path), cap=CAP)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"error: error parsing {path}: error converting YAML to JSON: yaml: document contains excessive aliasing\n"


def aliased(raw: int, uses: int) -> str:
    return CM + "a: &a [" + ",".join(["x"] * raw) + "]\nb: [" + ",".join(["*a"] * uses) + "]\n"


# go-yaml's rule lets up to 99 % of a document under 400,000 values come from aliases: 1,000 strings used 110
# times pass (98.99 %), 120 times do not (99.07 %); 300 used 300 times neither (99.3 %)
LIMITS = [(1000, 110, True), (1000, 120, False), (300, 300, False)]


@pytest.mark.parametrize("raw,uses,ok", LIMITS)
def test_aliases_are_read_within_kubectl_limits(tmp_path: Path, raw: int, uses: int, ok: bool) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(aliased(raw, uses))
    outcome, _ = probe(str(path))
    assert outcome == ("read 1" if ok else f"error parsing {path}: error converting YAML to JSON: yaml: document contains excessive aliasing")


@needs_kubectl
@pytest.mark.parametrize("raw,uses,ok", LIMITS)
def test_alias_limits_as_kubectl(tmp_path: Path, raw: int, uses: int, ok: bool) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(aliased(raw, uses))
    p = subprocess.run([KUBECTL, "label", "--local", "-o", "json", "-f", str(path), "a=b"],  # type: ignore[list-item]
                       capture_output=True, text=True, timeout=60, env=kubectl_env(tmp_path))
    assert p.returncode == (0 if ok else 1), p.stderr
    if ok:
        assert json.loads(p.stdout)["b"] == read_sources([str(path)])[0].obj["b"]


def test_nesting_is_bounded_while_composing(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 200_000 + "]" * 200_000 + "\n")
    outcome, _ = probe(str(deep))
    assert outcome == f"error parsing {deep}: document is nested too deeply (more than 100 levels)"
    # an alias of a deep value placed deep is as deep as its expansion
    nested = "&d " + "[" * 60 + "]" * 60
    with pytest.raises(ClientError, match="nested too deeply"):
        parse_documents(f"a: {nested}\nb: {'[' * 50}*d{']' * 50}\n".encode(), "STDIN")
    assert parse_documents(f"a: {'[' * 99}{']' * 99}\n".encode(), "STDIN")  # 100 levels are fine


def test_values_per_source_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlload, "MAX_NODES", 1000)
    text = "".join(f"---\nkind: List\nitems: [{', '.join(['{}'] * 40)}]\n" for _ in range(30)).encode()  # 45 each
    with pytest.raises(ClientError, match=r"^error parsing STDIN: document is too large \(more than 1000 values\)$"):
        parse_documents(text, "STDIN")


# --------------------------------------------------------------------------------------------- what stays


def test_documents_lists_json_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("---\n" + CM + "---\n\n---\napiVersion: v1\nkind: List\nitems:\n"
                                     "- {apiVersion: v1, kind: ConfigMap, metadata: {name: cm2}}\n"
                                     "- {apiVersion: v1, kind: ConfigMapList, items: [{kind: ConfigMap, metadata: {name: cm3}}]}\n")
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "n": 8.0}')
    (tmp_path / "c.txt").write_text("not read")
    got = read_sources([str(tmp_path)])
    assert [(m.obj["metadata"]["name"], Path(m.source).name) for m in got] == [
        ("x", "a.yaml"), ("cm2", "a.yaml"), ("cm3", "a.yaml"), ("j", "b.json")]
    assert got[3].obj["n"] == 8 and type(got[3].obj["n"]) is int
    import io

    stdin = read_sources(["-"], stdin=io.BytesIO(CM.encode()))
    assert [(m.obj["metadata"]["name"], m.source) for m in stdin] == [("x", "STDIN")]
    with pytest.raises(ClientError, match="^error parsing STDIN: json: cannot unmarshal array into Go value"):
        read_sources(["-"], stdin=io.BytesIO(b"- a\n"))


def run_cli(tmp_path: Path, *args: str, cap: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBESVC_STORE=str(tmp_path / "store.db"))
    env.pop("KUBESVC_DEBUG", None)

    def limit() -> None:
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return subprocess.run([sys.executable, "-m", "kubesvc", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=str(ROOT), preexec_fn=limit)
