# Sourced by the scripts that run an offline kind cluster from `make toolchain`'s
# cache (cluster-smoke.sh, ingress-conformance.sh): the cache and the docker shim
# kind needs, timings, bounded waits, the cluster, the gateway image and the
# scalezero ingress, and a cleanup that deletes the cluster, failure included.
# The script sets CLUSTER first and may define diagnose() (run on failure).
# shellcheck shell=bash
DOCKER=${DOCKER:-/usr/bin/docker}
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROOT=$REPO
# shellcheck source=../../k8s/versions.env
. "$ROOT/k8s/versions.env"
CACHE=${SCALEZERO_K8S_CACHE:-$HOME/.cache/scalezero/k8s}
PATH=$CACHE/bin:$PATH need kind kubectl docker
NODE_IMAGE=${NODE_IMAGE:-scalezero/kind-node:v$KUBERNETES_VERSION}
BASE=${BASE_IMAGE:-scalezero/ci-base:bookworm}
KN_YAML=$CACHE/knative-v$KNATIVE_SERVING_VERSION
OFF=$ROOT/k8s/offline
SCRIPT=$(basename "$0" .sh)
WORK=$(mktemp -d)
export KUBECONFIG=$WORK/kubeconfig
# kind runs `docker`: k8s/offline/docker-shim.sh over Debian's client (see there).
mkdir -p "$WORK/bin" && ln -s "$OFF/docker-shim.sh" "$WORK/bin/docker"
export PATH=$WORK/bin:$CACHE/bin:$PATH REAL_DOCKER=$DOCKER
T0=$SECONDS
declare -A TIMES
mark() { TIMES[$1]=$((SECONDS - $2)); echo "==> $1: ${TIMES[$1]} s"; }
say() { echo "==> $*"; }

# wait_for WHAT SECONDS CMD...: poll CMD every 2 s until it succeeds or time runs out.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  say "waiting for $what (up to $limit s)"
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "$SCRIPT: timed out after $limit s waiting for $what" >&2
      return 1
    fi
    sleep 2
  done
}

# finish: the EXIT trap. Diagnostics on failure, then the cluster is deleted
# (KEEP=1 keeps it), then PASS or FAIL.
finish() {
  local rc=$?
  if [ $rc != 0 ] && declare -F diagnose >/dev/null; then diagnose || true; fi
  if [ "${KEEP:-0}" = 1 ]; then
    say "KEEP=1: cluster $CLUSTER left running (KUBECONFIG=$KUBECONFIG)"
  else
    say "deleting cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  [ $rc = 0 ] && say "$SCRIPT: PASS" || say "$SCRIPT: FAIL (exit $rc)"
  exit $rc
}

# need_toolchain: the cache `make toolchain` fills (kind, kubectl, the node image).
need_toolchain() {
  local f
  for f in "$CACHE/bin/kind" "$CACHE/bin/kubectl" "$KN_YAML/serving-crds.yaml"; do
    [ -e "$f" ] || { echo "$SCRIPT: no $f (run: make toolchain)" >&2; exit 3; }
  done
  "$DOCKER" image inspect "$NODE_IMAGE" >/dev/null 2>&1 \
    || { echo "$SCRIPT: no image $NODE_IMAGE (run: make toolchain)" >&2; exit 3; }
}

# build_gateway_image TAG: the scalezero gateway image (the ingress runs it) on the
# offline base; sets GW_IMAGE. The tag names the cluster too: two checkouts that
# run at once must not load each other's gateway.
build_gateway_image() {
  GW_IMAGE=dev.local/scalezero-gateway:$1-$CLUSTER
  "$ROOT/docker/ci-base.sh" "$BASE"
  say "building $GW_IMAGE on $BASE"
  "$DOCKER" build -q --build-arg "BASE_IMAGE=$BASE" -f "$ROOT/docker/gateway.Dockerfile" -t "$GW_IMAGE" "$ROOT" >/dev/null
}

# create_cluster WORKERS [HOST_PORT]: kind create cluster $CLUSTER (1 control plane
# + WORKERS) from the node image; HOST_PORT publishes the ingress's NodePort 31080
# on 127.0.0.1. Waits for the nodes and CoreDNS.
create_cluster() {
  local i
  { printf 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n'
    [ -z "${2:-}" ] || printf '    extraPortMappings:\n      - {containerPort: 31080, hostPort: %s, listenAddress: 127.0.0.1, protocol: TCP}\n' "$2"
    for ((i = 0; i < $1; i++)); do printf '  - role: worker\n'; done
  } >"$WORK/kind.yaml"
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  say "kind create cluster --name $CLUSTER --image $NODE_IMAGE (1 control plane, $1 workers${2:+, host port $2})"
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --config "$WORK/kind.yaml" \
    --kubeconfig "$KUBECONFIG" --wait 240s
  wait_for "$(($1 + 1)) nodes Ready" 180 kubectl wait --for=condition=Ready node --all --timeout=5s
  wait_for "CoreDNS available" 180 kubectl wait -n kube-system --for=condition=Available deployment/coredns --timeout=5s
}

# load_images IMAGE...: into every node (common.sh's kind_load).
load_images() {
  local img
  for img in "$@"; do kind_load "$img"; done
}

# install_ingress: the scalezero ingress (k8s/offline/scalezero-ingress.yaml) with GW_IMAGE.
install_ingress() {
  sed "s#image: IMAGE#image: $GW_IMAGE#" "$OFF/scalezero-ingress.yaml" | kubectl apply -f - >/dev/null
  wait_for "the scalezero ingress available" 180 \
    kubectl wait -n knative-serving --for=condition=Available deployment/scalezero-ingress --timeout=5s
}
