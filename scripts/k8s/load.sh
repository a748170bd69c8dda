#!/usr/bin/env bash
# make load: synthetic traffic through the in-cluster gateway (port-forwarded),
# with the usual report (runs/<timestamp>/). PROFILE and FUNCTION as for scalezero load.
# It keeps watching after the traffic until the function is back at zero: LINGER
# seconds, by default its stable window plus the grace period plus a margin, read
# from the cluster (a fixed 90 s ended before the 60 s window + 30 s grace had passed).
. "$(dirname "$0")/common.sh"
need kubectl curl
need_venv
port=${GATEWAY_PORT:-18080}
fn=${FUNCTION:-autoscale}
linger=${LINGER:-$(linger_for "$fn")}
port_forward "$RELEASE-gateway" "$port" 8080
trap 'kill "$PF_PID" 2>/dev/null' EXIT
echo "==> load on $fn through 127.0.0.1:$port; watching up to $linger s after it for 0 pods"
"$PY" -m scalezero load -g "http://127.0.0.1:$port" -f "$fn" \
  -p "${PROFILE:-spike:base=0,peak=20,at=5,length=20}" --path "${LOAD_PATH:-?sleep_ms=200}" \
  --linger "$linger" --until-zero "$@"
