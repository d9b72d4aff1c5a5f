# shellcheck shell=bash
# The configuration files of the test cluster's daemons, written under $CLUSTER_STATE by every `up`.
# Source after env.sh.

write_configs() {
  cat > "$CLUSTER_STATE/registry.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $CLUSTER_STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
CFG

  # containerd: runc with the cgroupfs driver (PID 1 is not systemd), state under $CLUSTER_STATE,
  # CNI from $CLUSTER_STATE/cni, and registries from certs.d: $REGISTRY_NAME, docker.io and
  # registry.k8s.io all resolve to the local registry over plain HTTP, so nothing is pulled from outside.
  mkdir -p "$CLUSTER_STATE/cni" "$CLUSTER_STATE/containerd/opt"
  cat > "$CLUSTER_STATE/containerd.toml" <<CFG
version = 2
root = "$CLUSTER_STATE/containerd/root"
state = "$CLUSTER_STATE/containerd/state"
[grpc]
  address = "$RUN/containerd.sock"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CLUSTER_STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_selinux = false
  # Root has no CAP_SYS_RESOURCE on these machines: runc cannot set the sandbox's oom_score_adj of -998
  # ("failed to update /proc/self/oom_score_adj: Permission denied"); keep scores at containerd's own or above.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc || echo /usr/sbin/runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CLUSTER_STATE/certs.d"
CFG
  local host
  for host in "$REGISTRY_NAME" "$REGISTRY" docker.io registry.k8s.io; do
    mkdir -p "$CLUSTER_STATE/certs.d/$host"
    cat > "$CLUSTER_STATE/certs.d/$host/hosts.toml" <<CFG
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
CFG
  done

  # One bridge, host-local addresses, a default route through the node (service addresses), no
  # masquerade: pods reach each other and the node; up's FORWARD rules drop the rest.
  cat > "$CLUSTER_STATE/cni/10-baton.conflist" <<CFG
{
  "cniVersion": "1.0.0",
  "name": "baton-pods",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$CLUSTER_STATE/cni-ipam"
      }
    }
  ]
}
CFG

  # The kubelet: cgroupfs on cgroup v1 (allowed with failCgroupV1: false), no swap check, serving on
  # the node's bridge address with a certificate of the cluster's CA, clients by certificate or token.
  cat > "$CLUSTER_STATE/kubelet.yaml" <<CFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/containerd.sock
podLogsDir: $CLUSTER_STATE/pod-logs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
CFG
}
