"""`kubesvc exec POD [-c C] [-i] [-t] -- COMMAND [ARG...]`: run a command in a running container, locally.

Rules kept here:
- The CLI reads the store directly, so it runs the command itself, in the context the kubelet recorded for
  the container (env, working directory, user, network namespace: kubesvc.dataplane.kubelet.execs), as the
  API server does for `kubectl exec`; no API server is needed. Taking the container's user needs root (or
  being the kubelet's user).
- ``-i`` passes stdin through (else the command reads nothing); ``-t`` keeps this terminal as the command's
  terminal (kubectl's "Unable to use a TTY" warning when stdin is not one).
- The exit code is the command's; a non-zero one is also reported as kubectl does
  (``command terminated with exit code N`` on stderr).
- ``POD`` may be ``TYPE/NAME`` (deployment/web, service/web: its best pod, as kubectl picks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option
Arg = typer.Argument


def exec_(
    args: Annotated[list[str] | None, Arg(help="POD (or TYPE/NAME), then after -- the command and its arguments.", show_default=False)] = None,
    container: Annotated[str | None, Opt("--container", "-c", help="Container name (default: the pod's only one).")] = None,
    stdin: Annotated[bool, Opt("--stdin", "-i", help="Pass stdin to the container.")] = False,
    tty: Annotated[bool, Opt("--tty", "-t", help="Stdin is a TTY.")] = False,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="Only print output from the remote session.")] = False,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Execute a command in a container."""
    from kubesvc.cli import pods as podsel
    from kubesvc.dataplane.kubelet import execs

    words = list(args or [])
    if not words:
        raise ClientError("pod, type/name or --filename must be specified")
    target, command = words[0], words[1:]
    if not command:
        raise ClientError("you must specify at least one command for the container")
    ns, _ = common.namespace(namespace)
    reg = common.registry(store)
    pod, _ = podsel.resolve(reg, ns, target)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise ClientError(f"cannot exec into a container in a completed pod; current phase is {phase}")
    t = execs.target(common.store_path(store), pod, container)
    if tty and not (stdin and os.isatty(0)):
        if not quiet:
            common.warn("Unable to use a TTY - input is not a terminal or the right kind of file")
        tty = False
    kw = t.popen_kwargs(None)
    if tty:
        kw.pop("preexec_fn")  # stay in this session: the terminal stays the command's controlling terminal
        if t.switch:
            kw["user"], kw["group"], kw["extra_groups"] = t.uid, t.gid, list(t.groups)
    try:
        p = subprocess.run(t.argv(command), stdin=None if stdin else subprocess.DEVNULL, check=False, **kw)
    except FileNotFoundError:
        raise ClientError(f'exec: "{command[0]}": executable file not found in $PATH') from None
    except (OSError, subprocess.SubprocessError) as e:
        raise ClientError(f"failed to exec in container: {e}") from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    code = execs.exit_code(p.returncode)
    if code:
        if not quiet:
            print(f"command terminated with exit code {code}", file=sys.stderr)
        raise typer.Exit(code)
