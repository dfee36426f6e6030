"""agnhost, natively: the subcommands of registry.k8s.io/e2e-test-images/agnhost that Service tests use.

Standard library only, and no kubesvc import: the node agent copies this file into the pod's directory
(or passes it with ``-c``) and runs it with the system ``python3`` as the pod's user.

Subcommands (flags as agnhost's, ``--flag=value`` or ``--flag value``):
- ``netexec [--http-port 8080] [--udp-port 8081] [--delay-shutdown N]``: HTTP ``/`` (``NOW: <time>``),
  ``/hostname``, ``/clientip`` (``ip:port``), ``/echo?msg=``, ``/exit?code=``, ``/healthz``,
  ``/header?key=``, ``/shell?cmd=`` (``{"output": ...}``, run with ``/bin/sh -c`` as the pod's user, as
  agnhost does), ``/dial?request=&host=&port=&protocol=http|udp&tries=``; UDP ``hostname``, ``echo <msg>``,
  ``clientip``. ``--udp-port -1`` turns UDP off.
- ``serve-hostname [--port 9376] [--udp] [--http=true] [--tcp]``: answers every request with the hostname.
- ``pause``: waits for SIGTERM/SIGINT, then exits 0.
- ``porter``: for each ``SERVE_PORT_<n>=<text>`` in the environment, HTTP on port n answering <text>.
- ``dns-server-list``, ``dns-suffix``, ``etc-hosts``: the resolver's servers, search list, /etc/hosts.
- ``connect host:port [--timeout 5s]``: exit 0 when a TCP connection succeeds, 1 otherwise.
The hostname is ``$HOSTNAME`` (the pod name, as the kubelet sets it). Servers bind
``$KUBESVC_BIND_ADDRESS`` (the pod IP in loopback mode), else all addresses.
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

BIND = os.environ.get("KUBESVC_BIND_ADDRESS", "") or "0.0.0.0"


def hostname() -> str:
    return os.environ.get("HOSTNAME") or socket.gethostname()


def parse_flags(argv: list[str], known: dict[str, str]) -> dict[str, str]:
    """``--name=value``, ``--name value`` and bare boolean ``--name``; unknown flags are an error."""
    out = dict(known)
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            out.setdefault("_args", "")
            out["_args"] = (out["_args"] + " " + a).strip()
            i += 1
            continue
        name, eq, value = a.lstrip("-").partition("=")
        if name not in known:
            sys.exit(f"Error: unknown flag: --{name}")
        if not eq:
            if known[name] in ("true", "false"):
                value = "true"
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                sys.exit(f"Error: flag needs an argument: --{name}")
        out[name] = value
        i += 1
    return out


def wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(3600):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_http(port: int, handler: type[http.server.BaseHTTPRequestHandler]) -> Server:
    srv = Server((BIND, port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stdout.write(f"{self.client_address[0]} {fmt % args}\n")
        sys.stdout.flush()

    def reply(self, body: str, code: int = 200, ctype: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


# ------------------------------------------------------------------------------------------- netexec

def dial(request: str, host: str, port: int, protocol: str, tries: int) -> dict[str, list[str]]:
    responses: list[str] = []
    errors: list[str] = []
    for _ in range(max(1, tries)):
        try:
            if protocol == "udp":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(5)
                    s.sendto(request.encode(), (host, port))
                    responses.append(s.recv(65535).decode(errors="replace"))
            else:
                url = f"http://{host}:{port}/{request.lstrip('/')}"
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(url, timeout=5) as r:
                    responses.append(r.read().decode(errors="replace"))
        except OSError as e:
            errors.append(str(e))
    return {"responses": responses, "errors": errors}


def netexec_handler(exit_fn: object) -> type[Quiet]:
    class H(Quiet):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            path = url.path
            if path == "/":
                self.reply(f"NOW: {datetime.datetime.now()}")
            elif path == "/hostname":
                self.reply(hostname())
            elif path == "/clientip":
                self.reply(f"{self.client_address[0]}:{self.client_address[1]}")
            elif path == "/echo":
                self.reply(q.get("msg", ""))
            elif path == "/healthz":
                self.reply("ok")
            elif path == "/header":
                self.reply(self.headers.get(q.get("key", ""), ""))
            elif path == "/exit":
                code = int(q.get("code", "0") or 0)
                self.reply("")
                threading.Timer(0.05, exit_fn, (code,)).start()  # type: ignore[arg-type]
            elif path == "/shell":
                r = subprocess.run(["/bin/sh", "-c", q.get("cmd", "")], capture_output=True, text=True, timeout=60,
                                   check=False)
                body: dict[str, str] = {"output": r.stdout}
                if r.returncode != 0:
                    body["error"] = f"exit status {r.returncode}"
                self.reply(json.dumps(body), ctype="application/json")
            elif path == "/dial":
                try:
                    port = int(q.get("port", "0"))
                    tries = int(q.get("tries", "1"))
                except ValueError:
                    self.reply("port and tries must be integers", 400)
                    return
                out = dial(q.get("request", "hostname"), q.get("host", ""), port, q.get("protocol", "http"), tries)
                self.reply(json.dumps(out), ctype="application/json")
            else:
                self.reply("404 page not found\n", 404)

        do_HEAD = do_GET
        do_POST = do_GET

    return H


def udp_server(port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((BIND, port))

    def loop() -> None:
        while True:
            data, peer = s.recvfrom(65535)
            text = data.decode(errors="replace").strip()
            if text == "hostname":
                out = hostname()
            elif text.startswith("echo "):
                out = text[5:]
            elif text == "clientip":
                out = f"{peer[0]}:{peer[1]}"
            else:
                out = ""
            if out:
                s.sendto(out.encode(), peer)

    threading.Thread(target=loop, daemon=True).start()


def netexec(argv: list[str]) -> int:
    f = parse_flags(argv, {"http-port": "8080", "udp-port": "8081", "sctp-port": "-1", "delay-shutdown": "0",
                           "http-override": "", "tls-cert-file": "", "tls-private-key-file": ""})
    code = {"value": 0}
    done = threading.Event()

    def exit_fn(c: int) -> None:
        code["value"] = c
        done.set()

    serve_http(int(f["http-port"]), netexec_handler(exit_fn))
    if int(f["udp-port"]) > 0:
        udp_server(int(f["udp-port"]))
    print(f"Started HTTP server on port {f['http-port']}", flush=True)
    if int(f["udp-port"]) > 0:
        print(f"Started UDP server on port {f['udp-port']}", flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(3600):
        pass
    delay = float(f["delay-shutdown"] or 0)
    if delay > 0 and code["value"] == 0:
        time.sleep(delay)
    return code["value"]


# ------------------------------------------------------------------------------ serve-hostname, porter

def serve_hostname(argv: list[str]) -> int:
    f = parse_flags(argv, {"port": "9376", "udp": "false", "http": "true", "tcp": "false", "close": "false",
                           "exit-after": "0"})
    port = int(f["port"])
    name = hostname()
    if f["udp"] == "true":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((BIND, port))

        def loop() -> None:
            while True:
                _, peer = s.recvfrom(1024)
                s.sendto(name.encode(), peer)

        threading.Thread(target=loop, daemon=True).start()
    if f["tcp"] == "true":
        t = socket.socket()
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((BIND, port))
        t.listen(64)

        def accept() -> None:
            while True:
                c, _ = t.accept()
                with c:
                    c.sendall(name.encode())

        threading.Thread(target=accept, daemon=True).start()
    elif f["http"] == "true":
        class H(Quiet):
            def do_GET(self) -> None:  # noqa: N802
                self.reply(name)

        serve_http(port, H)
    print(f"Serving on port {port}.", flush=True)
    wait_for_signal()
    return 0


def porter(argv: list[str]) -> int:
    ports = {int(k[len("SERVE_PORT_"):]): v for k, v in os.environ.items()
             if k.startswith("SERVE_PORT_") and k[len("SERVE_PORT_"):].isdigit()}
    if not ports:
        print("porter: no SERVE_PORT_<n> variables set", file=sys.stderr)
    for port, text in sorted(ports.items()):
        class H(Quiet):
            answer = text

            def do_GET(self) -> None:  # noqa: N802
                self.reply(self.answer)

        serve_http(port, H)
        print(f"porter: serving port {port}", flush=True)
    wait_for_signal()
    return 0


# --------------------------------------------------------------------------------------- resolver

def resolv_conf() -> list[list[str]]:
    try:
        with open("/etc/resolv.conf") as f:
            return [line.split() for line in f if line.strip() and not line.startswith(("#", ";"))]
    except OSError:
        return []


def dns_server_list(argv: list[str]) -> int:
    print(",".join(p[1] for p in resolv_conf() if p[0] == "nameserver" and len(p) > 1))
    return 0


def dns_suffix(argv: list[str]) -> int:
    print(",".join(s for p in resolv_conf() if p[0] == "search" for s in p[1:]))
    return 0


def etc_hosts(argv: list[str]) -> int:
    with open("/etc/hosts") as f:
        sys.stdout.write(f.read())
    return 0


def connect(argv: list[str]) -> int:
    f = parse_flags(argv, {"timeout": "5s", "protocol": "tcp", "sctp-port": "0"})
    target = f.get("_args", "")
    host, _, port = target.rpartition(":")
    timeout = float(f["timeout"].rstrip("s") or 5)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        print(f"TIMEOUT: {e}" if isinstance(e, TimeoutError) else f"OTHER: {e}", file=sys.stderr)
        return 1
    return 0


def pause(argv: list[str]) -> int:
    print("Paused", flush=True)
    wait_for_signal()
    print("Shutting down, got signal", flush=True)
    return 0


COMMANDS = {"netexec": netexec, "serve-hostname": serve_hostname, "pause": pause, "porter": porter,
            "dns-server-list": dns_server_list, "dns-suffix": dns_suffix, "etc-hosts": etc_hosts,
            "connect": connect}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("agnhost (kubesvc native): subcommands " + ", ".join(sorted(COMMANDS)))
        return 0
    fn = COMMANDS.get(argv[0])
    if fn is None:
        print(f'Error: unknown command "{argv[0]}" for "agnhost" (kubesvc runs: {", ".join(sorted(COMMANDS))})',
              file=sys.stderr)
        return 1
    return fn(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
