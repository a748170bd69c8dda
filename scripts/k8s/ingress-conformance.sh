#!/usr/bin/env bash
# make ingress-conformance: Knative's own ingress conformance suite
# (knative.dev/networking/test/conformance/ingress, pinned in k8s/conformance/go.mod)
# against the scalezero ingress on an offline kind cluster. The cluster holds only
# what the suite needs: the Ingress CRD (from the same networking module) and the
# scalezero ingress; the suite creates its own pods, Services and Ingresses.
#
#   1. builds the suite's test images from their Go sources (CGO_ENABLED=0, on
#      scratch: k8s/conformance/test-image.Dockerfile) and the test binary
#      (go test -c -tags=e2e), offline from the Go module proxy;
#   2. kind cluster (1 node, `make toolchain`'s node image), images kind-loaded;
#   3. runs the suite (stable, beta and alpha tests) with the scalezero ingress class,
#      dialing the ingress's NodePort on the node's address (-ingressendpoint);
#   4. prints passed / skipped / failed by test name; deletes the cluster, failure included.
#
#   usage: scripts/k8s/ingress-conformance.sh
#   CLUSTER (default scalezero-conformance); KEEP=1 keeps the cluster
#   SKIP_TESTS (default basics/http2,grpc,grpc/split: HTTP/2, which the ingress lacks;
#     empty runs everything), RUN (a -test.run pattern), PARALLEL (default 6)
set -euo pipefail
CLUSTER=${CLUSTER:-scalezero-conformance}
# shellcheck source=offline.sh
. "$(dirname "$0")/offline.sh"
need go
MOD=$ROOT/k8s/conformance
INGRESS_CLASS=scalezero.ingress.networking.knative.dev
IMAGE_REPO=dev.local/knative-test
IMAGE_TAG=conformance
TEST_IMAGES="grpc-ping httpproxy retry runtime timeout wsserver"
SKIP_TESTS=${SKIP_TESTS-basics/http2,grpc,grpc/split}
# go.sum (committed) holds every module's hash. The checksum database answered for
# these two knative.dev pseudo-versions, but 404s for others (the toolchain saw it):
# GONOSUMDB keeps `go` from needing it for knative.dev.
export GONOSUMDB=knative.dev/* CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"

diagnose() {
  echo "---- diagnostics ----"
  kubectl get nodes,pods -A -o wide 2>&1 | tail -40 || true
  kubectl get ingresses.networking.internal.knative.dev -A 2>&1 | tail -20 || true
  kubectl logs -n knative-serving deploy/scalezero-ingress --tail=40 2>&1 || true
}

# summary LOG: one line per top-level test of the suite (`go test -v` indents a
# subtest's result by four spaces per level), then the counts.
summary() {
  echo "== ingress conformance summary (class $INGRESS_CLASS, knative.dev/networking $NETWORKING_VERSION)"
  grep -E '^    --- (PASS|SKIP|FAIL): TestIngressConformance/' "$1" \
    | sed -E 's/^    --- ([A-Z]+): TestIngressConformance\/(.*) \(([0-9.]+s)\)$/\1 \2 \3/' | sort -k2 \
    | awk '{printf "  %-4s %-30s %s\n", $1, $2, $3; n[$1]++}
           END {printf "== %d passed, %d skipped, %d failed\n", n["PASS"], n["SKIP"], n["FAIL"]}'
  grep -E '^        +--- FAIL: ' "$1" | sed -E 's/^ *--- FAIL: TestIngressConformance\/(.*) \(.*/     failed subtest: \1/' || true
}

# ---- 1. test images and the test binary -----------------------------------------
need_toolchain
t=$SECONDS
NETWORKING_VERSION=$(cd "$MOD" && go list -m -f '{{.Version}}' knative.dev/networking)
NETWORKING_DIR=$(cd "$MOD" && go list -m -f '{{.Dir}}' knative.dev/networking)
say "building the test images ($TEST_IMAGES) and the suite, knative.dev/networking $NETWORKING_VERSION"
mkdir -p "$WORK/images"
(cd "$MOD" && go build -ldflags "-s -w" -o "$WORK/images/" knative.dev/networking/test/test_images/...)
(cd "$MOD" && go test -c -tags=e2e -o "$WORK/ingress-conformance.test" .)
images=()
for name in $TEST_IMAGES; do
  images+=("$IMAGE_REPO/$name:$IMAGE_TAG")
  "$DOCKER" build -q --build-arg "NAME=$name" -f "$MOD/test-image.Dockerfile" -t "$IMAGE_REPO/$name:$IMAGE_TAG" "$WORK/images" >/dev/null
done
build_gateway_image conformance
mark "images and suite" "$t"

# ---- 2. the cluster: the Ingress CRD and the scalezero ingress ------------------
trap finish EXIT
t=$SECONDS
create_cluster 0
mark "cluster create" "$t"
t=$SECONDS
load_images "$GW_IMAGE" "${images[@]}"
mark "kind load" "$t"
t=$SECONDS
kubectl apply -f "$NETWORKING_DIR/config/ingress.yaml" >/dev/null
kubectl wait --for=condition=Established crd/ingresses.networking.internal.knative.dev --timeout=60s >/dev/null
kubectl create namespace knative-serving >/dev/null
kubectl create namespace serving-tests >/dev/null  # the suite's namespace (test.ServingNamespace)
install_ingress
NODE_IP=$("$DOCKER" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$CLUSTER-control-plane" | awk '{print $1}')
wait_for "the ingress's NodePort on the node, http://$NODE_IP:31080/healthz" 60 curl -sf "http://$NODE_IP:31080/healthz"
mark "ingress ready" "$t"

# ---- 3. the suite ---------------------------------------------------------------
t=$SECONDS
say "running the suite: -ingressClass=$INGRESS_CLASS -ingressendpoint=$NODE_IP -skip-tests=$SKIP_TESTS"
set +e
(cd "$WORK" && ./ingress-conformance.test -test.v -test.timeout 30m -test.parallel "${PARALLEL:-6}" \
  ${RUN:+-test.run "$RUN"} -kubeconfig "$KUBECONFIG" -ingressClass "$INGRESS_CLASS" \
  -ingressendpoint "$NODE_IP" -dockerrepo "$IMAGE_REPO" -tag "$IMAGE_TAG" \
  -enable-beta -enable-alpha -skip-tests "$SKIP_TESTS") 2>&1 | tee "$WORK/suite.log" \
  | grep --line-buffered -E '^    --- (PASS|SKIP|FAIL): '  # Go prints these once the parallel tests end
rc=${PIPESTATUS[0]}
set -e
mark suite "$t"
[ -z "${LOG:-}" ] || cp "$WORK/suite.log" "$LOG"
say "errors the suite logged (the first 60; LOG=FILE keeps the whole log):"
grep -E '\.go:[0-9]+: .*([Ee]rror|wanted|unexpected|[Ff]ail)|^panic|^--- FAIL' "$WORK/suite.log" | head -60 || true
summary "$WORK/suite.log"
echo "== timings (s): images and suite ${TIMES[images and suite]}, cluster create ${TIMES[cluster create]}," \
  "kind load ${TIMES[kind load]}, ingress ready ${TIMES[ingress ready]}, suite ${TIMES[suite]}; total $((SECONDS - T0))"
[ "$rc" = 0 ] || { tail -20 "$WORK/suite.log"; echo "ingress-conformance: the suite exited $rc" >&2; exit 1; }
