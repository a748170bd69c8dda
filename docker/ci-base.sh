#!/usr/bin/env bash
# Build the offline CI base image: Debian bookworm (debootstrap, no registry
# needed) + python3 + python3-venv + this machine's CA bundle for pip.
#
# Only for machines that cannot pull python:3.11-slim (our CI). Users never
# need it: the function Dockerfiles default to the public Python image.
#   usage: docker/ci-base.sh [IMAGE]     (default scalezero/ci-base:bookworm)
# Reuses IMAGE when it already exists (FORCE=1 rebuilds).
set -euo pipefail

IMAGE=${1:-scalezero/ci-base:bookworm}
DOCKER=${DOCKER:-/usr/bin/docker}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

missing=()
for tool in "$DOCKER" debootstrap tar; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci-base: missing ${missing[*]} (apt-get install -y docker.io debootstrap)" >&2
  exit 1
fi
if [ "${FORCE:-0}" != 1 ] && "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "ci-base: $IMAGE already exists (FORCE=1 rebuilds)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "ci-base: debootstrap bookworm (about 35 s)"
debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# debootstrap leaves its .debs behind: about 100 MB nobody needs in an image.
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
  "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/locale/*
tar -C "$work/rootfs" -c . | "$DOCKER" import - "$IMAGE-rootfs" >/dev/null

# Second stage: Python from Debian, and the CA bundle so pip works behind the
# machine's TLS-intercepting proxy (CI only: user images never carry it).
cp "$CA_BUNDLE" "$work/ca-certificates.crt"
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $IMAGE-rootfs
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
DOCKERFILE
"$DOCKER" build -q -t "$IMAGE" "$work" >/dev/null
"$DOCKER" rmi "$IMAGE-rootfs" >/dev/null 2>&1 || true
echo "ci-base: built $IMAGE ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE") bytes)"
