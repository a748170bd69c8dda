// Validate Knative Services (YAML documents on stdin) with Knative Serving 1.18's own
// webhook validation: v1.Service SetDefaults + Validate (knative.dev/serving v0.45.0), with
// the default config-features and config-defaults and the project's config-autoscaler.
// Exit 1 if any Service is invalid; warnings are printed. Offline from the module cache:
//
//	cd scripts/k8s/knative-validate && GOFLAGS=-mod=mod go build -o /tmp/knative-validate .
//	helm template sz charts/scalezero -f out/functions-values.yaml | /tmp/knative-validate
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/config"
	v1 "knative.dev/serving/pkg/apis/serving/v1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"sigs.k8s.io/yaml"
)

func main() {
	data, _ := io.ReadAll(os.Stdin)
	bad := 0
	for _, doc := range strings.Split(string(data), "\n---") {
		if !strings.Contains(doc, "serving.knative.dev/v1") || !strings.Contains(doc, "kind: Service") {
			continue
		}
		var svc v1.Service
		if err := yaml.UnmarshalStrict([]byte(doc), &svc); err != nil {
			fmt.Printf("UNMARSHAL %v\n", err)
			bad++
			continue
		}
		// The project's config-autoscaler patch (k8s/knative/config-autoscaler.yaml); the rest default.
		as, err := asconfig.NewConfigFromMap(map[string]string{"enable-scale-to-zero": "true",
			"allow-zero-initial-scale": "true", "initial-scale": "0",
			"scale-to-zero-grace-period": "30s", "stable-window": "60s"})
		if err != nil {
			panic(err)
		}
		ctx := config.ToContext(context.Background(), &config.Config{Autoscaler: as})
		cfg := config.FromContextOrDefaults(ctx)
		ctx = config.ToContext(context.Background(), cfg)
		ctx = apis.WithinCreate(ctx)
		svc.SetDefaults(ctx)
		ferr := svc.Validate(ctx)
		if e := ferr.Filter(apis.ErrorLevel); e != nil {
			fmt.Printf("INVALID %s: %v\n", svc.Name, e)
			bad++
		} else if w := ferr.Filter(apis.WarningLevel); w != nil {
			fmt.Printf("valid %s (warning: %v)\n", svc.Name, w)
		} else {
			fmt.Printf("valid %s\n", svc.Name)
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}
