"""Entry point and the single error funnel.

Rule: library code raises typed errors; ``cli.app.FunnelGroup`` alone prints them to stderr in kubectl's
wording and picks the exit code (0 ok, 1 error; 2 for command-line usage errors). Anything else that
escapes is a bug: it still exits 1 with a one-line message; KUBESVC_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    try:
        from kubesvc.cli.app import build_app

        args = sys.argv[1:] if argv is None else argv
        build_app(args)(args=args, prog_name="kubesvc")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(0)
    except Exception as e:  # the funnel's last resort: never a traceback unless asked for
        if os.environ.get("KUBESVC_DEBUG"):
            raise
        sys.stderr.write(f"error: internal error: {type(e).__name__}: {e} (set KUBESVC_DEBUG=1 for a traceback)\n")
        sys.exit(1)
