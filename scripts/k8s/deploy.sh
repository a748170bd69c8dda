#!/usr/bin/env bash
# make deploy: Helm values from stack.yml (scalezero chart-values: the in-cluster
# gateway URL and data volume for this release), then install or upgrade the chart.
# Monitors, rules and the dashboard are on where the cluster has the Prometheus
# Operator's CRDs (make cluster installs them); without them Helm would refuse the
# objects, so they are left off and the reason printed. EXTRA_VALUES: more -f files.
. "$(dirname "$0")/common.sh"
[ "${VALUES_ONLY:-0}" = 1 ] || need kubectl helm
need_venv
values="${VALUES_OUT:-$REPO/out/functions-values.yaml}"
only=()
for name in $(function_names); do only+=(--function "$name"); done
REGISTRY=$REGISTRY "$PY" -m scalezero chart-values -f "${STACK:-$REPO/stack.yml}" -o "$values" \
  --release "$RELEASE" --namespace "$NAMESPACE" "${only[@]}"
[ "${VALUES_ONLY:-0}" = 1 ] && exit 0
monitoring=()
if kubectl get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
  monitoring=(--set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true
              --set metrics.prometheusRule.enabled=true --set metrics.dashboard.enabled=true)
else
  echo "deploy.sh: no Prometheus Operator CRDs in the cluster: ServiceMonitor, PodMonitor," \
       "PrometheusRule and the dashboard ConfigMap stay off" >&2
fi
extra=()
for f in ${EXTRA_VALUES:-}; do extra+=(-f "$f"); done
helm upgrade --install "$RELEASE" "$REPO/charts/scalezero" -n "$NAMESPACE" --create-namespace \
  -f "$values" "${extra[@]}" \
  --set gateway.image.repository="$REGISTRY/scalezero-gateway" --set gateway.image.tag="$TAG" \
  "${monitoring[@]}" --wait --timeout "${HELM_TIMEOUT:-5m}"
kubectl get ksvc -n "$NAMESPACE"
