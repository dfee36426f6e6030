"""`kubesvc config view`: print a kubeconfig that points kubectl (or a client library) at `kubesvc apiserver`."""

from __future__ import annotations

from typing import Optional

import typer
from typing import Annotated

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt
from kubesvc.errors import ClientError

Opt = typer.Option

app = typer.Typer(help="Print kubeconfig files for `kubesvc apiserver`.", no_args_is_help=True)


@app.command("view")
def view(
    server: Annotated[Optional[str], Opt("--server", help="URL of the API server (default: the one `kubesvc up` runs for this store, else http://127.0.0.1:6443).")] = None,
    token_file: Annotated[Optional[str], Opt("--token-file", help="Put the token from this file in the user entry.")] = None,
    name: Annotated[str, Opt("--name", help="Name of the cluster, user and context entries.")] = "kubesvc",
    output: Annotated[str, Opt("--output", "-o", help="yaml (default) or json.")] = "yaml",
    namespace: NamespaceOpt = None,
    store: common.StoreOpt = None,
) -> None:
    """Print a kubeconfig (cluster, user and context named `kubesvc`) for the API server at --server.

    Use it as `kubesvc config view > kubeconfig; kubectl --kubeconfig kubeconfig get svc`.
    """
    from kubesvc.api import manifests
    from kubesvc.apiserver.server import kubeconfig
    from kubesvc.cli.commands.apiserver import read_token

    if server is None:
        from kubesvc.dataplane import supervisor

        running = supervisor.running(supervisor.RunDir(common.store_path(store))).get("apiserver")
        server = running.ready.get("url", "http://127.0.0.1:6443") if running else "http://127.0.0.1:6443"
    if not server.startswith(("http://", "https://")):
        raise ClientError(f"invalid --server {server!r}: use a URL such as http://127.0.0.1:6443")
    if output not in ("yaml", "json"):
        raise ClientError(f'unable to match a printer suitable for the output format "{output}", allowed formats are: json,yaml')
    ns, _ = common.namespace(namespace)
    cfg = kubeconfig(server, read_token(token_file), name, ns)
    common.out(manifests.to_yaml(cfg) if output == "yaml" else manifests.to_json(cfg) + "\n")
