"""`kubesvc config view`: a kubeconfig that points kubectl (or a client library) at `kubesvc apiserver`.

Rules kept here:
- The kubeconfig stands alone: for an https server it embeds the CA (``certificate-authority-data``) and the
  admin client certificate and key (``client-certificate-data``, ``client-key-data``), or the token from
  ``--token-file``; the store's credentials are created on first use (``apiserver/pki.py``).
- It holds credentials, so files get mode 0600: ``--write-kubeconfig PATH`` writes one so (k3s's flag name), and
  when stdout is a regular file (``> file``) it is narrowed to 0600 too.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt
from kubesvc.errors import ClientError

Opt = typer.Option

DEFAULT_SERVER = "https://127.0.0.1:6443"

app = typer.Typer(help="Print kubeconfig files for `kubesvc apiserver`.", no_args_is_help=True)


def kubeconfig_text(store_path: str, server: str, token: str | None = None, name: str = "kubesvc",
                    namespace: str = "default", output: str = "yaml") -> str:
    """The kubeconfig for ``server`` with this store's credentials, as YAML or JSON text."""
    from kubesvc.api import manifests
    from kubesvc.apiserver import pki as pki_mod

    pki = pki_mod.ensure(store_path, note=common.warn) if server.startswith("https://") else None
    cfg = pki_mod.kubeconfig(pki_mod.client_url(server), pki, token, name, namespace)
    return manifests.to_yaml(cfg) if output == "yaml" else manifests.to_json(cfg) + "\n"


def _narrow_stdout() -> None:
    """`config view > file`: the file holds credentials, so it gets mode 0600 like --write-kubeconfig's."""
    try:
        st = os.fstat(sys.stdout.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.fchmod(sys.stdout.fileno(), 0o600)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (CliRunner) or not ours: leave it
        pass


@app.command("view")
def view(
    server: Annotated[str | None, Opt("--server", help=f"URL of the API server (default: the one `kubesvc up` runs for this store, else {DEFAULT_SERVER}).")] = None,
    token_file: Annotated[str | None, Opt("--token-file", help="Put the token from this file in the user entry instead of the client certificate.")] = None,
    name: Annotated[str, Opt("--name", help="Name of the cluster, user and context entries.")] = "kubesvc",
    output: Annotated[str, Opt("--output", "-o", help="yaml (default) or json.")] = "yaml",
    write_kubeconfig: Annotated[str | None, Opt("--write-kubeconfig", help="Write the kubeconfig to this file (mode 0600) instead of printing it.")] = None,
    namespace: NamespaceOpt = None,
    store: common.StoreOpt = None,
) -> None:
    """Print a kubeconfig (cluster, user and context named `kubesvc`) for the API server, credentials embedded.

    Use it as `kubesvc config view --write-kubeconfig kubeconfig; kubectl --kubeconfig kubeconfig get svc`.
    """
    from kubesvc.cli.commands.apiserver import read_token
    from kubesvc.cli.commands.apiserver import write_kubeconfig as write_file

    path = common.store_path(store)
    if server is None:
        from kubesvc.dataplane import supervisor

        running = supervisor.running(supervisor.RunDir(path)).get("apiserver")
        server = running.ready.get("url", DEFAULT_SERVER) if running else DEFAULT_SERVER
    if not server.startswith(("http://", "https://")):
        raise ClientError(f"invalid --server {server!r}: use a URL such as {DEFAULT_SERVER}")
    if output not in ("yaml", "json"):
        raise ClientError(f'unable to match a printer suitable for the output format "{output}", allowed formats are: json,yaml')
    ns, _ = common.namespace(namespace)
    text = kubeconfig_text(path, server, read_token(token_file), name, ns, output)
    if write_kubeconfig:
        write_file(write_kubeconfig, text)
        return
    _narrow_stdout()
    common.out(text)
