#!/usr/bin/env bash
# make cluster: kind + Knative Serving + Kourier + kube-prometheus-stack.
. "$(dirname "$0")/common.sh"
need kind kubectl helm docker
K="$REPO/k8s"
SERVING=https://github.com/knative/serving/releases/download/knative-v$KNATIVE_SERVING_VERSION
KOURIER=https://github.com/knative-extensions/net-kourier/releases/download/knative-v$KOURIER_VERSION

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  step "kind cluster $CLUSTER exists, reusing it"
else
  step "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait=120s --config <(kind_config "$K/kind-cluster.yaml" "$HOST_PORT")
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

step "Knative Serving $KNATIVE_SERVING_VERSION"
kubectl apply -f "$SERVING/serving-crds.yaml"
kubectl wait --for=condition=Established --all crd --timeout=120s
kubectl apply -f "$SERVING/serving-core.yaml"
kubectl wait pod --timeout=10m --for=condition=Ready -l '!job-name' -n knative-serving

step "Kourier $KOURIER_VERSION"
kubectl apply -f "$KOURIER/kourier.yaml"
kubectl wait pod --timeout=10m --for=condition=Ready -l '!job-name' -n kourier-system
kubectl apply -f "$K/knative/kourier-nodeport.yaml"

step "Knative settings: scale to zero, zero initial scale, Prometheus metrics, sslip.io domain"
for cm in autoscaler observability network domain deployment features; do
  kubectl patch "configmap/config-$cm" -n knative-serving --type merge \
    --patch-file "$K/knative/config-$cm.yaml"
done

step "kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION (Prometheus + Grafana)"
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update prometheus-community >/dev/null
helm upgrade --install monitoring prometheus-community/kube-prometheus-stack \
  --version "$KUBE_PROMETHEUS_STACK_VERSION" -n "$MONITORING_NS" --create-namespace \
  -f "$K/monitoring/kube-prometheus-stack-values.yaml" --wait --timeout 10m
kubectl apply -f "$K/monitoring/knative-servicemonitors.yaml"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
step "cluster ready: next, make images deploy"
