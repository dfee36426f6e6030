"""Images kubesvc runs natively, with no container runtime: how each becomes a local process.

Rules kept here (which images are known: ``kubesvc.api.images``; matched by repository name, ignoring
the registry, tag and digest):
- argv follows the image's ENTRYPOINT/CMD as Kubernetes composes them: ``command`` replaces the
  entrypoint, ``args`` the default command; ``command`` without ``args`` drops the default command.
- ``agnhost`` (entrypoint ``/agnhost``) and ``pause`` (``/pause``): ``kubelet/agnhost.py`` run by the
  ``python3`` on the container's PATH (the system one for ``nobody``), from a copy in the pod's directory
  (or with ``-c`` when the pod's user cannot reach that directory).
- ``busybox``, ``alpine``, ``debian``, ``ubuntu``, ``dnsutils``/``jessie-dnsutils``: the programs of the
  command from the host (``sh``, ``sleep``, ``wget``, ``nc``, ``dig``, ``nslookup``...); a path such as
  ``/bin/sleep`` that does not exist here is looked up by its name on PATH; ``busybox <applet>`` runs the
  applet. A program missing from the host leaves the container ``ImageNotRunnable`` naming it.
- ``curl`` (curlimages/curl, entrypoint ``curl``) and ``python`` (default command ``python3``): the host's.
- ``nginx`` and ``httpd`` without a command of their own: the host's nginx with a generated
  configuration listening on each container port (80 when none) at the pod's address, serving the
  image's default page; without nginx installed: ``ImageNotRunnable``.
- Any other image needs ``command``: without one the container waits in ``ImageNotRunnable``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesvc.api import images as known

Obj = dict[str, Any]

NOT_RUNNABLE = "ImageNotRunnable"
HINT = "set command, or use an image kubesvc runs natively (see docs/concepts/workloads.md)"

# family -> (entrypoint, default command), as the images define them
DEFAULTS: dict[str, tuple[list[str], list[str]]] = {
    "agnhost": (["/agnhost"], []),
    "pause": (["/pause"], []),
    "serve_hostname": (["/agnhost", "serve-hostname"], []),  # the old image: serve-hostname on 9376
    "shell": ([], ["sh"]),
    "curl": (["curl"], []),
    "python": ([], ["python3"]),
    "nginx": ([], ["nginx", "-g", "daemon off;"]),
    "httpd": ([], ["httpd-foreground"]),
}

NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
HTTPD_PAGE = "<html><body><h1>It works!</h1></body></html>\n"


class NotRunnable(Exception):
    """The container's image cannot run here as written: the message says why and what to do."""


@dataclass
class Context:
    """What a plan needs from the node: where pod-visible files go and how to reach the pod."""

    run_dir: Path  # the pod's runtime files (readable by the pod's user when ``reachable``)
    reachable: bool  # whether the pod's user can search run_dir
    bind_address: str  # where servers listen: the pod IP (loopback) or 0.0.0.0 (netns)
    uid: int
    gid: int
    low_ports_ok: bool = True  # whether the container may bind ports below 1024 (root agent, or netns)


def compose(container: Obj, family: str | None) -> list[str]:
    """argv before any mapping: command/args over the image's entrypoint/default command."""
    command = [str(a) for a in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if family is None:
        return command + args  # unknown image: args alone run as the argv (kubesvc's long-standing rule)
    entry, cmd = DEFAULTS[family]
    if command:
        return command + args
    return entry + (args if args else cmd)


def which(name: str, env: dict[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH", os.defpath))


def python3(env: dict[str, str]) -> str:
    """python3 on the container's PATH (for a pod of another user, identity.container_path has already dropped the
    directories whose python3 that user cannot run)."""
    found = which("python3", env)
    if not found:
        raise NotRunnable("no python3 on the container's PATH (kubesvc runs this image's program with the host's python3)")
    return found


def agnhost_argv(ctx: Context, env: dict[str, str]) -> list[str]:
    src = Path(__file__).with_name("agnhost.py")
    py = python3(env)
    if ctx.reachable:
        bin_dir = ctx.run_dir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(bin_dir, 0o755)
        dst = bin_dir / "agnhost.py"
        tmp = bin_dir / ".agnhost.py.tmp"
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
        return [py, str(dst)]
    return [py, "-c", src.read_text(), "agnhost"]


def low_ports(container: Obj) -> bool:
    """Whether the container runs as a native web server on a port below 1024."""
    return known.family(str(container.get("image") or "")) in ("nginx", "httpd") and any(p < 1024 for p in _ports(container))


def plan(container: Obj, env: dict[str, str], ctx: Context) -> list[str]:
    """The argv that runs ``container`` here; raises NotRunnable saying why not."""
    image = str(container.get("image") or "")
    family = known.family(image)
    argv = compose(container, family)
    if family is None:
        if not argv:
            raise NotRunnable(f'image "{image}" has no command, and kubesvc does not run it natively: {HINT}')
        return argv
    if family in ("nginx", "httpd") and (not argv or os.path.basename(argv[0]) in ("nginx", "httpd-foreground", "httpd",
                                                                                    "docker-entrypoint.sh")):
        return web_server(container, env, ctx, family)
    if argv and os.path.basename(argv[0]) in ("agnhost", "pause") and family in ("agnhost", "pause", "serve_hostname"):
        rest = argv[1:] if os.path.basename(argv[0]) == "agnhost" else ["pause"]
        return agnhost_argv(ctx, env) + rest
    if not argv:
        raise NotRunnable(f'image "{image}" has no default command here: {HINT}')
    if os.path.basename(argv[0]) == "busybox" and len(argv) > 1:
        argv = argv[1:]
    return host_program(argv, env, image)


def host_program(argv: list[str], env: dict[str, str], image: str) -> list[str]:
    """Run the command with the host's programs: an absolute path missing here is found by name."""
    prog = argv[0]
    name = os.path.basename(prog)
    if ("/" in prog and not os.path.isabs(prog)) or (os.path.isabs(prog) and os.path.exists(prog)):
        return argv
    for cand in [name] + (["python3"] if name == "python" else []):
        found = which(cand, env)
        if found:
            return [found, *argv[1:]]
    raise NotRunnable(f'image "{image}": "{name}" is not installed on this machine (kubesvc runs the image\'s programs '
                      f"with the host's tools): install it, or {HINT}")


def _ports(container: Obj) -> list[int]:
    ports = [int(p["containerPort"]) for p in container.get("ports") or []
             if isinstance(p, dict) and str(p.get("protocol", "TCP")) == "TCP" and isinstance(p.get("containerPort"), int)]
    return ports or [80]


def web_server(container: Obj, env: dict[str, str], ctx: Context, family: str) -> list[str]:
    """The host's nginx with a generated configuration serving the image's default page."""
    nginx = which("nginx", env) or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    image = container.get("image", "")
    if nginx is None:
        raise NotRunnable(f'image "{image}": kubesvc serves it with the host\'s nginx, which is not installed '
                          f"(apt-get install nginx-light): install it, or {HINT}")
    if not ctx.reachable:
        raise NotRunnable(f'image "{image}": the pod directory {ctx.run_dir} is not reachable by uid {ctx.uid}, the '
                          "user the container runs as (its parent directories must be searchable): move the store, or "
                          f"{HINT}")
    low = [p for p in _ports(container) if p < 1024]
    if low and not ctx.low_ports_ok:
        raise NotRunnable(f'image "{image}": port {low[0]} is below 1024, which a kubelet not running as root cannot '
                          "give a container: set containerPort to 1024 or above (nginx then listens there), or run "
                          "the kubelet as root")
    root = ctx.run_dir / family
    html = root / "html"
    html.mkdir(parents=True, exist_ok=True)
    (html / "index.html").write_text(NGINX_PAGE if family == "nginx" else HTTPD_PAGE)
    if family == "nginx":
        (html / "50x.html").write_text("<html><body><h1>An error occurred.</h1></body></html>\n")
    listens = "\n".join(f"        listen {_addr(ctx.bind_address)}:{p};" for p in _ports(container))
    conf = f"""# generated by kubesvc kubelet for image {image}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 512; }}
http {{
    types {{ text/html html htm; text/plain txt; text/css css; application/javascript js; application/json json; }}
    default_type application/octet-stream;
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/client_body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
{listens}
        server_name localhost;
        root {html};
        index index.html;
    }}
}}
"""
    (root / "nginx.conf").write_text(conf)
    (root / "tmp").mkdir(exist_ok=True)
    for path in (root, root / "tmp"):
        os.chmod(path, 0o755)
    if os.geteuid() == 0:
        for path in (root, root / "tmp"):
            os.chown(path, ctx.uid, ctx.gid)
    for f in html.iterdir():
        os.chmod(f, 0o644)
    os.chmod(html, 0o755)
    return [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", "stderr"]


def _addr(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip
