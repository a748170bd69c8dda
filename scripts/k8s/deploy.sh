#!/usr/bin/env bash
# make deploy: Helm values from stack.yml (scalezero chart-values), then install
# or upgrade the chart with monitors, rules and the dashboard on.
. "$(dirname "$0")/common.sh"
need kubectl helm
need_venv
values="$REPO/out/functions-values.yaml"
only=()
for name in $(function_names); do only+=(--function "$name"); done
REGISTRY=$REGISTRY "$PY" -m scalezero chart-values -f "${STACK:-$REPO/stack.yml}" -o "$values" "${only[@]}"
helm upgrade --install "$RELEASE" "$REPO/charts/scalezero" -n "$NAMESPACE" --create-namespace \
  -f "$values" \
  --set gateway.image.repository="$REGISTRY/scalezero-gateway" --set gateway.image.tag="$TAG" \
  --set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true \
  --set metrics.prometheusRule.enabled=true --set metrics.dashboard.enabled=true \
  --wait --timeout 5m
kubectl get ksvc -n "$NAMESPACE"
