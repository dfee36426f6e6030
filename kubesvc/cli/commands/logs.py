"""`kubesvc logs`: kubectl logs' flags over the log files the kubelet keeps (kubesvc.dataplane.kubelet.logs, the
same reading code as the API server's pods/log).

Rules kept here:
- Targets: ``POD``, ``pod/POD``, ``TYPE/NAME`` (a workload or Service: its best pod, as kubectl picks), or
  ``-l SELECTOR`` (every matching pod; ``--tail`` then defaults to 10, as kubectl's).
- ``--all-containers`` reads every container of each pod; ``--prefix`` puts ``[pod/NAME/CONTAINER] `` before
  each line; ``--since``/``--since-time``/``--timestamps`` as the kubelet's log reader allows (see its rules).
- ``-f`` follows each container instance until it ends (several at once when several are read).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option
Arg = typer.Argument


def logs(
    target: Annotated[str | None, Arg(help="POD, pod/POD or TYPE/NAME (deployment/web, service/web, ...).", show_default=False)] = None,
    container: Annotated[str | None, Opt("--container", "-c", help="The container (required when the pod has several).")] = None,
    follow: Annotated[bool, Opt("--follow", "-f", help="Stream new output until the container instance ends.")] = False,
    previous: Annotated[bool, Opt("--previous", "-p", help="The previous instance of the container (after a restart).")] = False,
    tail: Annotated[int, Opt("--tail", help="Lines of recent output to show (-1: all; 10 with a selector).")] = -1,
    since: Annotated[str, Opt("--since", help="Only logs newer than this duration, e.g. 5s, 2m, 3h.")] = "",
    since_time: Annotated[str, Opt("--since-time", help="Only logs after this RFC 3339 time.")] = "",
    timestamps: Annotated[bool, Opt("--timestamps", help="Prefix each line with an RFC 3339 timestamp.")] = False,
    limit_bytes: Annotated[int, Opt("--limit-bytes", help="Maximum bytes of logs to return (0: no limit).")] = 0,
    selector: Annotated[str, Opt("--selector", "-l", help="Label selector: the logs of every matching pod.")] = "",
    all_containers: Annotated[bool, Opt("--all-containers", help="The logs of every container of the pod(s).")] = False,
    prefix: Annotated[bool, Opt("--prefix", help="Prefix each line with the log source (pod and container).")] = False,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Print the output (stdout and stderr) of a container in a pod run by `kubesvc kubelet`."""
    from kubesvc.cli import pods as podsel
    from kubesvc.dataplane.kubelet import logs as podlogs

    if target and selector:
        raise ClientError("only one of a selector or a resource may be given")
    if not target and not selector:
        raise ClientError("expected POD, TYPE/NAME or -l SELECTOR, e.g. `kubesvc logs web-7d4f9`")
    if since and since_time:
        raise ClientError("at most one of `sinceTime` or `sinceSeconds` may be specified")
    if limit_bytes < 0:
        raise ClientError("--limit-bytes must be greater than 0")
    if all_containers and container:
        raise ClientError("--all-containers=true should not be specified with container name " + container)
    ns, _ = common.namespace(namespace)
    reg = common.registry(store)
    path = common.store_path(store)
    when = None
    if since:
        when = time.time() - common.parse_duration(since, "--since")
    elif since_time:
        when = podlogs.parse_since_time(since_time)
    if selector:
        pods = sorted(podsel.matching(reg, ns, selector), key=lambda p: p["metadata"]["name"])
        if tail < 0:
            tail = 10
        if not pods:
            common.warn(f"No resources found in {ns} namespace.")
            return
    else:
        pods = [podsel.resolve(reg, ns, str(target))[0]]
    sources: list[tuple[dict[str, Any], str]] = []
    for pod in pods:
        names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        if all_containers:
            sources += [(pod, n) for n in names]
        else:
            sources.append((pod, podlogs.pick_container(pod, container)))
    lock = threading.Lock()

    def write(pod: dict[str, Any], name: str, data: bytes) -> None:
        if prefix:
            tag = f"[pod/{pod['metadata']['name']}/{name}] ".encode()
            data = b"".join(tag + line for line in data.splitlines(keepends=True))
        with lock:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    followers = []
    for pod, name in sources:
        opts = podlogs.Options(container=name, previous=previous, tail=tail, limit_bytes=limit_bytes, since=when,
                               timestamps=timestamps, follow=follow)
        data, file, end = podlogs.snapshot(path, pod, opts)
        write(pod, name, data)
        if follow and not previous and not (limit_bytes and len(data) >= limit_bytes):
            followers.append(threading.Thread(target=_follow, args=(reg, pod, name, file, end, opts, len(data), write),
                                              daemon=True))
    for t in followers:
        t.start()
    try:
        for t in followers:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        pass


def _follow(reg: Any, pod: dict[str, Any], name: str, file: Any, offset: int, opts: Any, sent: int, write: Any) -> None:
    from kubesvc.dataplane.kubelet import logs as podlogs
    from kubesvc.dataplane.kubelet import tracking

    meta = pod["metadata"]
    record = podlogs.pod_dir(reg.store.path, pod) / name / tracking.RECORD

    def current() -> bool:
        p = reg.store.get("Pod", meta.get("namespace", "default"), meta["name"])
        return (p is not None and p["metadata"].get("uid") == meta.get("uid") and file.exists()
                and tracking.live(tracking.read(record)))

    for chunk in podlogs.follow(file, offset, current):
        data = chunk.encode()
        if opts.timestamps:
            data = podlogs.stamp(data, time.time())
        if opts.limit_bytes:
            data = data[: opts.limit_bytes - sent]
        sent += len(data)
        write(pod, name, data)
        if opts.limit_bytes and sent >= opts.limit_bytes:
            return
