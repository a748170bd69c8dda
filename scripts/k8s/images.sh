#!/usr/bin/env bash
# make images: build the function images and the gateway image, then load them
# into the kind node (no registry). ALL=1 adds yolo-ultralytics (PyTorch, GB).
# KIND_LOAD=0 only builds. BASE_IMAGE overrides python:3.11-slim.
. "$(dirname "$0")/common.sh"
need docker
[ "${KIND_LOAD:-1}" = 1 ] && need kind
[ -f "$REPO/models/yolo26n.onnx" ] || { echo "images.sh: models/ is empty (run: make model)" >&2; exit 3; }
base=()
[ -n "${BASE_IMAGE:-}" ] && base=(--build-arg "BASE_IMAGE=$BASE_IMAGE")

build() {  # build NAME DOCKERFILE
  local image="$REGISTRY/$1:$TAG" start=$SECONDS
  step "building $image"
  "$DOCKER" build "${base[@]}" -f "$2" -t "$image" "$REPO"
  echo "    $image: $("$DOCKER" image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'), $((SECONDS - start)) s"
  if [ "${KIND_LOAD:-1}" = 1 ]; then kind_load "$image"; fi
}

build scalezero-gateway "$REPO/docker/gateway.Dockerfile"
for name in $(function_names); do
  build "$name" "$REPO/functions/$name/Dockerfile"
done
