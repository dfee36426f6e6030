"""Fixtures for the API server tests: one `kubesvc apiserver` subprocess per module on an ephemeral
port, a private kubeconfig, HOME and kubectl cache dir (never ~/.kube), and helpers that run the real
kubectl and the real kubesvc CLI against the same store.

The server speaks HTTPS and wants credentials, as it does by default: kubectl and the Python client use the
kubeconfig `kubesvc config view` writes; raw requests (``request``, ``connect``, ``http_connection``) present
the store's admin client certificate unless told ``cert=False``.

Import with ``from tests.apiserver.fixtures import *  # noqa: F403`` (tests/conftest.py is shared).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.procs import ROOT, Proc, ready_fields

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

_AGE = re.compile(r"(?<![\w.:/-])(\d+(s|m|h|d|y)(\d+(s|m|h|d))?|<unknown>)(?![\w.:/-])")


def mask(text: str) -> str:
    """AGE cells masked and column padding collapsed (a masked age changes column widths)."""
    return "\n".join(re.sub(r" {2,}", "  ", _AGE.sub("AGE", line)).rstrip() for line in text.splitlines())


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Api:
    """A running `kubesvc apiserver` and the tools pointed at it."""

    proc: Proc
    url: str
    store: str
    home: Path
    kubeconfig: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KUBESVC_"))}
        env.update(HOME=str(self.home), KUBECONFIG=str(self.kubeconfig), KUBECACHEDIR=str(self.home / "cache"),
                   KUBESVC_STORE=self.store, PYTHONUNBUFFERED="1")
        return env

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 30) -> Result:
        assert KUBECTL is not None
        p = subprocess.run([KUBECTL, f"--cache-dir={self.home / 'cache'}", *args], input=input, capture_output=True,
                           text=True, env=self.env(), cwd=str(self.home), timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    def ks(self, *args: str, input: str | None = None, timeout: float = 30) -> Result:
        p = subprocess.run([sys.executable, "-m", "kubesvc", "--store", self.store, *args], input=input,
                           capture_output=True, text=True, env=self.env(), cwd=str(self.home), timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    def cli(self, *args: str, input: str | None = None) -> Result:
        """kubesvc's CLI in-process (tests/support/clirunner.py) with what ``ks`` gives its process: the same
        environment and working directory. A ``python -m kubesvc`` costs ~0.2 s of CPU (0.16-0.22 measured); use ``ks`` where
        the process itself is under test (exit on a signal, a traceback never printed, a server it starts)."""
        from tests.support.clirunner import CliRunner, shared_app

        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("KUBE", "KUBESVC_"))}
        env.update(self.env())
        cwd = os.getcwd()
        os.chdir(self.home)
        try:
            r = CliRunner().invoke(shared_app(), ["--store", self.store, *args], input=input, env=env, catch_exceptions=False)
        finally:
            os.chdir(cwd)
        return Result(r.exit_code, r.stdout, r.stderr)

    def write(self, name: str, text: str) -> str:
        path = self.home / name
        path.write_text(text)
        return name  # both tools run with cwd=home, so messages name the file as a user typed it

    @property
    def pki(self) -> Path:
        return Path(self.store + ".d") / "pki"

    def ssl_context(self, cert: bool = True) -> ssl.SSLContext | None:
        """A client context trusting the store's CA, with the admin certificate when ``cert``; None for http."""
        if not self.url.startswith("https://"):
            return None
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if cert:
            ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        return ctx

    def connect(self, timeout: float = 10, cert: bool = True) -> socket.socket:
        """A connected socket to the server (TLS with the admin certificate when it serves https)."""
        u = urlsplit(self.url)
        raw = socket.create_connection((u.hostname, u.port), timeout=timeout)
        ctx = self.ssl_context(cert)
        return ctx.wrap_socket(raw, server_hostname=u.hostname) if ctx else raw

    def http_connection(self, timeout: float = 10, cert: bool = True) -> http.client.HTTPConnection:
        u = urlsplit(self.url)
        ctx = self.ssl_context(cert)
        if ctx is None:
            return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        return http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                cert: bool = True) -> tuple[int, dict[str, str], Any]:
        """A raw HTTP request (with the admin certificate unless ``cert=False``); returns (code, headers,
        parsed JSON body or text)."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}  # urllib would say form-urlencoded
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ssl_context(cert)) as r:
                code, hdrs, raw = r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            code, hdrs, raw = e.code, dict(e.headers.items()), e.read()
        try:
            return code, hdrs, json.loads(raw)
        except ValueError:
            return code, hdrs, raw.decode(errors="replace")

    def revision(self) -> int:
        from kubesvc.store.db import Store

        with Store(self.store) as s:
            return s.revision()


def start_api(tmp: Path, *extra: str) -> Api:
    store = str(tmp / "store.db")
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    proc = Proc(store, "apiserver", "--port", "0", *extra)
    try:
        fields = ready_fields(proc.wait_line("kubesvc apiserver ready", timeout=20))
        kubeconfig = home / "kubeconfig"
        api = Api(proc, fields["url"], store, home, kubeconfig)
        cfg = api.cli("config", "view", "--server", fields["url"], "--write-kubeconfig", str(kubeconfig))
        assert cfg.code == 0, cfg.err
        return api
    except BaseException:
        proc.stop()
        raise


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API server per test module (each test uses its own namespace)."""
    a = start_api(tmp_path_factory.mktemp("apiserver"), "--bookmark-interval", "0.3")
    try:
        yield a
    finally:
        a.proc.stop()


_NS_COUNT = 0


@pytest.fixture
def ns(api: Api, request: pytest.FixtureRequest) -> str:
    """A fresh namespace named after the test, created with one request to the server (a CLI process per test cost
    ~0.25 s of CPU)."""
    global _NS_COUNT
    _NS_COUNT += 1
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.originalname.lower().replace("_", "-"))[:50].strip("-")
    name = f"{base}-{_NS_COUNT}"
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}).encode()
    code, _, got = api.request("POST", "/api/v1/namespaces", body)
    assert code == 201, got
    return name


__all__ = ["Api", "Result", "api", "ns", "mask", "needs_kubectl", "start_api", "ROOT"]
