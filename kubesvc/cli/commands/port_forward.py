"""`kubesvc port-forward TYPE/NAME [LOCAL:]REMOTE...`: forward local ports to a pod, locally (no API server).

Rules kept here:
- ``TYPE/NAME`` as kubectl resolves it: a pod, or the best pod of a workload or Service; for a Service each
  REMOTE is a service port, mapped to the pod's port by its targetPort (number or container port name).
- ``LOCAL`` empty or 0 picks a free port; ``--address`` (default ``localhost``: 127.0.0.1) lists the addresses
  to bind, loopback unless named otherwise. Runs until interrupted; kubesvc.dataplane.portforward relays.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option
Arg = typer.Argument


def port_forward(
    args: Annotated[list[str] | None, Arg(help="TYPE/NAME (or POD), then one or more [LOCAL_PORT:]REMOTE_PORT.", show_default=False)] = None,
    address: Annotated[list[str] | None, Opt("--address", help="Addresses to listen on (comma-separated or repeated; localhost means 127.0.0.1).")] = None,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Forward one or more local ports to a pod."""
    from kubesvc.cli import pods as podsel
    from kubesvc.dataplane import portforward

    words = list(args or [])
    if len(words) < 2:
        raise ClientError("TYPE/NAME and list of ports are required for port-forward")
    mappings = portforward.parse_ports(words[1:])
    addrs = [a.strip() for v in (address or ["localhost"]) for a in v.split(",") if a.strip()]
    addrs = ["127.0.0.1" if a == "localhost" else a for a in addrs]
    ns, _ = common.namespace(namespace)
    reg = common.registry(store)
    pod, named = podsel.resolve(reg, ns, words[0])
    if named is not None and named.get("kind") == "Service":
        mappings = [portforward.Mapping(m.local, podsel.service_target_port(named, pod, m.remote)) for m in mappings]
    st = pod.get("status") or {}
    if st.get("phase") != "Running" or not st.get("podIP"):
        raise ClientError(f"unable to forward port because pod is not running. Current status={st.get('phase', 'Pending')}")

    def say(line: str) -> None:
        print(line, flush=True)

    def complain(line: str) -> None:
        print(f"error: {line}", file=sys.stderr, flush=True)

    try:
        asyncio.run(portforward.serve(str(st["podIP"]), mappings, list(dict.fromkeys(addrs)), say, complain))
    except OSError as e:
        raise ClientError(f"unable to listen on any of the requested ports: {e.strerror or e}") from None
    except KeyboardInterrupt:
        pass
