#!/usr/bin/env bash
# make e2e-kind: cluster, images, chart, then check scaling from zero and back on
# a real cluster: functions start at 0 pods, a request through Kourier and one
# through the gateway are answered, and the pods go back to 0 after the grace period.
. "$(dirname "$0")/common.sh"
need kind kubectl helm docker curl
here=$(dirname "$0")
"$here/cluster.sh"
"$here/images.sh"
"$here/deploy.sh"

pods() { kubectl get pods -n "$NAMESPACE" -l "serving.knative.dev/service=$1" --no-headers 2>/dev/null | grep -c Running || true; }
wait_pods() {  # wait_pods FUNCTION COUNT SECONDS
  for _ in $(seq "$3"); do [ "$(pods "$1")" = "$2" ] && return 0; sleep 1; done
  echo "e2e: $1 has $(pods "$1") running pods, expected $2 within $3 s" >&2; return 1
}

kubectl wait ksvc --all -n "$NAMESPACE" --for=condition=Ready --timeout=5m
step "autoscale starts at zero pods"
wait_pods autoscale 0 120

step "cold start through Kourier"
t0=$(date +%s.%N)
curl -sf "http://autoscale.$NAMESPACE.127.0.0.1.sslip.io/?sleep_ms=10" >/dev/null
echo "    first response after $(echo "$(date +%s.%N) - $t0" | bc) s (scale from zero)"
wait_pods autoscale 1 30

step "through the gateway (OpenFaaS API)"
kubectl port-forward -n "$NAMESPACE" "svc/$RELEASE-gateway" 18080:8080 >/dev/null &
pf=$!
trap 'kill $pf 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:18080/function/autoscale?sleep_ms=10"; echo

step "back to zero after the stable window and grace period"
wait_pods autoscale 0 240
step "e2e-kind passed"
