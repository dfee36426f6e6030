"""Label selectors: parsing and matching checked against real kubectl, plus the formatters.

kubectl parses ``-l`` itself when it filters objects read with ``-f``: ``create -f pod.json -l SEL
--dry-run=client -o name`` prints ``pod/p`` when the selector matches, ``error: no objects passed
to create`` when it does not, and ``error: the provided selector "SEL" is not valid: <msg>``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kubesvc.api.selectors import (
    format_label_selector,
    format_map,
    from_label_selector,
    from_map,
    parse,
    parse_equality_map,
)
from kubesvc.errors import ClientError

KUBECTL = shutil.which("kubectl")
LABELS = {"app": "web", "tier": "fe", "n": "5", "empty": "", "example.com/owner": "team-a"}

SELECTORS = [
    "", "app=web", "app==web", "app!=web", "app!=db", "app=db", "app in (web,db)", "app notin (web,db)",
    "app notin (db)", "app", "!app", "missing", "!missing", "app=web,tier=fe", "app=web,tier=be",
    "  app = web ,  tier in (fe) ", "n>4", "n<4", "n>9", "app>1", "empty=", "empty in ()", "empty in (,x)",
    "missing!=x", "missing notin (x)", "example.com/owner=team-a", "app in (web),!missing,tier",
    "in in (x)", "a in (b,,c)",
    # errors
    "a b", "a@b=c", "!", "a=b,", ",a", "a=(b)", "a gt 3", "a<b", "a=b c", "a==b=c", "a in b", "x in (a,b",
    "a notin (x y)", "a=b!", "a=b,=c", "!!a", "!a=b", "a in (,", "a in (=)", "/a=b", "a/=b", "a/b/c=d",
    "A/b=c", "a<-b", "=", "a==(b", "a>", "a=-b", "a=" + "x" * 64, "k" * 64 + "=v",
]


def _discovery_cache(root: Path) -> None:
    d = root / "discovery" / "127.0.0.1_1"
    ref = {"groupVersion": "v1", "version": "v1"}
    (d / "v1").mkdir(parents=True)
    (d / "servergroups.json").write_text(json.dumps(
        {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{"name": "", "versions": [ref], "preferredVersion": ref}]}))
    (d / "v1" / "serverresources.json").write_text(json.dumps(
        {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["create", "get"]}]}))


@pytest.fixture(scope="module")
def kubectl_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """selector -> "match", "no match" or the error message kubectl gives."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    root = tmp_path_factory.mktemp("selectors")
    _discovery_cache(root / "cache")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": LABELS},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    (root / "pod.json").write_text(json.dumps(pod))

    def run(sel: str) -> str:
        p = subprocess.run(
            [KUBECTL or "kubectl", "--cache-dir", str(root / "cache"), "--server", "http://127.0.0.1:1", "create",
             "-f", str(root / "pod.json"), "-l", sel, "--dry-run=client", "-o", "name", "--validate=false"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, env={"HOME": str(root)})
        if p.stdout == "pod/p\n":
            return "match"
        if p.stderr == "error: no objects passed to create\n":
            return "no match"
        prefix = f"error: the provided selector {json.dumps(sel)} is not valid: "
        assert p.stderr.startswith(prefix), p.stderr
        return p.stderr[len(prefix):].rstrip("\n")

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(SELECTORS, pool.map(run, SELECTORS), strict=True))


@pytest.mark.parametrize("text", SELECTORS)
def test_parse_and_match_like_kubectl(kubectl_verdicts: dict[str, str], text: str) -> None:
    try:
        ours = "match" if parse(text).matches(LABELS) else "no match"
    except ClientError as e:
        ours = e.message
    assert ours == kubectl_verdicts[text]


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("", ""),
        ("b=1,a=2", "a=2,b=1"),
        ("x in (c,a,b)", "x in (a,b,c)"),
        ("!x,y", "!x,y"),
        ("a==b,c!=d", "a==b,c!=d"),
        ("n>3", "n>3"),
    ],
)
def test_parse_renders_sorted(text: str, rendered: str) -> None:
    assert str(parse(text)) == rendered


def test_empty() -> None:
    assert parse("").empty and parse("  ").empty
    assert not parse("a").empty
    assert from_map({}).empty and from_map({}).matches({"x": "y"})
    assert not from_label_selector(None).matches({})
    assert from_label_selector({}).matches({"a": "b"})


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe"),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
         "app=web,tier in (a,b)"),
        ({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}, {"key": "e", "operator": "Exists"}]}, "e,!x"),
        ({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["1"]}]}, "x notin (1)"),
        ({"matchExpressions": [{"key": "x", "operator": "Bogus"}]}, "<error>"),
        ({"matchExpressions": [{"key": "x", "operator": "In", "values": []}]}, "<error>"),
    ],
)
def test_format_label_selector(selector: dict[str, Any] | None, text: str) -> None:
    assert format_label_selector(selector) == text


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({"matchExpressions": [{"key": "x", "operator": "Bogus"}]}, '"Bogus" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "x", "operator": "In"}]},
         "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
        ({"matchExpressions": [{"key": "x", "operator": "Exists", "values": ["a"]}]},
         'values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist'),
        ({"matchLabels": {"bad key": "v"}},
         'key: Invalid value: "bad key": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', '
         "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
         "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ],
)
def test_from_label_selector_errors(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as e:
        from_label_selector(selector)
    assert e.value.message == message


def test_from_label_selector_matches() -> None:
    sel = from_label_selector({"matchLabels": {"app": "web"},
                               "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]})
    assert sel.matches({"app": "web", "tier": "fe"})
    assert sel.matches({"app": "web"})
    assert not sel.matches({"app": "web", "tier": "db"})
    assert not sel.matches({"app": "api"})


def test_from_map_and_format_map() -> None:
    sel = from_map({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert not sel.matches({"a": "1"})
    assert format_map({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_map({}) == "<none>"
    assert format_map(None) == "<none>"


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("a=b", {"a": "b"}),
        ("a=b,c=d", {"a": "b", "c": "d"}),
        ("a=", {"a": ""}),
        ("a=1,a=2", {"a": "2"}),
        ("bad", "unexpected label spec: bad"),
        ("a=b=c", "unexpected label spec: a=b=c"),
        ("a=b,", "unexpected label spec: "),
        ("=x", "unexpected empty label key"),
        ("", "no label spec passed"),
    ],
)
def test_parse_equality_map(text: str, result: dict[str, str] | str) -> None:
    if isinstance(result, dict):
        assert parse_equality_map(text) == result
    else:
        with pytest.raises(ClientError) as e:
            parse_equality_map(text)
        assert e.value.message == result
