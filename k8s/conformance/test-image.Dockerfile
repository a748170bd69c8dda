# One of Knative's conformance test images (knative.dev/networking/test/test_images/NAME),
# a static binary (CGO_ENABLED=0) on scratch, non-root as ko builds them.
# Built by scripts/k8s/ingress-conformance.sh with the binary NAME in the context.
FROM scratch
ARG NAME
COPY ${NAME} /ko-app/app
USER 65532:65532
ENTRYPOINT ["/ko-app/app"]
