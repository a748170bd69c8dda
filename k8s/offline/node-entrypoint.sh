#!/bin/sh
# Runs before kind's entrypoint (/usr/local/bin/entrypoint.kind) in the offline
# node image. Without --privileged (see docker-shim.sh) Docker mounts the cgroup
# v1 hierarchies read-only; kind's entrypoint and the kubelet write to them. The
# container has CAP_SYS_ADMIN, so it remounts them read-write first (bind remounts:
# the superblocks are the host's).
if [ -d /sys/fs/cgroup ]; then
  mount -o remount,bind,rw /sys/fs/cgroup 2>/dev/null || true
  for m in $(awk '$2 ~ "^/sys/fs/cgroup/" {print $2}' /proc/self/mounts); do
    mount -o remount,bind,rw "$m" 2>/dev/null || true
  done
fi
exec /usr/local/bin/entrypoint.kind "$@"
