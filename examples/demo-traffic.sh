#!/usr/bin/env bash
# Real traffic through kubesvc: three backends as Pods of a ReplicationController, exposed, proxied.
# Everything binds loopback addresses only. Run from the repository root: bash examples/demo-traffic.sh
set -euo pipefail
KS="${KS:-python -m kubesvc}"
DIR=$(mktemp -d)
export KUBESVC_STORE="$DIR/store.db"
PIDS=()
cleanup() { $KS down >/dev/null 2>&1 || true; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

# Three tiny HTTP servers answering with their name, on 127.0.10.{1,2,3}:8080.
for i in 1 2 3; do
  python3 -c '
import http.server, sys
name, ip = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {name}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer((ip, 8080), H).serve_forever()' "web-$i" "127.0.10.$i" &
  PIDS+=($!)
done

echo "+ create a ReplicationController's pods (status.podIP = the backends above)"
$KS create -f - <<YAML
apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 3
  selector: {app: web}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: demo, ports: [{containerPort: 8080}]}]}
YAML
for i in 1 2 3; do
  $KS create -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: web-$i, labels: {app: web}}
spec: {containers: [{name: web, image: demo, ports: [{containerPort: 8080}]}]}
status: {phase: Running, podIP: 127.0.10.$i}
YAML
done
echo "+ kubesvc expose rc web --port 8080"
$KS expose rc web --port 8080
$KS get svc,ep web

echo "+ kubesvc up"
UP_OUT=$($KS up --healthz-bind-address 127.0.0.1:0 --metrics-bind-address 127.0.0.1:0 --dns-listen 127.0.0.1:0 --apiserver-address 127.0.0.1:0 --ingress-http-address 127.0.0.1:0 --ingress-https-address 127.0.0.1:0)
echo "$UP_OUT"
HEALTHZ=$(echo "$UP_OUT" | sed -n 's/.*healthz=\([0-9.:]*\).*/\1/p' | head -1)
DNS_PORT=$(echo "$UP_OUT" | sed -n 's/.*udp=127\.0\.0\.1:\([0-9]*\).*/\1/p' | head -1)
IP=$($KS get svc web -o jsonpath='{.spec.clusterIP}')

# Wait until the proxy has applied the store up to revision $1 (its /healthz reports the revision it serves).
wait_synced() {
  for _ in $(seq 100); do
    rev=$(curl -s "http://$HEALTHZ/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("revision", 0))' 2>/dev/null || echo 0)
    [ "$rev" -ge "$1" ] && return 0
    sleep 0.02
  done
  echo "proxy did not reach revision $1" >&2; return 1
}

if command -v dig >/dev/null && [ -n "$DNS_PORT" ]; then
  echo "+ dig web.default.svc.cluster.local (the cluster DNS that up started)"
  dig +short -p "$DNS_PORT" @127.0.0.1 web.default.svc.cluster.local
fi

API_URL=$(echo "$UP_OUT" | sed -n 's/^apiserver: .* url=\(https:[^ ]*\).*/\1/p')
PKI="$KUBESVC_STORE.d/pki"
echo "+ the API server wants credentials: none gives 401, the store's token (or client certificate) is let in"
curl -s -o /dev/null -w '%{http_code} without credentials\n' --cacert "$PKI/ca.crt" "$API_URL/api/v1/namespaces"
curl -s -o /dev/null -w '%{http_code} with the token\n' --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(cat "$PKI/token")" "$API_URL/api/v1/namespaces"
if command -v kubectl >/dev/null; then
  echo "+ the real kubectl, with the kubeconfig that up wrote (HTTPS, the admin client certificate embedded)"
  kubectl --kubeconfig "$KUBESVC_STORE.d/kubeconfig" --cache-dir "$DIR/kube-cache" get svc,ep web -o wide
fi

echo "+ six requests to $IP:8080 (round robin)"
for _ in 1 2 3 4 5 6; do curl -s "http://$IP:8080/"; done

echo "+ sessionAffinity: ClientIP"
$KS get svc web -o json | python3 -c 'import json,sys; s=json.load(sys.stdin); s["spec"]["sessionAffinity"]="ClientIP"; print(json.dumps(s))' | $KS apply -f - >/dev/null
wait_synced "$($KS get svc web -o jsonpath='{.metadata.resourceVersion}')"
for _ in 1 2 3 4 5 6; do curl -s "http://$IP:8080/"; done

$KS status
echo "+ kubesvc down"
$KS down
