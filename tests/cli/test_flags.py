"""Flags read as kubectl reads them (issue 11, item 3), through the real CLI: Typer's CliRunner and a subprocess
must agree on every case. Also: --version, unknown flags and formats, --dry-run=client without the store,
`-o wide` refused by create/apply before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer

from kubesvc.cli.app import COMMANDS, build_app
from kubesvc.cli.flags import normalize
from tests.support.clirunner import CliRunner, shared_app

ROOT = Path(__file__).resolve().parents[2]

SVC = """apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {app: web}
  ports:
  - port: 80
"""
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: web, command: ["true"]}]
"""

_APP = shared_app()
_RUNNER = CliRunner()  # converts _APP to its click command once, not on every call


def in_process(store: str, *args: str) -> tuple[int, str, str]:
    r = _RUNNER.invoke(_APP, ["--store", store, *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def subprocess_run(store: str, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    env.pop("KUBESVC_DEBUG", None)
    env.pop("KUBESVC_STORE", None)
    p = subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], capture_output=True, env=env,
                       cwd=str(ROOT), timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def revision(store: str) -> int:
    """The store's revision: every write, dry runs' rolled-back ones aside, moves it."""
    from kubesvc.store.db import Store

    with Store.open(store) as s:
        return s.revision()


def both(store: str, *args: str) -> tuple[int, str, str]:
    """The same command line through CliRunner and a subprocess: one answer."""
    a = in_process(store, *args)
    b = subprocess_run(store, *args)
    assert a == b, (args, a, b)
    return a


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[str, str]:
    """A store with Service web (app=web) and Deployment web in kube-system, nothing in default; and the
    Service's manifest file."""
    store = str(tmp_path / "store.db")
    svc = tmp_path / "svc.yaml"
    svc.write_text(SVC)
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(DEPLOY)
    for path in (svc, deploy):
        assert in_process(store, "create", "-n", "kube-system", "-f", str(path))[0] == 0
    return store, str(svc)


def ns_forms(value: str) -> list[list[str]]:
    return [["-n", value], [f"-n={value}"], [f"-n{value}"], [f"--namespace={value}"], ["--namespace", value]]


def forms(short: str, long: str, value: str) -> list[list[str]]:
    return [[short, value], [f"{short}={value}"], [f"{short}{value}"], [f"{long}={value}"], [long, value]]


NS = [" ".join(f) for f in ns_forms("kube-system")]


# ------------------------------------------------------------------------------------------ -n, every verb


@pytest.mark.parametrize("form", NS)
def test_get_namespace_forms(seeded: tuple[str, str], form: str) -> None:
    store, _ = seeded
    assert both(store, "get", "svc", *form.split(), "-o", "name") == (0, "service/web\n", "")
    # before the verb too (the root's global flag)
    assert both(store, *form.split(), "get", "svc", "-o", "name") == (0, "service/web\n", "")


def test_dash_n_equals_is_not_a_namespace_named_equals(seeded: tuple[str, str]) -> None:
    """The issue's case: `-n=kube-system` used to list the namespace "=kube-system" and exit 0."""
    store, _ = seeded
    assert both(store, "get", "svc", "-n=kube-system", "-o=name") == (0, "service/web\n", "")
    assert both(store, "get", "svc", "-n=nowhere") == (0, "", "No resources found in nowhere namespace.\n")


@pytest.mark.parametrize("form", NS)
def test_namespace_forms_on_the_other_verbs(seeded: tuple[str, str], form: str) -> None:
    """Every -n form on every verb that takes it, in-process (the subprocess leg is the test below)."""
    _other_verbs(seeded, form.split(), in_process)


@pytest.mark.parametrize("where", ["after", "before"])
def test_namespace_on_the_other_verbs_in_a_subprocess(seeded: tuple[str, str], where: str) -> None:
    """The same through `python -m kubesvc`, which mounts only the verb it finds (skipping -n before it)."""
    def run(store: str, *args: str) -> tuple[int, str, str]:
        if where == "before":
            return both(store, "-nkube-system", *args)
        return both(store, *args, "-n=kube-system")

    _other_verbs(seeded, [], run)


def _other_verbs(seeded: tuple[str, str], f: list[str], run: typing.Callable[..., tuple[int, str, str]]) -> None:
    store, svc = seeded
    assert run(store, "describe", "svc", "web", *f)[1].split()[:4] == ["Name:", "web", "Namespace:", "kube-system"]
    assert run(store, "delete", "svc", "web", *f, "--dry-run=server") == (0, 'service "web" deleted (server dry run)\n', "")
    assert run(store, "label", "svc", "web", "a=b", *f, "--dry-run=server") == (0, "service/web labeled (server dry run)\n", "")
    assert run(store, "annotate", "svc", "web", "a=b", *f, "--dry-run=server") == (0, "service/web annotated (server dry run)\n", "")
    assert run(store, "expose", "svc", "web", "--port=81", "--name=w2", *f, "--dry-run=server", "-o", "name") == (0, "service/w2\n", "")
    assert run(store, "scale", "deploy", "web", "--replicas=2", *f, "--dry-run=server") == (0, "deployment.apps/web scaled (server dry run)\n", "")
    code, out, _ = run(store, "apply", "-f", svc, *f, "--dry-run=server")
    assert (code, out) == (0, "service/web configured (server dry run)\n")
    code, out, err = run(store, "create", "-f", svc, *f, "--dry-run=server")
    assert (code, err) == (1, 'Error from server (AlreadyExists): error when creating "' + svc + '": services "web" already exists\n')
    assert run(store, "create", "service", "clusterip", "web", "--tcp=80", *f, "--dry-run=server") == (
        1, "", 'Error from server (AlreadyExists): services "web" already exists\n')


def test_global_flags_work_after_every_verb() -> None:
    """Every command, sub-commands included: -n/--store after the verb reach the command, or the root when the
    command does not declare them (kubectl's persistent flags)."""
    root = typer.main.get_command(build_app())
    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            paths.append(path)

    walk(root, [])
    assert len(paths) >= len(COMMANDS)
    for path in paths:
        for form in ns_forms("x"):
            out = normalize(root, [*path, *form])
            assert "--namespace=x" in out and not {"-n", "x", "--namespace"} & set(out), (path, form, out)
        out = normalize(root, [*path, "--store", "s.db"])
        assert "--store=s.db" in out, (path, out)


# ------------------------------------------------------------------------------------------ -o, -l, -f


@pytest.mark.parametrize("form", [" ".join(f) for f in forms("-o", "--output", "name")])
def test_output_forms(seeded: tuple[str, str], form: str) -> None:
    store, svc = seeded
    assert both(store, "get", "svc", "-nkube-system", *form.split()) == (0, "service/web\n", "")
    assert both(store, "create", "-f", svc, "--dry-run=client", *form.split()) == (0, "service/web\n", "")


@pytest.mark.parametrize("form", [" ".join(f) for f in forms("-l", "--selector", "app=web")])
def test_selector_forms(seeded: tuple[str, str], form: str) -> None:
    store, _ = seeded
    assert both(store, "get", "svc", "-A", *form.split(), "-o", "name") == (0, "service/web\n", "")
    nope = form.replace("app=web", "app=nope").split()
    assert both(store, "get", "svc", "-A", *nope, "-o", "name") == (0, "", "No resources found\n")


@pytest.mark.parametrize("form", ["-f {}", "-f={}", "-f{}", "--filename={}", "--filename {}"])
def test_filename_forms(seeded: tuple[str, str], form: str) -> None:
    store, svc = seeded
    f = form.format(svc).split()
    assert both(store, "create", *f, "--dry-run=client") == (0, "service/web created (dry run)\n", "")
    assert both(store, "apply", *f, "--dry-run=client", "-n", "kube-system") == (0, "service/web configured (dry run)\n", "")
    assert both(store, "delete", *f, "--dry-run=client") == (0, 'service "web" deleted (dry run)\n', "")


def test_boolean_flags_take_go_booleans(seeded: tuple[str, str]) -> None:
    store, _ = seeded
    assert both(store, "get", "svc", "-A=true", "-o=name") == (0, "service/web\n", "")
    assert both(store, "get", "svc", "--all-namespaces=false", "-o=name") == (0, "", "No resources found in default namespace.\n")
    assert both(store, "get", "svc", "-Ao", "name") == (0, "service/web\n", "")  # shorthands combine, as in pflag
    assert both(store, "get", "svc", "-A=maybe") == (1, "", 'Error: invalid argument "maybe" for "-A, --all-namespaces" flag: '
                                                     'strconv.ParseBool: parsing "maybe": invalid syntax\n'
                                                     "See 'kubesvc get --help' for usage.\n")


def test_double_dash_ends_the_flags(seeded: tuple[str, str]) -> None:
    store, _ = seeded
    assert both(store, "get", "svc", "--", "-n") == (1, "", 'Error from server (NotFound): services "-n" not found\n')


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_unknown_flag_on_every_verb(tmp_path: Path, verb: str) -> None:
    store = str(tmp_path / "s.db")
    assert in_process(store, verb, "--foo") == (1, "", f"Error: unknown flag: --foo\nSee 'kubesvc {verb} --help' for usage.\n")
    assert in_process(store, verb, "-%") == (1, "", f"Error: unknown shorthand flag: '%' in -%\nSee 'kubesvc {verb} --help' for usage.\n")
    assert not os.path.exists(store)


def test_flag_errors_as_kubectl_words_them(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    see = "\nSee 'kubesvc get --help' for usage.\n"
    assert both(store, "get", "svc", "--foo=1") == (1, "", "Error: unknown flag: --foo" + see)
    assert both(store, "get", "svc", "-xyz") == (1, "", "Error: unknown shorthand flag: 'x' in -xyz" + see)
    assert both(store, "get", "svc", "-Ax") == (1, "", "Error: unknown shorthand flag: 'x' in -x" + see)
    assert both(store, "get", "svc", "-n") == (1, "", "Error: flag needs an argument: 'n' in -n" + see)
    assert both(store, "get", "svc", "--namespace") == (1, "", "Error: flag needs an argument: --namespace" + see)
    assert both(store, "describe", "svc", "-o", "yaml") == (1, "", "Error: unknown shorthand flag: 'o' in -o\nSee 'kubesvc describe --help' for usage.\n")
    assert both(store, "create", "service", "clusterip", "x", "--foo") == (
        1, "", "Error: unknown flag: --foo\nSee 'kubesvc create service clusterip --help' for usage.\n")
    assert both(store, "gett", "svc") == (1, "", 'Error: unknown command "gett" for "kubesvc"\n\nDid you mean this?\n\tget\n\n')
    assert not os.path.exists(store)


GET_FORMATS = ("custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,"
               "template,templatefile,wide,yaml")
OBJECT_FORMATS = "go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,yaml"


def _no_printer(fmt: str, allowed: str) -> str:
    return f'error: unable to match a printer suitable for the output format "{fmt}", allowed formats are: {allowed}\n'


def test_unknown_output_formats_list_what_each_verb_allows(seeded: tuple[str, str]) -> None:
    store, svc = seeded
    assert both(store, "get", "svc", "-o", "foo") == (1, "", _no_printer("foo", GET_FORMATS))
    assert both(store, "get", "svc", "-o=") == (1, "", _no_printer("=", GET_FORMATS))  # pflag: -o= is "="
    for args in (["create", "-f", svc], ["apply", "-f", svc], ["create", "service", "clusterip", "x"],
                 ["create", "namespace", "x"], ["expose", "svc", "web", "--port=81"], ["label", "svc", "web", "a=b"],
                 ["annotate", "svc", "web", "a=b"], ["scale", "deploy", "web", "--replicas=2"]):
        assert both(store, *args, "-n", "kube-system", "-o", "foo") == (1, "", _no_printer("foo", OBJECT_FORMATS)), args
        assert in_process(store, *args, "-n", "kube-system", "-o", "custom-columns=N:.metadata.name") == (
            1, "", _no_printer("custom-columns=N:.metadata.name", OBJECT_FORMATS)), args
    assert both(store, "delete", "svc", "web", "-o", "yaml") == (1, "", "error: unexpected -o output mode: yaml. We only support '-o name'\n")
    assert both(store, "get", "svc", "-o", "jsonpath") == (1, "", "error: template format specified but no template given\n")
    assert both(store, "version", "-o", "foo") == (1, "", "error: --output must be 'yaml' or 'json'\n")
    # nothing was written by any of them
    assert both(store, "get", "svc,deploy", "-A", "-o", "name") == (0, "service/web\ndeployment.apps/web\n", "")
    assert json.loads(both(store, "get", "deploy", "web", "-n", "kube-system", "-o", "json")[1])["spec"]["replicas"] == 1


def test_output_wide_is_refused_by_create_and_apply_before_writing(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    svc = tmp_path / "svc.yaml"
    svc.write_text(SVC)
    for verb in ("create", "apply"):
        assert both(store, verb, "-f", str(svc), "-o", "wide") == (1, "", _no_printer("wide", OBJECT_FORMATS))
        assert not os.path.exists(store)  # not even opened
    assert in_process(store, "create", "namespace", "other")[0] == 0
    before = revision(store)
    for verb in ("create", "apply"):
        assert both(store, verb, "-f", str(svc), "-owide") == (1, "", _no_printer("wide", OBJECT_FORMATS))
    assert both(store, "get", "svc", "-o", "name") == (0, "", "No resources found in default namespace.\n")
    assert revision(store) == before


# ------------------------------------------------------------------------------------------ --version


def test_version_flag_prints_the_client_version(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    code, out, err = both(store, "--version")
    assert (code, err) == (0, "") and out.startswith("Client Version: v")
    assert both(store, "version", "--client") == (code, out, err)
    assert both(store, "version") == (code, out, err)
    assert not os.path.exists(store)


# ------------------------------------------------------------------------------------------ --dry-run=client


def _unusable_stores(tmp_path: Path) -> list[Path]:
    """A store path inside a directory that does not exist, and a file that is not a SQLite database."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database\n" * 100)
    return [tmp_path / "missing" / "dir" / "store.db", garbage]


def test_client_dry_run_never_touches_the_store(tmp_path: Path) -> None:
    """create -f, create <generator>, create namespace, expose -f and delete by name or -f send nothing and
    read nothing: they succeed on a store that does not exist or is not a database, and leave it as it was."""
    svc = tmp_path / "svc.yaml"
    svc.write_text(SVC)
    for store_path in _unusable_stores(tmp_path):
        store = str(store_path)
        before = store_path.read_bytes() if store_path.exists() else None
        cases = [
            (["create", "-f", str(svc)], "service/web created (dry run)\n"),
            (["create", "service", "clusterip", "web", "--tcp=80"], "service/web created (dry run)\n"),
            (["create", "namespace", "web"], "namespace/web created (dry run)\n"),
            (["create", "configmap", "web", "--from-literal=a=b"], "configmap/web created (dry run)\n"),
            (["expose", "-f", str(svc), "--port=81", "--name=w2"], "service/w2 exposed (dry run)\n"),
            (["delete", "svc", "web"], 'service "web" deleted (dry run)\n'),
            (["delete", "-f", str(svc)], 'service "web" deleted (dry run)\n'),
        ]
        for args, want in cases:
            assert both(store, *args, "--dry-run=client") == (0, want, ""), (store, args)
        if before is None:
            assert not (tmp_path / "missing").exists()
        else:
            assert store_path.read_bytes() == before


def test_client_dry_run_reads_without_creating_a_store(tmp_path: Path) -> None:
    """apply, label, annotate, scale and expose TYPE NAME read the live object, as kubectl GETs it; a store that
    is not there is read as empty and is not created."""
    store_path = tmp_path / "missing" / "store.db"
    store = str(store_path)
    svc = tmp_path / "svc.yaml"
    svc.write_text(SVC)
    assert both(store, "apply", "-f", str(svc), "--dry-run=client") == (0, "service/web created (dry run)\n", "")
    missing = (1, "", 'Error from server (NotFound): services "web" not found\n')
    assert both(store, "label", "svc", "web", "a=b", "--dry-run=client") == missing
    assert both(store, "annotate", "svc", "web", "a=b", "--dry-run=client") == missing
    assert both(store, "expose", "svc", "web", "--port=81", "--dry-run=client") == missing
    assert both(store, "scale", "deploy", "web", "--replicas=2", "--dry-run=client") == (  # kubectl's words
        1, "", 'error: no objects passed to scale deployments.apps "web" not found\n')
    assert both(store, "delete", "svc", "-l", "app=web", "--dry-run=client") == (0, "", "No resources found\n")
    assert not (tmp_path / "missing").exists()


def test_client_dry_run_prints_what_would_be_sent(seeded: tuple[str, str]) -> None:
    """No AlreadyExists, no allocated addresses, no server defaults: the manifest after client-side processing."""
    store, svc = seeded
    before = revision(store)
    code, out, err = both(store, "create", "-f", svc, "-n", "kube-system", "--dry-run=client", "-o", "json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"apiVersion": "v1", "kind": "Service",
                               "metadata": {"labels": {"app": "web"}, "name": "web", "namespace": "kube-system"},
                               "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}
    code, out, _ = both(store, "apply", "-f", svc, "--dry-run=client", "-o", "json")  # not in default: created
    applied = json.loads(out)
    assert "clusterIP" not in applied["spec"] and "uid" not in applied["metadata"]
    assert json.loads(applied["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])["spec"] == {
        "ports": [{"port": 80}], "selector": {"app": "web"}}
    code, out, _ = both(store, "create", "service", "nodeport", "np", "--tcp=80", "--dry-run=client", "-o", "json")
    assert "nodePort" not in json.loads(out)["spec"]["ports"][0] and "namespace" not in json.loads(out)["metadata"]
    code, out, _ = both(store, "create", "service", "nodeport", "np", "--tcp=80", "-nkube-system", "--dry-run=client", "-o", "json")
    assert json.loads(out)["metadata"]["namespace"] == "kube-system"
    code, out, _ = both(store, "label", "svc", "web", "-n", "kube-system", "a=b", "--dry-run=client", "-o", "json")
    assert json.loads(out)["metadata"]["labels"] == {"a": "b", "app": "web"}
    assert both(store, "scale", "deploy/web", "-n", "kube-system", "--replicas=3", "--dry-run=client") == (
        0, "deployment.apps/web scaled (dry run)\n", "")
    assert revision(store) == before
    assert both(store, "get", "svc", "web", "-n", "kube-system", "-o", "jsonpath={.metadata.labels}") == (0, '{"app":"web"}', "")
