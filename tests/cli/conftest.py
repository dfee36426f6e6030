"""Fixtures for driving the real CLI against a real SQLite file: as a subprocess and via Typer's runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.clirunner import CliRunner, shared_app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Run(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


@pytest.fixture
def ks(store_path: str) -> Callable[..., Run]:
    """Run `python -m kubesvc` as a subprocess against this test's store."""

    def run(*args: str, input: str | bytes | None = None, timeout: float = 60) -> Run:
        env = dict(os.environ, KUBESVC_STORE=store_path)
        env.pop("KUBESVC_DEBUG", None)
        data = input.encode() if isinstance(input, str) else input
        p = subprocess.run([sys.executable, "-m", "kubesvc", *args], input=data, capture_output=True,
                           env=env, timeout=timeout, cwd=str(ROOT))
        return Run(p.returncode, p.stdout.decode(), p.stderr.decode())

    return run


@pytest.fixture
def cli(store_path: str) -> Callable[..., Run]:
    """Run the Typer app in-process (CliRunner) against this test's store. The app is built and converted to its click
    command once per process (tests/support/clirunner.py), not once per test and call."""
    app = shared_app()
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Run:
        result = runner.invoke(app, ["--store", store_path, *args], input=input, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def manifest(tmp_path: Path) -> Callable[[str, str], str]:
    def write(text: str, name: str = "m.yaml") -> str:
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    return write
