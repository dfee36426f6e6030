"""`make bench`: every benchmark, each side by side with its peer in the same run."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = ["cli_bench.py", "api_bench.py", "proxy_bench.py", "proxy_scale_bench.py",
           "dns_bench.py", "ingress_bench.py", "ingress_floor.py", "portforward_bench.py", "plugin_bench.py"]


def main() -> int:
    failed = 0
    for name in BENCHES:
        path = os.path.join(HERE, name)
        if not os.path.exists(path):
            continue
        print(f"\n## {name}\n", flush=True)
        rc = subprocess.call([sys.executable, path])
        failed |= rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
