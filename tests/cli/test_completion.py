"""`kubesvc completion bash|zsh|fish` and the completion entry it calls: verbs, flags, resource types and the
names of objects in the store, asked the way the scripts ask (``_KUBESVC_COMPLETE=complete_bash COMP_WORDS=...``),
and through bash itself with the script sourced."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, Run


@pytest.fixture
def objects(cli: Callable[..., Run]) -> None:
    """The objects the name completions list, created in-process (the completions themselves run as the scripts
    run them, in a subprocess)."""
    for args in (["create", "deployment", "web", "--image=nginx"], ["create", "deployment", "worker", "--image=busybox"],
                 ["create", "service", "clusterip", "web", "--tcp=80"], ["create", "namespace", "shop"],
                 ["create", "service", "clusterip", "cart", "--tcp=80", "-n", "shop"],
                 ["run", "api-0", "--image=nginx"]):
        r = cli(*args)
        assert r.code == 0, r.err


def complete(store: str | None, line: str) -> list[str]:
    """What the bash script gets back for ``line`` (the cursor at its end)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBESVC", "_KUBESVC"))}
    env.update(_KUBESVC_COMPLETE="complete_bash", COMP_WORDS=line, COMP_CWORD=str(cword))
    if store:
        env["KUBESVC_STORE"] = store
    p = subprocess.run([sys.executable, "-m", "kubesvc"], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return p.stdout.split()


def test_verbs_and_flags(store_path: str) -> None:
    assert "completion" in complete(store_path, "kubesvc comp")
    assert {"api-resources", "api-versions"} <= set(complete(store_path, "kubesvc api"))
    assert {"image", "env", "selector"} <= set(complete(store_path, "kubesvc set "))
    assert {"--image", "--port", "--expose", "--restart"} <= set(complete(store_path, "kubesvc run web --"))


def test_resource_types(store_path: str) -> None:
    types = complete(store_path, "kubesvc get ")
    assert {"pods", "services", "svc", "deployments", "deploy", "ingresses", "namespaces"} <= set(types)
    assert complete(store_path, "kubesvc get dep") == ["deploy", "deployments"]
    assert "pods,svc" in complete(store_path, "kubesvc get pods,s")


def test_names_from_the_store(store_path: str, objects: None) -> None:
    assert complete(store_path, "kubesvc get deploy ") == ["web", "worker"]
    assert complete(store_path, "kubesvc describe deployments w") == ["web", "worker"]
    assert complete(store_path, "kubesvc delete svc w") == ["web"]
    assert complete(store_path, "kubesvc get deploy/wo") == ["deploy/worker"]
    assert complete(store_path, "kubesvc set image deploy/") == ["deploy/web", "deploy/worker"]
    assert complete(store_path, "kubesvc get svc -n shop ") == ["cart"]
    assert complete(store_path, "kubesvc -n shop get svc ") == ["cart"]
    assert complete(store_path, "kubesvc get svc --namespace=shop ") == ["cart"]
    assert complete(store_path, "kubesvc get svc -n s") == ["shop"]
    assert complete(store_path, "kubesvc logs ") == ["api-0"]
    assert complete(store_path, "kubesvc rollout history deployment ") == ["web", "worker"]
    assert complete(store_path, "kubesvc get deploy web ") == ["worker"]  # get takes several names


def test_never_fails_loudly(tmp_path: Path, store_path: str, objects: None) -> None:
    assert complete(str(tmp_path / "none.db"), "kubesvc get deploy ") == []
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    assert complete(str(broken), "kubesvc get deploy ") == []
    assert complete(store_path, "kubesvc get nosuchtype ") == []
    assert complete(store_path, "kubesvc get svc -n") is not None  # a flag still waiting for its value
    complete(store_path, "kubesvc get --bogus deploy ")  # an unknown flag: no error printed, exit 0


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts(ks: Callable[..., Run], shell: str) -> None:
    r = ks("completion", shell)
    assert r.code == 0 and "_KUBESVC_COMPLETE=complete_" + shell in r.out


def test_script_errors(cli: Callable[..., Run]) -> None:
    assert cli("completion").err == "error: Shell not specified.\nSee 'kubesvc completion -h' for help and examples\n"
    r = cli("completion", "tcsh")
    assert (r.code, r.err) == (1, "error: Unsupported shell type \"tcsh\".\nSee 'kubesvc completion -h' for help and examples\n")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_sources_the_script_and_completes_names(tmp_path: Path, store_path: str, objects: None) -> None:
    """The script loads in bash, registers the completion, and the function fills COMPREPLY from the store."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "kubesvc"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m kubesvc "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBESVC", "_KUBESVC"))}
    env.update(PATH=f"{bindir}:{env.get('PATH', '')}", KUBESVC_STORE=store_path)
    script = ('source <(kubesvc completion bash) && complete -p kubesvc && '
              'COMP_WORDS=(kubesvc get deploy w) COMP_CWORD=3 && _kubesvc_completion kubesvc && '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "complete -o default -F _kubesvc_completion kubesvc"
    assert lines[1:] == ["web", "worker"]
