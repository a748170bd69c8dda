//go:build e2e

// Knative's own ingress conformance suite (knative.dev/networking/test/conformance/ingress),
// run against whichever ingress class -ingressClass names; scripts/k8s/ingress-conformance.sh
// runs it against the scalezero ingress on a kind cluster.
package conformance

import (
	"testing"

	"knative.dev/networking/test/conformance/ingress"
)

func TestIngressConformance(t *testing.T) {
	ingress.RunConformance(t)
}
