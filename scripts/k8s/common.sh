# Sourced by the scripts beside it: settings, tool checks, small helpers.
# shellcheck shell=bash

# need_bash MAJOR.MINOR VERSION: exit 3 with a clear message if VERSION (BASH_VERSION)
# is older. The scripts need bash 4.4 (associative arrays in the toolchain, empty
# arrays under set -u); macOS ships bash 3.2. First thing, before anything 3.2 misreads.
need_bash() {
  local want_major=${1%%.*} want_minor=${1#*.} major=${2%%.*} minor
  minor=${2#*.}; minor=${minor%%[!0-9]*}
  if [ "$major" -lt "$want_major" ] || { [ "$major" -eq "$want_major" ] && [ "${minor:-0}" -lt "$want_minor" ]; }; then
    echo "$(basename "$0"): needs bash >= $1, this is bash $2" >&2
    echo "  macOS: brew install bash (it goes first on PATH; the scripts run 'env bash')" >&2
    exit 3
  fi
}
need_bash 4.4 "$BASH_VERSION"
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=${CLUSTER:-scalezero}
NAMESPACE=${NAMESPACE:-functions}
RELEASE=${RELEASE:-scalezero}
MONITORING_NS=${MONITORING_NS:-monitoring}
REGISTRY=${REGISTRY:-dev.local}
TAG=${TAG:-0.1.0}
DOCKER=${DOCKER:-docker}
PY=${PY:-$REPO/.venv/bin/python}
# Host port where kind publishes the ingress's NodePort (k8s/kind-cluster.yaml has 80).
HOST_PORT=${HOST_PORT:-80}
# shellcheck source=../../k8s/knative/versions.env
. "$REPO/k8s/knative/versions.env"

# _how TOOL: where to get it.
_how() {
  case $1 in
    kind) echo "https://kind.sigs.k8s.io/docs/user/quick-start/#installation (offline: make toolchain)" ;;
    kubectl) echo "https://kubernetes.io/docs/tasks/tools/ (offline: make toolchain)" ;;
    helm) echo "https://helm.sh/docs/intro/install/ (offline: make toolchain)" ;;
    docker) echo "https://docs.docker.com/engine/install/" ;;
    curl) echo "apt-get install curl (or your package manager)" ;;
    *) echo "install it and retry" ;;
  esac
}

# need TOOL...: exit 3 naming every missing tool and where to get it.
need() {
  local missing=()
  for tool in "$@"; do
    command -v "${tool%% *}" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "$(basename "$0"): missing ${missing[*]}" >&2
    for tool in "${missing[@]}"; do
      echo "  $tool: $(_how "$tool")" >&2
    done
    exit 3
  fi
}

# need_venv: the project's Python (make venv) for chart-values and load.
need_venv() {
  if [ ! -x "$PY" ]; then
    echo "$(basename "$0"): missing $PY (run: make venv)" >&2
    exit 3
  fi
}

step() { printf '==> %s\n' "$*"; }

# The function images `make images` builds (yolo-ultralytics only with ALL=1).
function_names() {
  for d in "$REPO"/functions/*/Dockerfile; do
    name=$(basename "$(dirname "$d")")
    if [ "$name" = yolo-ultralytics ] && [ "${ALL:-0}" != 1 ]; then continue; fi
    echo "$name"
  done
}

# kind_load IMAGE: load a local image into every node of the cluster. With Docker's
# containerd image store (the default from Docker 29) `kind load docker-image`
# fails on multi-platform images ("content digest ... not found"); then send it
# through `docker save` and `kind load image-archive`, which reads a plain tar.
# KIND_NODES (comma-separated node names) loads it only there, e.g. the workers.
kind_load() {
  local nodes=()
  [ -z "${KIND_NODES:-}" ] || nodes=(--nodes "$KIND_NODES")
  if kind load docker-image "$1" --name "$CLUSTER" "${nodes[@]}"; then return 0; fi
  echo "    kind load docker-image $1 failed; retrying with docker save + kind load image-archive" >&2
  local dir
  dir=$(mktemp -d)
  if "$DOCKER" save "$1" -o "$dir/image.tar" && kind load image-archive "$dir/image.tar" --name "$CLUSTER" "${nodes[@]}"; then
    rm -rf "$dir"; return 0
  fi
  rm -rf "$dir"
  echo "$(basename "$0"): could not load $1 into kind cluster $CLUSTER" >&2
  return 1
}

# kind_config FILE PORT: FILE with its hostPort set to PORT (80 may be taken or need root).
kind_config() {
  case $2 in
    ''|*[!0-9]*) echo "$(basename "$0"): HOST_PORT = '$2', must be a port number" >&2; exit 3 ;;
  esac
  if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
    echo "$(basename "$0"): HOST_PORT = $2, must be in [1, 65535]" >&2; exit 3
  fi
  sed -E "s/^( *hostPort:) [0-9]+\$/\1 $2/" "$1"
}

# linger_for FUNCTION: seconds `scalezero load` must keep watching after the last
# request until Knative has taken FUNCTION to zero: its stable window (annotation,
# else the cluster's config-autoscaler) plus grace, plus a margin (scalezero.chart.linger_s).
linger_for() {
  local cfg
  cfg=$(kubectl get configmap config-autoscaler -n knative-serving -o jsonpath='{.data}')
  "$PY" -c 'import json, os, sys
from scalezero.chart import cluster_env, linger_s
from scalezero.stack import load_stack
stack = load_stack(sys.argv[1], env=cluster_env(dict(os.environ)))
print(int(linger_s(stack.functions[sys.argv[2]], json.loads(sys.argv[3] or "{}")) + 0.5))' \
    "${STACK:-$REPO/stack.yml}" "$1" "$cfg"
}

# port_forward [-n NAMESPACE] SERVICE LOCAL_PORT REMOTE_PORT [READY_PATH]: kubectl
# port-forward in the background until READY_PATH (/healthz) answers (20 s at most);
# sets PF_PID (stop it with: kill "$PF_PID").
port_forward() {
  local ns=$NAMESPACE
  if [ "$1" = -n ]; then ns=$2; shift 2; fi
  kubectl port-forward -n "$ns" "svc/$1" "$2:$3" >/dev/null 2>&1 &
  PF_PID=$!
  local _
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$2${4:-/healthz}" >/dev/null 2>&1 && return 0
    kill -0 "$PF_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "$(basename "$0"): port-forward to $ns/svc/$1 did not answer ${4:-/healthz} on 127.0.0.1:$2" >&2
  return 1
}
