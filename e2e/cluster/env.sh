# shellcheck shell=bash
# Shared by e2e/cluster/up and e2e/cluster/down: where the test cluster keeps its state, its addresses
# and ports, and how its processes are started and found. Source it from bash.
#
# Everything the cluster writes lives under $CLUSTER_STATE (default /var/tmp/baton-cluster); the built
# binaries live in e2e/cluster/build's cache, outside the repository. Nothing listens beyond 127.0.0.1
# and the pods' bridge, and nothing the pods send is routed out of the machine.

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_STATE=${CLUSTER_STATE:-/var/tmp/baton-cluster}
KUBECONFIG_OUT=$CLUSTER_STATE/admin.kubeconfig

NODE_NAME=baton-node
BRIDGE=baton0
POD_CIDR=10.244.0.0/24
# The bridge's own address: the node's IP, where the API server and the kubelet listen for the pods.
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/24
SERVICE_API_IP=10.96.0.1
API_PORT=6443
ETCD_PORT=2379
ETCD_PEER_PORT=2380
REGISTRY=127.0.0.1:5050
# The name pods use for the local registry (containerd's hosts.toml maps it to $REGISTRY, plain HTTP).
REGISTRY_NAME=localhost:5050
PAUSE_IMAGE=$REGISTRY_NAME/pause:3.10
# A comment on every iptables rule up adds, so that down removes exactly those.
IPT_TAG=baton-cluster

PKI=$CLUSTER_STATE/pki
LOGS=$CLUSTER_STATE/logs
RUN=$CLUSTER_STATE/run

csay() { printf 'cluster: %s\n' "$*" >&2; }
cdie() { csay "error: $*"; exit 2; }

# start NAME COMMAND...: runs a daemon in its own session, output to $LOGS/NAME.log, pid in $RUN/NAME.pid.
start() {
  local name=$1
  shift
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

# running NAME: the daemon started by `start NAME` is still alive.
running() {
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null
}

# wait_for NAME SECONDS COMMAND...: until COMMAND succeeds (a server answering); fails with the end of
# NAME's log when the daemon died or the time ran out.
wait_for() {
  local name=$1 deadline=$(( $(date +%s) + $2 ))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 20 "$LOGS/$name.log" >&2
      cdie "$name exited while starting (log: $LOGS/$name.log)"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 20 "$LOGS/$name.log" >&2
      cdie "$name did not answer within $(( $2 ))s (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}
