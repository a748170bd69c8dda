//go:build tools

// The test images the suite's pods run (built with CGO_ENABLED=0 onto FROM scratch
// by scripts/k8s/ingress-conformance.sh); imported here so go.mod pins them.
package conformance

import (
	_ "knative.dev/networking/test/test_images/grpc-ping"
	_ "knative.dev/networking/test/test_images/httpproxy"
	_ "knative.dev/networking/test/test_images/retry"
	_ "knative.dev/networking/test/test_images/runtime"
	_ "knative.dev/networking/test/test_images/timeout"
	_ "knative.dev/networking/test/test_images/wsserver"
)
