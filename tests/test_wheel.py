"""kubesvc as a user installs it: a wheel in a clean venv outside the checkout, run from ``/``.

The wheel is built from a copy of the working tree (``pip wheel --no-build-isolation``: the setuptools of the
test venv, pip's cache for the dependencies) and installed with its declared dependencies only, into a venv that
knows nothing of the checkout. From ``/``, with a temp store and HOME, it runs the README's quick start, then one
request through the proxy that ``up`` started to a Service backed by a local HTTP server, then ``down``.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "kubesvc"
COMPONENTS = ("proxy", "dns", "apiserver", "kubelet", "ingress")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- every import is a declared dependency ------------------------------------------------------------------------


def third_party_imports(pkg: Path = PKG) -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every absolute import in ``pkg`` outside the stdlib."""
    found: dict[str, set[str]] = {}
    for path in pkg.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top not in sys.stdlib_module_names and top != "kubesvc":
                    found.setdefault(top, set()).add(str(path.relative_to(pkg.parent)))
    return found


def declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_norm(re.match(r"[A-Za-z0-9._-]+", d).group(0)) for d in project["dependencies"]}  # type: ignore[union-attr]


# Modules only a tool that has the extra loads: the pytest plugin (entry point pytest11) may import pytest.
EXTRA_FOR = {"kubesvc/testing/pytest_plugin.py": "pytest"}


def extra_dependencies(extra: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_norm(re.match(r"[A-Za-z0-9._-]+", d).group(0)) for d in project["optional-dependencies"][extra]}  # type: ignore[union-attr]


def test_every_third_party_import_is_a_declared_dependency() -> None:
    dists = packages_distributions()
    declared = declared_dependencies()
    undeclared = []
    for top, files in sorted(third_party_imports().items()):
        names = {_norm(d) for d in dists.get(top, [top])}
        rest = [f for f in files if not names & (declared | (extra_dependencies(EXTRA_FOR[f]) if f in EXTRA_FOR else set()))]
        if rest:
            undeclared.append(f"{top} ({', '.join(sorted(names))}) imported by {', '.join(sorted(rest))}")
    assert not undeclared, "imports missing from [project] dependencies: " + "; ".join(undeclared)


def test_the_import_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The scan above is not blind: plain, dotted, from- and lazy imports all count; stdlib and relative do not."""
    (tmp_path / "m.py").write_text("import yaml\nimport json\nfrom . import x\n"
                                   "def f():\n    from typing_extensions import Self\n    import ruamel.yaml\n")
    assert set(third_party_imports(tmp_path)) == {"yaml", "typing_extensions", "ruamel"}


# --- the wheel, installed outside the checkout ---------------------------------------------------------------------


@dataclass
class Installed:
    src: Path  # the copy of the working tree the wheel was built from
    wheel: Path
    venv: Path  # a clean venv, outside the checkout, with the wheel and its declared dependencies


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Built once per session."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "setup.py", "kubesvc", "schemas"):
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, symlinks=True, ignore=skip)  # kubesvc/schemas stays a link to ../schemas
        elif p.exists():
            src.mkdir(exist_ok=True)
            shutil.copy2(p, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    r = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = (base / "dist").glob("kubesvc-*.whl")
    venv = base / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # --no-compile: the dependencies' modules are compiled when first imported (half of pip's CPU here went to
    # byte-compiling every module of every dependency, most of which the quick start never imports)
    r = subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-compile", str(wheel)],
                       capture_output=True, text=True, timeout=600, cwd="/")
    assert r.returncode == 0, r.stderr
    return Installed(src, wheel, venv)


def test_the_wheel_carries_every_module_and_schema(wheel_venv: Installed) -> None:
    src, wheel = wheel_venv.src, wheel_venv.wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {str(p.relative_to(src)) for p in (src / "kubesvc").rglob("*.py")}
    want |= {f"kubesvc/schemas/{p.name}" for p in (src / "schemas").glob("*.json")}
    assert len(want) > 100
    assert not want - names, f"missing from {wheel.name}: {sorted(want - names)}"


@pytest.fixture
def user(wheel_venv: Installed, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """run(cmd) -> CompletedProcess: a bash line run from / by a user whose PATH has only the venv and the system."""
    venv = wheel_venv.venv
    home = tmp_path / "home"
    home.mkdir()
    store = str(tmp_path / "store.db")
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "KUBESVC_STORE": store,
           "LANG": "C.UTF-8", "TMPDIR": str(tmp_path)}

    def run(cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", cmd], cwd="/", env=env, capture_output=True, text=True, timeout=timeout)

    run.store = store  # type: ignore[attr-defined]
    run.venv = venv  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        run("kubesvc down")
        for name in COMPONENTS:  # down failed: never leave a process behind
            pid_file = Path(f"{store}.d/{name}.pid")
            if pid_file.exists():
                try:
                    os.killpg(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)
                except (ProcessLookupError, ValueError, KeyError):
                    pass


def quick_start_lines() -> list[str]:
    """The `kubesvc`/`kubectl` lines of the README's quick start, in order (installs and exports left out)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    out = []
    for block in section.split("```sh")[1:]:
        for ln in block.split("```", 1)[0].strip().splitlines():
            ln = ln.split("  #", 1)[0].strip()
            if ln.startswith(("kubesvc ", "kubectl ")):
                out.append(ln)
    return out


def test_the_installed_wheel_does_the_quick_start_from_root(user, backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = user("python -c 'import kubesvc; print(kubesvc.__file__)'")
    assert r.stdout.startswith(str(user.venv)), r.stdout + r.stderr  # the wheel's code, not the checkout's
    assert user("kubesvc version --client").returncode == 0

    lines = quick_start_lines()
    assert any(ln.startswith("kubesvc create -f") for ln in lines) and any(ln.startswith("kubesvc up") for ln in lines)
    b = backend("hello-from-backend", f"127.{random.randint(150, 199)}.{random.randint(0, 255)}.1", 0, "http")
    node = f"127.{random.randint(150, 199)}.{random.randint(0, 255)}.254"
    for ln in lines:
        if ln.startswith("kubectl") and not shutil.which("kubectl"):
            continue
        ln = re.sub(r"(?<=\s)examples/", f"{ROOT}/examples/", ln)  # the manifests live in the checkout
        ln = ln.replace("/tmp/kubesvc.kubeconfig", str(tmp_path / "kubeconfig"))
        if ln.startswith("kubectl"):
            ln += f" --cache-dir {tmp_path / 'kube-cache'}"
        if ln.startswith("kubesvc up"):
            # NodePorts on an address of our own; a Service backed by a local HTTP server for the proxy to reach
            ln += f" --nodeport-addresses {node}/32"
            manifest = (f"apiVersion: v1\nkind: Service\nmetadata: {{name: hello}}\n"
                        f"spec: {{selector: {{app: hello}}, ports: [{{port: 8080, targetPort: {b.port}}}]}}\n---\n"
                        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: hello-1, labels: {{app: hello}}}}\n"
                        f"spec: {{containers: [{{name: c, image: x}}]}}\nstatus: {{phase: Running, podIP: {b.host}}}\n")
            r = user(f"kubesvc create -f - <<'EOF'\n{manifest}EOF")
            assert r.returncode == 0, r.stderr
        r = user(ln)
        assert r.returncode == 0, (ln, r.stdout, r.stderr)
        if ln.startswith("kubesvc up"):
            for name in COMPONENTS:
                assert f"{name}: running (pid " in r.stdout, r.stdout
        if ln == "kubesvc down":
            assert "proxy: stopped (pid " in r.stdout, r.stdout
        if ln.startswith("kubesvc status"):
            assert "default/hello" in r.stdout, r.stdout
            ip = user("kubesvc get svc hello -o jsonpath='{.spec.clusterIP}'").stdout
            got = user(f"curl -sS --max-time 10 http://{ip}:8080/")
            assert (got.returncode, got.stdout) == (0, "hello-from-backend\n"), got.stderr

    assert lines[-1] == "kubesvc down"
    assert user("kubesvc status").returncode == 3
    r = user("kubesvc describe svc hello")
    assert r.returncode == 0 and f"{b.host}:{b.port}" in r.stdout, r.stdout + r.stderr
