"""The data plane: servers that move real traffic (proxy; DNS and ingress later) and their supervisor.

Entry points for the CLI (which stays thin): ``run_proxy`` runs ``kubesvc proxy`` in the foreground;
``kubesvc.dataplane.supervisor`` starts, stops and reports the background components (``kubesvc up``).
Heavy imports stay inside functions: the CLI imports this package on every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubesvc.dataplane.proxy.server import ProxyOptions


def run_proxy(store_path: str, options: ProxyOptions) -> int:
    """Run the proxy until SIGTERM/SIGINT; prints the ready line once it serves. Returns the exit code."""
    import asyncio

    from kubesvc.dataplane import runtime
    from kubesvc.dataplane.proxy.server import ProxyServer

    runtime.setup_logging(options.verbosity)

    async def main(stop: asyncio.Event) -> int:
        server = ProxyServer(store_path, options)
        return await server.run(stop, on_ready=lambda fields: runtime.announce_ready("proxy", fields))

    return runtime.run(main)
