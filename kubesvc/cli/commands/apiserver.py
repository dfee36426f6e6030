"""`kubesvc apiserver`: serve the Kubernetes REST API over the store, in the foreground."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any, Optional

import typer
from typing import Annotated

from kubesvc.cli import common
from kubesvc.cli.common import StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option


def read_token(path: Optional[str]) -> Optional[str]:
    """The bearer token: the first non-empty line of the file."""
    if path is None:
        return None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ClientError(f"cannot read --token-file {path}: {e.strerror}") from None
    token = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not token:
        raise ClientError(f"--token-file {path} holds no token")
    return token


def apiserver(
    bind_address: Annotated[str, Opt("--bind-address", help="Address to serve on (loopback unless --token-file is given).")] = "127.0.0.1",
    port: Annotated[int, Opt("--port", help="Port to serve on (0 picks a free one; the ready line tells which).")] = 6443,
    token_file: Annotated[Optional[str], Opt("--token-file", help="Require 'Authorization: Bearer <token>' with the token in this file.")] = None,
    bookmark_interval: Annotated[float, Opt("--bookmark-interval", help="Seconds between BOOKMARK events on watches that ask for them.")] = 30.0,
    store: StoreOpt = None,
) -> None:
    """Serve the Kubernetes API (kubectl, client libraries) over plain HTTP, over the same store as the CLI.

    Runs in the foreground; prints `kubesvc apiserver ready address=HOST:PORT url=...` once it serves.
    Stop with Ctrl-C or SIGTERM. `kubesvc config view --server URL` prints a kubeconfig for it.
    """
    from kubesvc.apiserver import server

    if not 0 <= port <= 65535:
        raise ClientError(f"invalid --port {port}: must be between 0 and 65535")
    if bookmark_interval <= 0:
        raise ClientError(f"invalid --bookmark-interval {bookmark_interval}: must be positive")
    token = read_token(token_file)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(srv: "server.ApiServer") -> None:
        auth = "token" if token else "none"
        sys.stdout.write(f"kubesvc apiserver ready address={srv.address} url={srv.url} auth={auth}\n")
        sys.stdout.flush()

    try:
        server.serve(common.store_path(store), bind_address, port, token, ready=ready, stop=stop,
                     bookmark_interval=bookmark_interval)
    except OSError as e:
        raise ClientError(f"cannot listen on {bind_address}:{port}: {e.strerror or e}") from None
