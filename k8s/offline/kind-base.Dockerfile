# kind's base image (sigs.k8s.io/kind images/base/Dockerfile at the pinned kind
# release) rebuilt offline: the debootstrap Debian root instead of debian:*-slim,
# containerd (same version), the CNI plugins and crictl from their Go modules
# (built by the toolchain) instead of kind's git clones, runc from Debian's
# package, and kind's own files from the kind module. No fuse-overlayfs
# snapshotter (rootless only). containerd's restrict_oom_score_adj is on, as kind
# sets it for rootless nodes: without CAP_SYS_RESOURCE (see docker-shim.sh) a
# container cannot get an oom_score_adj below containerd's own. Built by scripts/k8s/toolchain.sh; the context
# holds files/ (kind's images/base/files), containerd/, cni/ and crictl.
ARG ROOTFS
FROM ${ROOTFS}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      systemd \
      conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz fuse-overlayfs \
      e2fsprogs \
      bash ca-certificates curl jq procps \
      runc \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
COPY files/ /tmp/kindfiles/
COPY cni/ /opt/cni/bin/
COPY crictl /usr/local/bin/crictl
COPY containerd/ /usr/local/bin/
COPY node-entrypoint.sh /tmp/node-entrypoint.sh
RUN cd /tmp/kindfiles \
    && find usr/local/bin -type f -exec install -D -m 0755 {} /{} \; \
    && find kind etc LICENSES -type f -exec install -D -m 0644 {} /{} \; \
    && chmod 0755 /kind /kind/bin /kind/bin/* \
    && cd / && rm -rf /tmp/kindfiles \
    && mv /usr/local/bin/entrypoint /usr/local/bin/entrypoint.kind \
    && install -m 0755 /tmp/node-entrypoint.sh /usr/local/bin/entrypoint && rm /tmp/node-entrypoint.sh \
    && chmod 0755 /opt/cni/bin/* /usr/local/bin/crictl /usr/local/bin/containerd /usr/local/bin/ctr \
       /usr/local/bin/containerd-shim-runc-v2 \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init \
    && systemctl enable kubelet.service \
    && systemctl enable containerd.service \
    && systemctl enable undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service \
    && mkdir -p /etc/kubernetes/manifests \
    && sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml \
    && ctr oci spec \
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
        | jq 'del(.process.rlimits)' \
        > /etc/containerd/cri-base.json \
    && containerd --version && runc --version
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
