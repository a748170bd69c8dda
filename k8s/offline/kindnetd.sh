#!/bin/bash
# A stand-in for kind's kindnetd, for the offline node image (see the README,
# "Kubernetes offline"): kindnetd's source is a nested module of the kind
# repository that the Go module proxy does not serve, so it cannot be built here.
# It does what kind's default CNI needs, with the same plugins: every node gets a
# ptp + host-local conflist for its own podCIDR, a route to every other node's
# podCIDR via that node's InternalIP, and a MASQUERADE rule for pod traffic that
# leaves the pod network. kind's manifest runs it with HOST_IP and POD_SUBNET set.
set -u
CONF=/etc/cni/net.d/10-kindnet.conflist
: "${HOST_IP:?HOST_IP unset}" "${POD_SUBNET:?POD_SUBNET unset}"

write_conf() {  # $1: this node's podCIDR
  local tmp
  tmp=$(mktemp /etc/cni/net.d/.kindnet.XXXXXX)
  cat >"$tmp" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kindnet",
  "plugins": [
    {"type": "ptp", "ipMasq": false, "mtu": 1500,
     "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam-state",
              "routes": [{"dst": "0.0.0.0/0"}], "ranges": [[{"subnet": "$1"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  if cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; else mv "$tmp" "$CONF"; echo "kindnetd: wrote $CONF for $1"; fi
}

masquerade() {
  local rule=(-s "$POD_SUBNET" ! -d "$POD_SUBNET" -m addrtype ! --dst-type LOCAL -j MASQUERADE)
  iptables -t nat -C POSTROUTING "${rule[@]}" 2>/dev/null || iptables -t nat -A POSTROUTING "${rule[@]}"
}

sync_once() {
  local nodes ip cidr
  nodes=$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{" "}{.spec.podCIDR}{"\n"}{end}') || return 1
  while read -r ip cidr; do
    [ -n "$ip" ] && [ -n "$cidr" ] || continue
    if [ "$ip" = "$HOST_IP" ]; then
      write_conf "$cidr"
    elif ! ip route show "$cidr" | grep -q "via $ip "; then
      ip route replace "$cidr" via "$ip" && echo "kindnetd: route $cidr via $ip"
    fi
  done <<<"$nodes"
  masquerade
}

trap 'exit 0' TERM INT
echo "kindnetd (offline stand-in): node $HOST_IP, pod subnet $POD_SUBNET"
while true; do
  sync_once || echo "kindnetd: cannot list nodes yet, retrying"
  sleep 5 & wait $!
done
