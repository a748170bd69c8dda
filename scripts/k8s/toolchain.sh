#!/usr/bin/env bash
# make toolchain: build, offline, every binary and image the CI cluster needs
# (kind, the Kubernetes server binaries, etcd, CoreDNS, the CNI plugins, crictl,
# helm, Knative Serving, the pause image, kind's base and node images) from the
# Go module proxy and Debian's packages. Versions: k8s/versions.env.
#
# Binaries go to a cache outside the checkout (SCALEZERO_K8S_CACHE, default
# ~/.cache/scalezero/k8s); images go to the local Docker engine, tagged with the
# exact names kubeadm and kind expect, so nothing is ever pulled. Each step keeps
# a stamp (its versions + the code of its step function): a second run rebuilds
# nothing and says "up to date" per step.
#   usage: scripts/k8s/toolchain.sh   (FORCE=1 rebuilds; ONLY="step ..." runs only those steps)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../k8s/versions.env
. "$ROOT/k8s/versions.env"
CACHE=${SCALEZERO_K8S_CACHE:-$HOME/.cache/scalezero/k8s}
DOCKER=${DOCKER:-/usr/bin/docker}
GO=${GO:-go}
JOBS=${GO_JOBS:-2}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" DOCKER_BUILDKIT=0
BIN=$CACHE/bin                                   # host tools: kind kubectl helm (faas-cli)
SERVER=$CACHE/kubernetes-v$KUBERNETES_VERSION    # kind's server tarball layout
SRV_BIN=$SERVER/kubernetes/server/bin
KNATIVE_BIN=$CACHE/knative-v$KNATIVE_SERVING_VERSION
KIND_MOD=$("$GO" env GOMODCACHE)/sigs.k8s.io/kind@v$KIND_VERSION
ROOTFS_IMAGE=scalezero/k8s-rootfs:$DEBIAN_SUITE
BASE_IMAGE=scalezero/kind-base:v$KIND_VERSION-$DEBIAN_SUITE
NODE_IMAGE=${NODE_IMAGE:-scalezero/kind-node:v$KUBERNETES_VERSION}
KNATIVE_REPO=dev.local/knative   # dev.local: Knative skips tag resolution for it
mkdir -p "$CACHE"/{bin,stamps,logs,src,ctx,docker-shim} "$SRV_BIN" "$KNATIVE_BIN"
# kind runs `docker` from PATH: make that k8s/offline/docker-shim.sh over Debian's
# client (the first one on this machine's PATH is another build that lacks
# features; the shim maps kind's --privileged onto the capabilities this machine has).
ln -sf "$ROOT/k8s/offline/docker-shim.sh" "$CACHE/docker-shim/docker"
export PATH=$CACHE/docker-shim:$PATH REAL_DOCKER=$(command -v "$DOCKER")

log() { echo "toolchain: $*"; }
die() { echo "toolchain: $*" >&2; exit 1; }

# step NAME FUNCTION CHECK [KEY...]: run FUNCTION unless NAME's stamp holds the
# same key and CHECK (a command) passes; print what is built and how long it took.
step() {
  local name=$1 fn=$2 check=$3; shift 3
  local key stamp=$CACHE/stamps/$name
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  key=$(printf '%s\n' "$*" "$(declare -f "$fn")" | sha256sum | cut -c1-16)
  if [ "${FORCE:-0}" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && eval "$check"; then
    log "$name up to date"
    return 0
  fi
  local t0=$SECONDS
  log "$name: building ($*)"
  "$fn"
  log "$name: built in $((SECONDS - t0)) s"
  echo "$key" >"$stamp"
}

# gorun NAME CMD...: a Go command with its output in logs/NAME.log; a module the
# proxy refuses becomes one line naming it (status 3), any other failure the log's tail.
gorun() {
  local name=$1; shift
  local logf=$CACHE/logs/$name.log
  if "$@" >"$logf" 2>&1; then return 0; fi
  local refused
  refused=$(grep -oE '[^ ]+@[^ :]+: (reading|verifying) [^ ]+: 403 Forbidden' "$logf" | head -1 || true)
  if [ -n "$refused" ] || grep -q 'This module version is not available' "$logf"; then
    log "the Go module proxy refuses ${refused%%: *} (403, \"This module version is not available\"; see $logf)"
    return 3
  fi
  tail -20 "$logf" >&2
  die "$name failed (full log: $logf)"
}

filesum() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
have_files() { local f; for f in "$@"; do [ -x "$f" ] || return 1; done; }
have_images() { "$DOCKER" image inspect "$@" >/dev/null 2>&1; }

# ---- Go binaries -------------------------------------------------------------

build_kind() { gorun kind env GOBIN="$BIN" "$GO" install -p "$JOBS" -ldflags "-s -w" "sigs.k8s.io/kind@v$KIND_VERSION"; }

k8s_ldflags() {
  local p flags="-s -w" minor
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $p.gitVersion=v$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    # No git checkout to read these from: a fixed, honest-looking placeholder.
    flags="$flags -X $p.gitTreeState=clean -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=2026-01-01T00:00:00Z"
  done
  echo "$flags"
}

# k8s.io/kubernetes is built as a dependency of a small module of our own: its
# go.mod replaces the k8s.io/* staging modules with ./staging paths that a module
# zip lacks, so every one is pinned here at the matching v0.x release instead.
build_kubernetes() {
  local dir=$CACHE/src/kubernetes-v$KUBERNETES_VERSION cmds=() c
  mkdir -p "$dir"
  gorun kubernetes-download "$GO" mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION"
  local upstream
  upstream=$("$GO" env GOMODCACHE)/k8s.io/kubernetes@v$KUBERNETES_VERSION/go.mod
  {
    printf 'module scalezero.local/k8sbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$KUBERNETES_VERSION"
    sed -n '/^replace (/,/^)/p' "$upstream" | awk -v v="v$KUBERNETES_STAGING_VERSION" '/=> \.\/staging/ {print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } >"$dir/go.mod"
  for c in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    cmds+=("k8s.io/kubernetes/cmd/$c")
  done
  { echo '//go:build tools'; echo; echo 'package k8sbuild'; echo; echo 'import ('
    printf '\t_ "%s"\n' "${cmds[@]}"; echo ')'; } >"$dir/tools.go"
  (cd "$dir" && gorun kubernetes-tidy env GOFLAGS=-mod=mod "$GO" mod tidy \
     && gorun kubernetes "$GO" build -p "$JOBS" -ldflags "$(k8s_ldflags)" -o "$SRV_BIN/" "${cmds[@]}")
  echo "v$KUBERNETES_VERSION" >"$SERVER/kubernetes/version"
  cp "$SRV_BIN/kubectl" "$BIN/kubectl"
}

# etcd's server module replaces its sibling modules with ../ paths: same fix.
build_etcd() {
  local dir=$CACHE/src/etcd-v$ETCD_VERSION m
  mkdir -p "$dir"
  { printf 'module scalezero.local/etcdbuild\n\ngo 1.23.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n\nreplace (\n' "$ETCD_VERSION"
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do printf '\tgo.etcd.io/etcd/%s => go.etcd.io/etcd/%s v%s\n' "$m" "$m" "$ETCD_VERSION"; done
    printf ')\n'; } >"$dir/go.mod"
  printf '//go:build tools\n\npackage etcdbuild\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$dir/tools.go"
  (cd "$dir" && gorun etcd-tidy env GOFLAGS=-mod=mod "$GO" mod tidy \
     && gorun etcd "$GO" build -p "$JOBS" -ldflags "-s -w" -o "$CACHE/src/etcd-bin" go.etcd.io/etcd/server/v3)
  mv "$CACHE/src/etcd-bin" "$SRV_BIN/etcd"
}

build_coredns() { gorun coredns env GOBIN="$SRV_BIN" "$GO" install -p "$JOBS" -ldflags "-s -w" "github.com/coredns/coredns@v$COREDNS_VERSION"; }

build_cni() {
  local m=github.com/containernetworking/plugins p
  mkdir -p "$CACHE/cni"
  for p in plugins/main/ptp plugins/main/bridge plugins/main/loopback plugins/ipam/host-local plugins/meta/portmap; do
    gorun cni env GOBIN="$CACHE/cni" "$GO" install -p "$JOBS" -ldflags "-s -w" "$m/$p@v$CNI_PLUGINS_VERSION"
  done
}

build_containerd() {
  local m=github.com/containerd/containerd/v2 c
  mkdir -p "$CACHE/containerd"
  for c in containerd ctr containerd-shim-runc-v2; do
    gorun containerd env GOBIN="$CACHE/containerd" "$GO" install -p "$JOBS" -tags "no_aufs no_zfs no_btrfs no_devmapper" \
      -ldflags "-s -w -X $m/version.Version=v$CONTAINERD_VERSION" "$m/cmd/$c@v$CONTAINERD_VERSION"
  done
}

build_crictl() { gorun crictl env GOBIN="$SRV_BIN" "$GO" install -p "$JOBS" -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@v$CRI_TOOLS_VERSION"; }

build_local_path() {
  gorun local-path env GOBIN="$SRV_BIN" "$GO" install -p "$JOBS" -ldflags "-s -w" \
    "github.com/rancher/local-path-provisioner@v$LOCAL_PATH_PROVISIONER_VERSION"
}

build_helm() {
  gorun helm env GOBIN="$BIN" "$GO" install -p "$JOBS" \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

# Knative Serving as a module of our own with serving's go.mod requirements and
# go.sum: `go install knative.dev/serving/cmd/...@v0.45.0` asks the checksum
# database about knative.dev pseudo-versions it does not know (404), while
# serving's own go.sum holds their hashes, so they are verified against that.
build_knative() {
  local dir=$CACHE/src/knative-v$KNATIVE_SERVING_VERSION up c pkgs=()
  mkdir -p "$dir"
  gorun knative-download "$GO" mod download "knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION"
  up=$("$GO" env GOMODCACHE)/knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION
  sed 's#^module knative.dev/serving$#module scalezero.local/knativebuild#' "$up/go.mod" >"$dir/go.mod"
  printf '\nrequire knative.dev/serving v%s\n' "$KNATIVE_SERVING_MODULE_VERSION" >>"$dir/go.mod"
  { cat "$up/go.sum"
    "$GO" mod download -json "knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION" \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); v=d["Version"]; print(d["Path"], v, d["Sum"]); print(d["Path"], v + "/go.mod", d["GoModSum"])'
  } >"$dir/go.sum"
  for c in controller webhook activator autoscaler queue; do pkgs+=("knative.dev/serving/cmd/$c"); done
  { echo '//go:build tools'; echo; echo 'package knativebuild'; echo; echo 'import ('
    printf '\t_ "%s"\n' "${pkgs[@]}"; echo ')'; } >"$dir/tools.go"
  (cd "$dir" && gorun knative "$GO" build -p "$JOBS" -ldflags "-s -w" -o "$KNATIVE_BIN/" "${pkgs[@]}")
}

# faas-cli is optional (the smoke does not use it): a refusal is reported, not fatal.
faas_cli() {
  if have_files "$BIN/faas-cli"; then log "faas-cli up to date"; return 0; fi
  local t0=$SECONDS rc=0
  log "faas-cli: building (github.com/openfaas/faas-cli@$FAAS_CLI_MODULE_VERSION, tag $FAAS_CLI_TAG)"
  gorun faas-cli env GOBIN="$BIN" "$GO" install -p "$JOBS" -ldflags "-s -w" \
    "github.com/openfaas/faas-cli@$FAAS_CLI_MODULE_VERSION" || rc=$?
  if [ "$rc" = 0 ]; then log "faas-cli: built in $((SECONDS - t0)) s"; else log "faas-cli: skipped (optional)"; fi
}

# ---- images ------------------------------------------------------------------

# image_from CONTEXT TAG...: docker build CONTEXT (its Dockerfile) with every tag.
image_from() {
  local ctx=$1; shift
  local tags=() t
  for t in "$@"; do tags+=(-t "$t"); done
  "$DOCKER" build -q "${tags[@]}" "$ctx" >"$CACHE/logs/docker-build.log" 2>&1 \
    || { tail -30 "$CACHE/logs/docker-build.log" >&2; die "docker build of $1 failed"; }
}

# scratch_image NAME BINARY DEST ENTRYPOINT_JSON USER TAG...: one static binary on scratch.
scratch_image() {
  local name=$1 bin=$2 dest=$3 entry=$4 user=$5; shift 5
  local ctx=$CACHE/ctx/$name
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$bin" "$ctx/$(basename "$bin")"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY $(basename "$bin") $dest
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER $user
ENTRYPOINT $entry
DOCKERFILE
  image_from "$ctx" "$@"
}

# The Debian root every non-scratch image starts from (kept as a tarball in the
# cache, so an emptied Docker engine gets it back without the mirror).
build_rootfs() {
  local tarball=$CACHE/rootfs-$DEBIAN_SUITE.tar work
  if [ ! -s "$tarball" ]; then
    work=$(mktemp -d)
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$work/rootfs" "$MIRROR" >"$CACHE/logs/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/logs/debootstrap.log" >&2; rm -rf "$work"; die "debootstrap failed"; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    tar -C "$work/rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
  fi
  "$DOCKER" import "$tarball" "$ROOTFS_IMAGE" >/dev/null
}

# pause from its C source in the kubernetes module, static, on scratch.
build_pause() {
  local src ctx=$CACHE/ctx/pause tags=() t
  src=$("$GO" env GOMODCACHE)/k8s.io/kubernetes@v$KUBERNETES_VERSION/build/pause/linux/pause.c
  rm -rf "$ctx" && mkdir -p "$ctx"
  gcc -Os -Wall -Werror -static -DVERSION="v${PAUSE_TAGS%% *}-scalezero" -o "$ctx/pause" "$src"
  strip "$ctx/pause"
  for t in $PAUSE_TAGS; do tags+=("registry.k8s.io/pause:$t"); done
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
  image_from "$ctx" "${tags[@]}"
}

build_control_plane_images() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    scratch_image "$c" "$SRV_BIN/$c" "/usr/local/bin/$c" "[\"/usr/local/bin/$c\"]" 0 "registry.k8s.io/$c:v$KUBERNETES_VERSION"
  done
  scratch_image etcd "$SRV_BIN/etcd" /usr/local/bin/etcd '["/usr/local/bin/etcd"]' 0 "registry.k8s.io/etcd:$ETCD_IMAGE_TAG"
  scratch_image coredns "$SRV_BIN/coredns" /coredns '["/coredns"]' 0 "registry.k8s.io/coredns/coredns:v$COREDNS_VERSION"
}

# kube-proxy needs iptables/conntrack: Debian's, on the debootstrap root.
build_kube_proxy_image() {
  local ctx=$CACHE/ctx/kube-proxy
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$SRV_BIN/kube-proxy" "$ctx/kube-proxy.bin"
  cp "$ROOT/k8s/offline/kube-proxy-wrapper.sh" "$ctx/kube-proxy"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      iptables conntrack ipset kmod \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY kube-proxy.bin kube-proxy /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/kube-proxy"]
DOCKERFILE
  image_from "$ctx" "registry.k8s.io/kube-proxy:v$KUBERNETES_VERSION"
}

# The image names kind's node-image builder pre-loads, read from the kind module
# so they follow the pinned kind release.
kind_image() { grep -ohE "$1 = \"[^\"]+\"" "$KIND_MOD"/pkg/build/nodeimage/const_*.go | cut -d'"' -f2; }

# kind's kindnetd (a nested module the proxy does not serve): k8s/offline/kindnetd.sh.
build_kind_addon_images() {
  local ctx=$CACHE/ctx/kindnetd
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$SRV_BIN/kubectl" "$ROOT/k8s/offline/kindnetd.sh" "$ctx/"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      iptables iproute2 \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY kubectl /usr/local/bin/kubectl
COPY kindnetd.sh /bin/kindnetd
ENTRYPOINT ["/bin/kindnetd"]
DOCKERFILE
  image_from "$ctx" "$(kind_image kindnetdImage)"
  scratch_image local-path-provisioner "$SRV_BIN/local-path-provisioner" /usr/local/bin/local-path-provisioner \
    '["/usr/local/bin/local-path-provisioner"]' 0 "$(kind_image storageProvisionerImage)"
  # The helper pods run sh/mkdir/rm: the Debian root has them.
  ctx=$CACHE/ctx/local-path-helper
  rm -rf "$ctx" && mkdir -p "$ctx"
  printf 'FROM %s\n' "$ROOTFS_IMAGE" >"$ctx/Dockerfile"
  image_from "$ctx" "$(kind_image storageHelperImage)"
}

# Knative's images as ko builds them: the binary at /ko-app/NAME on a static base,
# non-root (its Deployments set runAsNonRoot).
build_knative_images() {
  local c
  for c in controller webhook activator autoscaler queue; do
    scratch_image "knative-$c" "$KNATIVE_BIN/$c" "/ko-app/$c" "[\"/ko-app/$c\"]" 65532:65532 \
      "$KNATIVE_REPO/$c:v$KNATIVE_SERVING_VERSION"
  done
}

build_base_image() {
  local ctx=$CACHE/ctx/kind-base
  rm -rf "$ctx" && mkdir -p "$ctx/cni"
  cp -r "$KIND_MOD/images/base/files" "$ctx/files" && chmod -R u+w "$ctx/files"
  cp "$CACHE"/cni/{host-local,loopback,ptp,portmap,bridge} "$ctx/cni/"
  cp "$SRV_BIN/crictl" "$ctx/crictl"
  cp -r "$CACHE/containerd" "$ctx/containerd"
  cp "$ROOT/k8s/offline/kind-base.Dockerfile" "$ctx/Dockerfile"
  cp "$ROOT/k8s/offline/node-entrypoint.sh" "$ctx/"
  "$DOCKER" build -q --build-arg "ROOTFS=$ROOTFS_IMAGE" -t "$BASE_IMAGE" "$ctx" >"$CACHE/logs/kind-base.log" 2>&1 \
    || { tail -30 "$CACHE/logs/kind-base.log" >&2; die "kind base image build failed"; }
}

# The server tarball kind's builder reads: kubernetes/version and server/bin/
# {kubeadm,kubelet,kubectl,kube-*.tar}. kind side-loads only those four archives
# and pulls every other image it needs (etcd, CoreDNS, pause, kindnetd, storage);
# an archive may carry several images and kind takes every tag in it as built,
# so the extra images ride in kube-proxy.tar (tags written out in full).
KNATIVE_IMAGES() { local c; for c in controller webhook activator autoscaler queue; do printf '%s ' "$KNATIVE_REPO/$c:v$KNATIVE_SERVING_VERSION"; done; }
EXTRA_IMAGES() {
  local t
  echo "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "registry.k8s.io/coredns/coredns:v$COREDNS_VERSION"
  for t in $PAUSE_TAGS; do echo "registry.k8s.io/pause:$t"; done
  kind_image kindnetdImage; kind_image storageProvisionerImage; kind_image storageHelperImage
  KNATIVE_IMAGES
}
build_server_tarball() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    python3 "$ROOT/scripts/k8s/image_archive.py" "$SRV_BIN/$c.tar" "registry.k8s.io/$c:v$KUBERNETES_VERSION"
  done
  # shellcheck disable=SC2046
  python3 "$ROOT/scripts/k8s/image_archive.py" "$SRV_BIN/kube-proxy.tar" \
    "registry.k8s.io/kube-proxy:v$KUBERNETES_VERSION" $(EXTRA_IMAGES)
  tar -C "$SERVER" -czf "$SERVER.tar.gz.tmp" kubernetes/version \
    kubernetes/server/bin/{kubeadm,kubelet,kubectl,kube-apiserver.tar,kube-controller-manager.tar,kube-scheduler.tar,kube-proxy.tar}
  mv "$SERVER.tar.gz.tmp" "$SERVER.tar.gz"
}

# The real `kind build node-image`, from the tarball, on our base image.
build_node_image() {
  "$BIN/kind" build node-image --type file --base-image "$BASE_IMAGE" --image "$NODE_IMAGE" "$SERVER.tar.gz" \
    >"$CACHE/logs/node-image.log" 2>&1 || { tail -30 "$CACHE/logs/node-image.log" >&2; die "kind build node-image failed"; }
  if grep -q "Failed to pull" "$CACHE/logs/node-image.log"; then
    die "kind build node-image tried to pull an image (see $CACHE/logs/node-image.log)"
  fi
}

# Knative Serving's release YAML from the modules' config/ folders (knative_yaml.py).
knative_module_dir() {  # the module dir of a knative.dev dependency at serving's pinned version
  local v
  v=$(awk -v m="$1" '$1 == m {print $2; exit}' "$("$GO" env GOMODCACHE)/knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION/go.mod")
  # From the Knative build module: its go.sum (serving's) has the hashes the
  # checksum database does not (knative.dev pseudo-versions: 404 there).
  (cd "$CACHE/src/knative-v$KNATIVE_SERVING_VERSION" && "$GO" mod download -json "$1@$v") \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))'
}
build_knative_yaml() {
  local mods=$("$GO" env GOMODCACHE)
  python3 "$ROOT/scripts/k8s/knative_yaml.py" "$mods/knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION" \
    "$(knative_module_dir knative.dev/networking)" "$(knative_module_dir knative.dev/caching)" \
    "$KNATIVE_REPO" "v$KNATIVE_SERVING_VERSION" "$KNATIVE_BIN"
}

# kubeadm's own list must be satisfied locally, or kind would try a pull.
check_kubeadm_images() {
  local missing=() img
  for img in $("$SRV_BIN/kubeadm" config images list --kubernetes-version "v$KUBERNETES_VERSION" 2>/dev/null); do
    have_images "$img" || missing+=("$img")
  done
  [ ${#missing[@]} = 0 ] || die "images kubeadm expects but not built: ${missing[*]}"
}

main() {
  local t0=$SECONDS
  for tool in "$GO" "$DOCKER" debootstrap gcc python3; do
    command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install -y docker.io debootstrap gcc)"
  done
  "$DOCKER" info >/dev/null 2>&1 || die "the Docker engine at $DOCKER does not answer (start dockerd)"
  log "cache $CACHE"
  step kind build_kind "have_files $BIN/kind" "sigs.k8s.io/kind@v$KIND_VERSION"
  step kubernetes build_kubernetes \
    "have_files $SRV_BIN/{kubeadm,kubelet,kubectl,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy} $BIN/kubectl" \
    "k8s.io/kubernetes@v$KUBERNETES_VERSION staging v$KUBERNETES_STAGING_VERSION"
  step etcd build_etcd "have_files $SRV_BIN/etcd" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  step coredns build_coredns "have_files $SRV_BIN/coredns" "github.com/coredns/coredns@v$COREDNS_VERSION"
  step cni-plugins build_cni "have_files $CACHE/cni/{ptp,bridge,loopback,host-local,portmap}" \
    "github.com/containernetworking/plugins@v$CNI_PLUGINS_VERSION"
  step containerd build_containerd "have_files $CACHE/containerd/{containerd,ctr,containerd-shim-runc-v2}" \
    "github.com/containerd/containerd/v2@v$CONTAINERD_VERSION"
  step crictl build_crictl "have_files $SRV_BIN/crictl" "sigs.k8s.io/cri-tools@v$CRI_TOOLS_VERSION"
  step local-path-provisioner build_local_path "have_files $SRV_BIN/local-path-provisioner" \
    "github.com/rancher/local-path-provisioner@v$LOCAL_PATH_PROVISIONER_VERSION"
  step knative-serving build_knative "have_files $KNATIVE_BIN/{controller,webhook,activator,autoscaler,queue}" \
    "knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION"
  step knative-yaml build_knative_yaml "[ -s $KNATIVE_BIN/serving-core.yaml ]" \
    "knative.dev/serving@v$KNATIVE_SERVING_MODULE_VERSION config/" "$(filesum "$ROOT/scripts/k8s/knative_yaml.py")"
  step rootfs build_rootfs "have_images $ROOTFS_IMAGE" "debootstrap --variant=minbase $DEBIAN_SUITE"
  step pause-image build_pause "have_images registry.k8s.io/pause:${PAUSE_TAGS%% *}" "pause.c from k8s.io/kubernetes@v$KUBERNETES_VERSION"
  step control-plane-images build_control_plane_images \
    "have_images registry.k8s.io/kube-apiserver:v$KUBERNETES_VERSION registry.k8s.io/etcd:$ETCD_IMAGE_TAG registry.k8s.io/coredns/coredns:v$COREDNS_VERSION" \
    "kube-apiserver kube-controller-manager kube-scheduler v$KUBERNETES_VERSION, etcd $ETCD_IMAGE_TAG, coredns v$COREDNS_VERSION" \
    "$(filesum "$SRV_BIN/kube-apiserver" "$SRV_BIN/etcd" "$SRV_BIN/coredns")"
  step kube-proxy-image build_kube_proxy_image "have_images registry.k8s.io/kube-proxy:v$KUBERNETES_VERSION" \
    "kube-proxy v$KUBERNETES_VERSION on $ROOTFS_IMAGE" "$(filesum "$ROOT/k8s/offline/kube-proxy-wrapper.sh" "$SRV_BIN/kube-proxy")"
  step kind-addon-images build_kind_addon_images "have_images $(kind_image kindnetdImage) $(kind_image storageHelperImage)" \
    "$(kind_image kindnetdImage) $(kind_image storageProvisionerImage)" "$(filesum "$ROOT/k8s/offline/kindnetd.sh")"
  step knative-images build_knative_images "have_images $(KNATIVE_IMAGES)" "Knative Serving v$KNATIVE_SERVING_VERSION images"
  [ -n "${ONLY:-}" ] || check_kubeadm_images
  step kind-base-image build_base_image "have_images $BASE_IMAGE" "$BASE_IMAGE" \
    "$(filesum "$ROOT/k8s/offline/kind-base.Dockerfile" "$ROOT/k8s/offline/node-entrypoint.sh" "$CACHE"/containerd/* "$CACHE"/cni/* "$SRV_BIN/crictl")"
  step server-tarball build_server_tarball "[ -s $SERVER.tar.gz ]" "$SERVER.tar.gz" \
    "$(cat "$CACHE"/stamps/{kubernetes,control-plane-images,kube-proxy-image,kind-addon-images,knative-images,pause-image} 2>/dev/null | sha256sum)"
  step node-image build_node_image "have_images $NODE_IMAGE" "kind build node-image -> $NODE_IMAGE" \
    "$(cat "$CACHE"/stamps/{server-tarball,kind-base-image} 2>/dev/null | sha256sum)"
  step helm build_helm "have_files $BIN/helm" "helm.sh/helm/v3@v$HELM_VERSION"
  [ -n "${ONLY:-}" ] || faas_cli
  log "done in $((SECONDS - t0)) s: node image $NODE_IMAGE; kind, kubectl, helm in $BIN"
}

main "$@"
