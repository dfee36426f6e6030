#!/usr/bin/env bash
# Workloads that really run: a Deployment of 3 local processes behind a Service, traffic through the proxy,
# a pod killed and replaced while requests keep succeeding, and a rolling update. Loopback only.
# Run from the repository root: bash examples/demo-workloads.sh
set -euo pipefail
KS="${KS:-python -m kubesvc}"
DIR=$(mktemp -d)
export KUBESVC_STORE="$DIR/store.db"
cleanup() { $KS down >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

echo "+ kubesvc up (proxy, DNS, API server, kubelet, ingress)"
UP_OUT=$($KS up --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --dns-listen 127.0.0.1:0 \
       --apiserver-address 127.0.0.1:0 --ingress-http-address 127.0.0.1:0 --ingress-https-address 127.0.0.1:0)
echo "$UP_OUT" | grep -v '^  '
HTTP_PORT=$(echo "$UP_OUT" | sed -n 's/^ingress: .* http=127\.0\.0\.1:\([0-9]*\).*/\1/p')
echo "+ kubesvc apply -f examples/app-deployment.yaml"
$KS apply -f examples/app-deployment.yaml
$KS rollout status deployment/app --timeout=60s
$KS get deploy,rs,pods -o wide
IP=$($KS get svc app -o jsonpath='{.spec.clusterIP}')
$KS get ep app

echo "+ six requests to $IP:8080, balanced over the pods"
for _ in 1 2 3 4 5 6; do curl -s --max-time 2 "http://$IP:8080/"; done

# A bounded client: requests for $2 seconds, then prints how many succeeded and failed.
load() {
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, secs = sys.argv[1], float(sys.argv[2])
ok = failed = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            r.read()
        ok += 1
    except Exception:
        failed += 1
    time.sleep(0.01)
print(f"requests: {ok} ok, {failed} failed")
PY
}

echo "+ an Ingress: http://app.local/ routed by kubesvc ingress to the Service's pods"
$KS apply -f - <<YAML
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app}
spec:
  ingressClassName: kubesvc
  rules:
  - host: app.local
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 8080}}}}
YAML
for _ in $(seq 50); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --resolve "app.local:$HTTP_PORT:127.0.0.1" "http://app.local:$HTTP_PORT/")" = 200 ] && break
  sleep 0.02
done
for _ in 1 2 3; do curl -s --resolve "app.local:$HTTP_PORT:127.0.0.1" "http://app.local:$HTTP_PORT/"; done
$KS get ingress app

VICTIM=$($KS get pods -l app=app -o jsonpath='{.items[0].metadata.name}')
echo "+ delete pod $VICTIM while a client keeps sending; the ReplicaSet replaces it"
load "http://$IP:8080/" 6 &
LOAD=$!
sleep 1
$KS delete pod "$VICTIM"
wait $LOAD
$KS rollout status deployment/app --timeout=60s
$KS get pods -l app=app

echo "+ rolling update (kubesvc rollout restart) while a client keeps sending"
load "http://$IP:8080/" 10 &
LOAD=$!
sleep 0.5
$KS rollout restart deployment/app
$KS rollout status deployment/app --timeout=60s
wait $LOAD
$KS get rs,pods -l app=app
$KS rollout history deployment/app 2>/dev/null || true

echo "+ kubesvc down (stops every pod cleanly)"
$KS down
