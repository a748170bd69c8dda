#!/usr/bin/env bash
# make down: delete the kind cluster (images stay in the local Docker engine).
. "$(dirname "$0")/common.sh"
need kind
kind delete cluster --name "$CLUSTER"
