#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks use as real clients, when missing.
set -euo pipefail
need=()
command -v dig >/dev/null || need+=(dnsutils)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
# tests/cli/test_top.py drives `kubesvc top` in a tmux session (send-keys, capture-pane); test_top's NO_COLOR check uses script
command -v tmux >/dev/null || need+=(tmux)
# tests/dataplane/test_up_rootless.py runs kubesvc as a system user it creates (useradd, runuser), from a venv on
# a Python outside /root: Debian's python3 (the suite's X.Y; the test skips on another).
command -v useradd >/dev/null || need+=(passwd)
command -v runuser >/dev/null || need+=(util-linux)
[ -x /usr/bin/python3 ] || need+=(python3)
# `kubesvc proxy --mode nftables` and its tests (tests/dataplane/test_proxy_nft.py) program nftables: root only
# and delete stale UDP conntrack entries when endpoints go (conntrack -D, as kube-proxy)
if [ "$(id -u)" = 0 ]; then command -v nft >/dev/null || need+=(nftables); command -v conntrack >/dev/null || need+=(conntrack); fi
if [ "${BENCH:-0}" = 1 ]; then
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v iperf3 >/dev/null || need+=(iperf3)
  command -v wrk >/dev/null || need+=(wrk)
  command -v nginx >/dev/null || need+=(nginx-light)
  command -v dnsperf >/dev/null || need+=(dnsperf)
  command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "sysdeps: missing ${need[*]}; install them (needs root)" >&2
    exit 0
  fi
  echo "sysdeps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
