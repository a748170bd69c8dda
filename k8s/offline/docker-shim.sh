#!/usr/bin/env bash
# The `docker` kind runs (put first on PATH by toolchain.sh and cluster-smoke.sh).
# This machine's processes lack CAP_SYS_RESOURCE in their bounding set (CapBnd
# 0x1fffeffffff), so `docker run/exec --privileged` (all capabilities) fails with
# "unable to apply caps: operation not permitted". kind asks for --privileged
# for its node and build containers; this passes everything through to the real
# client ($REAL_DOCKER) but turns --privileged into every capability the machine
# has plus what else --privileged means (no seccomp/AppArmor, unmasked /proc and
# /sys, all devices). On `exec` the flag is dropped: the process gets the
# container's own capabilities.
set -euo pipefail
real=${REAL_DOCKER:-/usr/bin/docker}
[ $# -ge 1 ] || exec "$real"
cmd=$1; shift
args=()
for a in "$@"; do
  if [ "$a" = "--privileged" ]; then
    case $cmd in
      run|create) args+=(--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined
                         --security-opt apparmor=unconfined --security-opt systempaths=unconfined
                         --device-cgroup-rule "a *:* rwm")
                  # --privileged would also bring every host device: the kubelet needs /dev/kmsg.
                  [ -e /dev/kmsg ] && args+=(--device /dev/kmsg) ;;
      exec) ;;
      *) args+=("$a") ;;
    esac
  else
    args+=("$a")
  fi
done
exec "$real" "$cmd" "${args[@]}"
