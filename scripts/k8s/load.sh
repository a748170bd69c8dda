#!/usr/bin/env bash
# make load: synthetic traffic through the in-cluster gateway (port-forwarded),
# with the usual report (runs/<timestamp>/). PROFILE and FUNCTION as for scalezero load.
. "$(dirname "$0")/common.sh"
need kubectl
need_venv
port=${GATEWAY_PORT:-18080}
kubectl port-forward -n "$NAMESPACE" "svc/$RELEASE-gateway" "$port:8080" >/dev/null &
pf=$!
trap 'kill $pf 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
"$PY" -m scalezero load -g "http://127.0.0.1:$port" -f "${FUNCTION:-autoscale}" \
  -p "${PROFILE:-spike:base=0,peak=20,at=5,length=20}" --path "${LOAD_PATH:-?sleep_ms=200}" \
  --linger 90 --until-zero "$@"
