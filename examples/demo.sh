#!/usr/bin/env bash
# The main job end to end on the embedded SQLite store: create the example manifests, list and describe
# them, expose, update, delete. Uses a throwaway store so it never touches ~/.kubesvc.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export KS=kubesvc
DEMO_DIR=$(mktemp -d)
export KUBESVC_STORE="$DEMO_DIR/store.db"
cleanup() {
  if [ -x "$(command -v kubesvc)" ] && [ -f "$KUBESVC_STORE" ]; then kubesvc down >/dev/null 2>&1 || true; fi
  rm -rf "$DEMO_DIR"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step kubesvc init
step kubesvc create -f examples/web.yaml
step kubesvc create -f examples/services.yaml
step kubesvc apply -f examples/external.yaml
step kubesvc get svc -o wide
step kubesvc get endpoints
step kubesvc get pods --show-labels
step kubesvc describe svc web
step kubesvc create -f examples/deployment.yaml
step kubesvc expose deployment api --port=8000 --name=api --type=LoadBalancer
step kubesvc get svc api -o jsonpath='{.status.loadBalancer.ingress[0].ip}'; echo
step kubesvc label pod web-3 app=retired --overwrite
step kubesvc get ep web
step kubesvc delete svc ext
step kubesvc get all

# Real traffic: registered backends, the proxy, DNS and the real kubectl against kubesvc's API server.
step bash examples/demo-traffic.sh
# Workloads that really run: a Deployment of local processes, a pod replaced and a rolling update under load.
step bash examples/demo-workloads.sh
# A StatefulSet behind a headless Service resolved by name from a pod; agnhost netexec answering /hostname in turn.
step bash examples/demo-statefulset.sh
printf '\ndemo finished\n'
