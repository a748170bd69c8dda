# Prometheus for the e2e's cluster, without a registry: Debian's prometheus binary
# (the host's package, copied into the build context by scripts/k8s/e2e.sh) on the
# offline base image. Debian builds it without Kubernetes discovery, so the pod
# gets its targets from the monitor_sd.py sidecar over HTTP service discovery.
ARG BASE_IMAGE=scalezero/ci-base:bookworm
FROM ${BASE_IMAGE}
COPY prometheus /usr/bin/prometheus
USER 65534:65534
ENTRYPOINT ["/usr/bin/prometheus"]
