# Sourced by the scripts beside it: settings, tool checks, small helpers.
# shellcheck shell=bash
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
# shellcheck source=../../k8s/knative/versions.env
. "$REPO/k8s/knative/versions.env"

declare -A _HOW=(
  [kind]="https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  [kubectl]="https://kubernetes.io/docs/tasks/tools/"
  [helm]="https://helm.sh/docs/intro/install/"
  [docker]="https://docs.docker.com/engine/install/"
)

# need TOOL...: exit 3 naming every missing tool and where to get it.
need() {
  local missing=()
  for tool in "$@"; do
    command -v "${tool%% *}" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "$(basename "$0"): missing ${missing[*]}" >&2
    for tool in "${missing[@]}"; do
      echo "  $tool: ${_HOW[$tool]:-install it and retry}" >&2
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
