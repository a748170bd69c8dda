#!/usr/bin/env bash
# make cluster-smoke: a real kind cluster, offline (1 control plane + 2 workers,
# from the node image `make toolchain` built), Knative Serving with the scalezero
# ingress as its network layer and the project's config patches, the autoscale
# function as a Knative Service at zero, one request from the host through the
# ingress (0 -> 1 pod), then back to 0. Prints the timings; deletes the cluster
# on exit, failure included. Every wait is bounded and dumps what it waited on.
#   usage: scripts/k8s/cluster-smoke.sh
#   HOST_PORT (default 38080): the host port (127.0.0.1) kind publishes the ingress on
#   CLUSTER (default scalezero-smoke), KEEP=1 keeps the cluster for a look
set -euo pipefail
CLUSTER=${CLUSTER:-scalezero-smoke}
HOST_PORT=${HOST_PORT:-38080}
# shellcheck source=offline.sh
. "$(dirname "$0")/offline.sh"
FN_IMAGE=dev.local/autoscale:smoke

diagnose() {
  echo "---- diagnostics ----"
  kubectl get nodes -o wide 2>&1 || true
  kubectl get pods -A -o wide 2>&1 || true
  kubectl get ksvc,revision,route,ingresses.networking.internal.knative.dev,sks -A 2>&1 || true
  kubectl describe ksvc -n smoke 2>&1 | tail -40 || true
  kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -30 || true
  local pod
  for pod in $(kubectl get pods -A --no-headers 2>/dev/null | awk '$4 != "Running" || $3 !~ /^([0-9]+)\/\1$/ {print $1 "/" $2}' | head -8); do
    echo "-- describe $pod"; kubectl describe pod -n "${pod%%/*}" "${pod#*/}" 2>&1 | tail -25
    echo "-- logs $pod"; kubectl logs -n "${pod%%/*}" "${pod#*/}" --all-containers --tail=30 2>&1 || true
  done
  for d in controller activator autoscaler webhook scalezero-ingress; do
    echo "-- logs knative-serving/$d"; kubectl logs -n knative-serving "deploy/$d" --tail=20 2>&1 || true
  done
}

pods() { kubectl get pods -n smoke -l serving.knative.dev/service=autoscale --no-headers 2>/dev/null | grep -c . || true; }
no_pods() { [ "$(kubectl get pods -n smoke -l serving.knative.dev/service=autoscale --no-headers 2>/dev/null | grep -c .)" = 0 ]; }
deployments_available() { kubectl wait -n "$1" --for=condition=Available deployment --all --timeout=5s; }

# ---- 1. toolchain (up to date after `make toolchain`) ------------------------
t=$SECONDS
"$ROOT/scripts/k8s/toolchain.sh"
mark toolchain "$t"
[ -s "$KN_YAML/serving-core.yaml" ] || { echo "cluster-smoke: no $KN_YAML/serving-core.yaml (make toolchain)" >&2; exit 1; }

# ---- 2. images the smoke runs: the function and the ingress (the gateway image)
t=$SECONDS
build_gateway_image smoke
say "building $FN_IMAGE on $BASE"
"$DOCKER" build -q --build-arg "BASE_IMAGE=$BASE" -f "$ROOT/functions/autoscale/Dockerfile" -t "$FN_IMAGE" "$ROOT" >/dev/null
mark images "$t"

# ---- 3. the cluster ---------------------------------------------------------
trap finish EXIT
t=$SECONDS
create_cluster 2 "$HOST_PORT"
mark "cluster create" "$t"
kubectl get nodes -o wide

t=$SECONDS
load_images "$FN_IMAGE" "$GW_IMAGE"
mark "kind load" "$t"

# ---- 4. Knative Serving + the scalezero ingress -----------------------------
t=$SECONDS
kubectl apply -f "$KN_YAML/serving-crds.yaml" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply -f "$KN_YAML/serving-core.yaml" >/dev/null
wait_for "Knative Serving's deployments available" 300 deployments_available knative-serving
# Knative's webhook validates these patches; its Deployment is Available a moment
# before its Service answers ("connect: connection refused" once on a loaded
# machine), so each patch is retried until the webhook takes it.
patch_cm() { kubectl patch "configmap/$1" -n knative-serving --type merge --patch-file "$2"; }
for patch in "$ROOT/k8s/knative/config-autoscaler.yaml" "$OFF/config-autoscaler-smoke.yaml"; do
  wait_for "the webhook to accept $(basename "$patch")" 120 patch_cm config-autoscaler "$patch"
done
wait_for "the webhook to accept config-network.yaml" 120 patch_cm config-network "$OFF/config-network.yaml"
wait_for "the webhook to accept config-domain.yaml" 120 patch_cm config-domain "$OFF/config-domain.yaml"
install_ingress
mark "Knative ready" "$t"
kubectl get deploy -n knative-serving

# ---- 5. the function at zero, one request, back to zero ---------------------
kubectl create namespace smoke >/dev/null
sed "s#image: IMAGE#image: $FN_IMAGE#" "$OFF/smoke-ksvc.yaml" | kubectl apply -f - >/dev/null
wait_for "ksvc autoscale Ready" 300 kubectl wait -n smoke --for=condition=Ready ksvc/autoscale --timeout=5s
kubectl get ksvc -n smoke
wait_for "the revision at 0 pods (initial scale 0)" 120 no_pods
say "pods before the request: $(pods)"

url=http://127.0.0.1:$HOST_PORT/?sleep_ms=10
host=autoscale.smoke.example.com
say "GET $url  Host: $host"
t=$SECONDS
code=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 240 -H "Host: $host" "$url" || true)
mark "first request at zero" "$t"
echo "HTTP $code: $(head -c 300 "$WORK/body" 2>/dev/null)"
[ "$code" = 200 ] || { echo "cluster-smoke: expected 200 from the function at zero, got $code" >&2; exit 1; }
after=$(pods)
say "pods after the request: $after"
[ "$after" -ge 1 ] || { echo "cluster-smoke: a 200 came back but no pod of the revision exists" >&2; exit 1; }

t=$SECONDS
wait_for "the revision back at 0 pods" 300 no_pods
mark "back at zero" "$t"
say "pods now: $(pods)"

echo "== timings (s): toolchain ${TIMES[toolchain]}, images ${TIMES[images]}, cluster create ${TIMES[cluster create]}," \
  "kind load ${TIMES[kind load]}, Knative ready ${TIMES[Knative ready]}, first request at zero ${TIMES[first request at zero]}," \
  "back at zero ${TIMES[back at zero]}; total $((SECONDS - T0))"
