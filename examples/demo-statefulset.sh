#!/usr/bin/env bash
# A StatefulSet behind a headless Service, resolved by name from inside a pod, and an agnhost netexec
# Deployment answering /hostname round robin through its Service. Loopback only.
# Run from the repository root: bash examples/demo-statefulset.sh
set -euo pipefail
KS="${KS:-python -m kubesvc}"
command -v "${KS%% *}" >/dev/null && KS="$(command -v "${KS%% *}")${KS#"${KS%% *}"}"  # absolute: up runs with another PATH
DIR=$(mktemp -d)
chmod 711 "$DIR"  # pods run as nobody when kubesvc runs as root: they must reach their directory
export KUBESVC_STORE="$DIR/store.db"
cleanup() { $KS down >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

echo "+ kubesvc up"
# The kubelet finds python3 (agnhost's interpreter) on PATH: keep a virtualenv's, which the pod user may
# not be able to run, out of it.
HOST_PATH=$(echo "$PATH" | tr ':' '\n' | grep -v -e '/\.venv/' -e '/\.pyenv/' | paste -sd: -)
UP_OUT=$(PATH="$HOST_PATH" $KS up --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --dns-listen 127.0.0.1:0 \
       --apiserver-address 127.0.0.1:0 --components proxy,dns,kubelet)
echo "$UP_OUT" | grep -v '^  '
DNS_PORT=$(echo "$UP_OUT" | sed -n 's/^dns: .*udp=127\.0\.0\.1:\([0-9]*\).*/\1/p' | head -1)

wait_for() {  # wait_for JSONPATH-OBJECT JSONPATH WANT
  for _ in $(seq 300); do
    [ "$($KS get "$1" -o jsonpath="$2" 2>/dev/null)" = "$3" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1 $2=$3" >&2; return 1
}

echo "+ kubesvc apply -f examples/statefulset.yaml (pods start one after another: db-0, db-1, db-2)"
$KS apply -f examples/statefulset.yaml
wait_for statefulset/db '{.status.readyReplicas}' 3
$KS get statefulset db
$KS get pods -l app=db -o custom-columns=NAME:.metadata.name,HOSTNAME:.spec.hostname,SUBDOMAIN:.spec.subdomain,IP:.status.podIP
$KS get endpoints db -o jsonpath='{range .subsets[0].addresses[*]}{.hostname}={.ip}{"\n"}{end}'

echo "+ from inside a pod: dig db-1.db.default.svc.cluster.local (the cluster DNS on 127.0.0.1:$DNS_PORT)"
$KS apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: lookup}
spec:
  restartPolicy: Never
  containers:
  - name: dig
    image: registry.k8s.io/e2e-test-images/jessie-dnsutils:1.3
    command: ["sh", "-c", "for i in 0 1 2; do echo db-\$i.db = \$(dig +short -p $DNS_PORT @127.0.0.1 db-\$i.db.default.svc.cluster.local); done"]
YAML
wait_for pod/lookup '{.status.phase}' Succeeded
$KS logs lookup

echo "+ scale down: the highest ordinal goes first"
$KS scale statefulset db --replicas=1
wait_for statefulset/db '{.status.replicas}' 1
$KS get pods -l app=db

echo "+ kubesvc apply -f examples/agnhost-netexec.yaml"
$KS apply -f examples/agnhost-netexec.yaml
$KS rollout status deployment/netexec --timeout=60s
IP=$($KS get svc netexec -o jsonpath='{.spec.clusterIP}')
echo "+ six requests to http://$IP/hostname through the proxy: the pods answer in turn"
for _ in 1 2 3 4 5 6; do curl -s --max-time 2 "http://$IP/hostname"; echo; done

echo "+ delete the StatefulSet with --cascade=orphan: its pod stays, unowned"
$KS delete statefulset db --cascade=orphan
$KS get pods -l app=db -o custom-columns=NAME:.metadata.name,OWNERS:.metadata.ownerReferences

echo "+ kubesvc down"
$KS down
