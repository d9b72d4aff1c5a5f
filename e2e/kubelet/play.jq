# The kubelet's part that podman does not play, written into the Pod before `podman kube play`.
# Input: the Pod as JSON. Arguments:
#   $hostdir  host folder holding <container>/termination-log, one file per container (mode 0666)
#   $prefix   prefix that makes the pod's emptyDir volume names unique on this host
#   $env      {NAME: value} added to every container's environment (E2E_STEP_ENV; {} normally)
#
# 1. Termination messages. The kubelet creates a fresh file per container and bind-mounts it at the
#    container's terminationMessagePath (default /dev/termination-log). Here: a hostPath volume of
#    type File per container, mounted at the same path. A bind-mounted file cannot be renamed over
#    (EBUSY), exactly as in a cluster.
# 2. emptyDir. podman 4.3 turns an emptyDir into a *named* volume called like the pod's volume, which
#    two pods with a volume "baton" would share (and a pod would find the last pod's files in it).
#    Each emptyDir gets a name unique to this pod; the harness creates it fresh, mode 0777, as the
#    kubelet creates an emptyDir.
# 3. podman removes a completed init container at once; the annotation keeps it, so its exit code
#    and times can be read back like the kubelet reads them from the runtime.
def tl_volume($i): "termination-log-\($i)";
def with_termination($i): .volumeMounts = ((.volumeMounts // []) + [{name: tl_volume($i), mountPath: (.terminationMessagePath // "/dev/termination-log")}]);

(.spec.initContainers // []) as $init
| ($init | length) as $ni
| ([.spec.volumes[]? | select(has("emptyDir")) | .name]) as $empty
| def rename_mounts:
    if .volumeMounts == null then .
    else .volumeMounts |= map(if (.name | IN($empty[])) then .name = $prefix + .name else . end) end;
  def add_env: if ($env | length) == 0 then . else .env = ((.env // []) + ($env | to_entries | map({name: .key, value: .value}))) end;
  def rewrite($offset): [to_entries[] | .key as $k | .value | rename_mounts | with_termination($k + $offset) | add_env];
  .metadata.annotations = ((.metadata.annotations // {}) + {"io.podman.annotations.init.container.type": "always"})
| .spec.volumes = ([.spec.volumes[]? | if has("emptyDir") then .name = $prefix + .name else . end]
    + [($init + .spec.containers) | to_entries[]
       | {name: tl_volume(.key), hostPath: {path: "\($hostdir)/\(.value.name)/termination-log", type: "File"}}])
| if $ni > 0 then .spec.initContainers |= rewrite(0) else . end
| .spec.containers |= rewrite($ni)
