"""`kubesvc run NAME --image=IMAGE`: kubectl run's Pod (and, with --expose, its Service), printed with
--dry-run=client as kubectl prints them or created in the store.

Rules kept here (kubectl's run.go):
- the pod is labelled ``run=NAME`` unless ``--labels`` is given; the container is named NAME; words after
  ``--`` are the container's args, or its command with ``--command``; restartPolicy ``Always`` by default.
- ``--expose --port=P`` creates a ClusterIP Service NAME selecting the pod's labels before the pod.
- kubectl's checks and messages, in its order: NAME, --image, --restart, --expose without --port.
- attaching (``-i``, ``-t``, ``--attach``, ``--rm``) is not offered: kubesvc's CLI has no attach.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import DryRunOpt, NamespaceOpt, OutputOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option


def _usage(message: str) -> ClientError:
    return ClientError(f"{message}\nSee 'kubesvc run -h' for help and examples")


def run(
    args: Annotated[list[str] | None, typer.Argument(help="NAME, then after -- the container's args (or command with --command).", show_default=False)] = None,
    image: Annotated[str | None, Opt("--image", help="The image for the container to run.")] = None,
    port: Annotated[str, Opt("--port", help="The port that this container exposes.")] = "",
    env: Annotated[list[str] | None, Opt("--env", help="Environment variables to set in the container (NAME=value; repeatable).")] = None,
    labels: Annotated[str, Opt("--labels", "-l", help="Comma separated labels to apply to the pod. Will override previous values.")] = "",
    annotations: Annotated[list[str] | None, Opt("--annotations", help="Annotations to apply to the pod (k=v; repeatable).")] = None,
    restart: Annotated[str, Opt("--restart", help="The restart policy for this Pod. Legal values [Always, OnFailure, Never].")] = "Always",
    command: Annotated[bool, Opt("--command", help="Use the words after -- as the command instead of the args.")] = False,
    expose: Annotated[bool, Opt("--expose", help="Create a ClusterIP service associated with the pod (requires --port).")] = False,
    image_pull_policy: Annotated[str, Opt("--image-pull-policy", help="The image pull policy for the container.")] = "",
    privileged: Annotated[bool, Opt("--privileged", help="Run the container in privileged mode.")] = False,
    namespace: NamespaceOpt = None,
    output: OutputOpt = None,
    dry_run: DryRunOpt = "none",
    store: StoreOpt = None,
) -> None:
    """Create and run a particular image in a pod: kubesvc run NAME --image=image [--env="key=value"] [--port=port] [--dry-run=server|client] [--command] -- [COMMAND] [args...]."""
    from kubesvc.api import generators

    words = list(args or [])
    if not words:
        raise _usage("NAME is required for run")
    if not image:
        raise ClientError('required flag(s) "image" not set')
    mode = common.dry_run_mode(dry_run)
    out_fmt = common.check_output(output)
    if restart not in generators.RESTART_POLICIES:
        raise _usage(f"invalid restart policy: {restart}")
    if expose and not port:
        raise _usage("--port must be set when exposing a service")
    name, rest = words[0], words[1:]
    pod = generators.run_pod(name, image, labels=labels, annotations=annotations, env=env, port=port,
                             restart=restart, command=command, args=rest, pull_policy=image_pull_policy,
                             privileged=privileged)
    ns, explicit = common.namespace(namespace)
    if expose:
        given = pod["metadata"]["labels"] if labels else None
        svc = generators.run_service(name, port, pod["metadata"]["labels"], given)
        common.print_or_create(svc, ns, mode, out_fmt, "created", store, explicit=explicit, manager="kubectl-run")
        if out_fmt == "yaml":
            common.out("---\n---\n")  # kubectl's two printers each mark a second document
    common.print_or_create(pod, ns, mode, out_fmt, "created", store, explicit=explicit, manager="kubectl-run")
