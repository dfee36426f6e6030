"""Every command has help and a docs page; the README's quick start really works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubesvc.cli.app import build_app
from tests.support.clirunner import CliRunner, shared_app

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(build_app())
    return sorted(name for name, cmd in group.commands.items() if not cmd.hidden)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", commands())
def test_command_has_help_and_page(name):
    r = CliRunner().invoke(shared_app(), [name, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output
    page = ROOT / "docs" / "commands" / f"{name}.md"
    assert page.exists(), f"docs/commands/{name}.md is missing"
    text = page.read_text()
    assert text.startswith(f"# kubesvc {name}")
    assert "## Syntax" in text and "## Examples" in text


def test_docs_index_links_exist():
    text = (ROOT / "docs" / "index.md").read_text()
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / "docs" / link).exists(), link


def test_index_links_every_page():
    text = (ROOT / "docs" / "index.md").read_text()
    for sub in ("commands", "concepts"):
        for page in (ROOT / "docs" / sub).glob("*.md"):
            assert f"({sub}/{page.name})" in text, f"docs/index.md does not link {sub}/{page.name}"


def test_readme_quick_start_runs(tmp_path):
    """Every `sh` block of the README's quick start, line by line, against a fresh store."""
    text = (ROOT / "README.md").read_text()
    section = text.split("By hand, after", 1)[1].split("## What is where", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```sh")[1:]]
    env = dict(os.environ, KUBESVC_STORE=str(tmp_path / "qs.db"), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    try:
        for block in blocks:
            lines = [ln.split("  #", 1)[0].strip() for ln in block.strip().splitlines()]
            lines = [ln for ln in lines if ln and not ln.startswith("export ")]
            for ln in lines:
                if ln.startswith("kubectl") and not shutil.which("kubectl"):
                    continue
                ln = ln.replace("/tmp/kubesvc.kubeconfig", str(tmp_path / "kubeconfig"))
                if ln.startswith("kubectl"):
                    ln += f" --cache-dir {tmp_path / 'kube-cache'}"
                p = subprocess.run(["bash", "-c", ln], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
                assert p.returncode == 0, (ln, p.stdout, p.stderr)
    finally:
        subprocess.run([sys.executable, "-m", "kubesvc", "down"], env=env, capture_output=True, timeout=60)
