#!/usr/bin/env bash
# make dashboard: Grafana on http://127.0.0.1:3000 (admin / scalezero); Ctrl-C stops.
. "$(dirname "$0")/common.sh"
need kubectl
echo "Grafana: http://127.0.0.1:${GRAFANA_PORT:-3000}  user admin, password scalezero; dashboard \"scalezero\""
exec kubectl port-forward -n "$MONITORING_NS" svc/monitoring-grafana "${GRAFANA_PORT:-3000}:80"
