"""A tiny HTTP server for kubesvc workloads: answers its pod name on $POD_IP:$PORT.

GET /         -> "<pod name>\n" (from $POD_NAME, else the hostname)
GET /healthz  -> 200 "ok" (a liveness probe target)
GET /readyz   -> 200, or 503 while the file named by $NOT_READY_FILE exists (a readiness probe target)
SIGTERM       -> prints "shutting down", keeps serving for $SHUTDOWN_DELAY seconds (default 0.5, while the
                 endpoint removal reaches the proxy), then stops accepting, finishes requests in flight, exits 0.
Environment: BIND_ADDRESS, else POD_IP (default 127.0.0.1); PORT (default 8080); POD_NAME; NOT_READY_FILE.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("POD_NAME") or socket.gethostname()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, "ok\n")
        elif self.path == "/readyz":
            flag = os.environ.get("NOT_READY_FILE")
            self._send(503, "not ready\n") if flag and os.path.exists(flag) else self._send(200, "ready\n")
        else:
            self._send(200, NAME + "\n")

    def _send(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
        sys.stdout.flush()


def main() -> None:
    host = os.environ.get("BIND_ADDRESS") or os.environ.get("POD_IP") or "127.0.0.1"
    port = int(os.environ.get("PORT") or 8080)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = False  # server_close() waits for requests in flight
    drain = float(os.environ.get("SHUTDOWN_DELAY") or 0.5)

    def graceful() -> None:
        # Keep serving while the endpoint removal reaches the proxies (what a preStop sleep does in a
        # cluster), then stop accepting and let the requests in flight finish.
        time.sleep(drain)
        server.shutdown()

    def stop(signum: int, frame: object) -> None:
        print("shutting down", flush=True)
        threading.Thread(target=graceful, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"serving {NAME} on {host}:{server.server_address[1]}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
