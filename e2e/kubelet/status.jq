# The Pod as the API server would return it after the kubelet's status update: the spec as written,
# plus .status in the kubelet's exact shape, built from what podman knows.
# Run with: jq -n --slurpfile spec SPEC.json --slurpfile ctrs INSPECT.json --slurpfile pod POD.json
#               --slurpfile msgs MESSAGES.json -f status.jq
#   SPEC.json      the Pod as written (no harness mounts: a real API object does not show them)
#   INSPECT.json   `podman inspect` of every container of the pod (one array)
#   POD.json       `podman pod inspect` of the pod
#   MESSAGES.json  {container name: termination message}, already read under the kubelet's rules
#                  (last 4096 bytes of the file, FallbackToLogsOnError, then the first 12288/N bytes)
#   ERRORS.json    (--slurpfile starterr) {container ID: the runtime's error} for containers that could
#                  not be started: the kubelet reports them terminated, StartError, exit 128
# Times are RFC 3339 in seconds, as metav1.Time marshals them (TZ=UTC is set by the harness).

$spec[0] as $spec | $pod[0] as $podi | $msgs[0] as $msgs | ($starterr[0] // {}) as $starterr
| ($ctrs[0] | map({key: .Name, value: .}) | from_entries) as $byname
| ($spec.metadata.name) as $podname
| def secs: if . == null or . == "" or startswith("0001-01-01") then null else .[0:19] + "Z" end;
  def status_of($c; $init):
    $byname["\($podname)-\($c.name)"] as $i
    | ($i.State // {}) as $s
    | ($s.StartedAt | secs) as $started
    | ($msgs[$c.name] // "") as $msg
    | (if $i == null then {waiting: {reason: (if $init then "PodInitializing" else "ContainerCreating" end)}}
       elif $starterr[$i.Id] != null and $started == null then
         {terminated: {exitCode: 128, reason: "StartError", message: $starterr[$i.Id],
                       startedAt: "1970-01-01T00:00:00Z", finishedAt: ($i.Created | secs), containerID: "podman://\($i.Id)"}}
       elif ($s.Status | IN("running", "paused", "stopping")) then {running: {startedAt: $started}}
       elif ($s.Status | IN("exited", "stopped")) and $started != null then
         {terminated: ({exitCode: $s.ExitCode}
           + {reason: (if $s.OOMKilled then "OOMKilled" elif $s.ExitCode == 0 then "Completed" else "Error" end)}
           + (if $msg != "" then {message: $msg} else {} end)
           + {startedAt: $started, finishedAt: ($s.FinishedAt | secs), containerID: "podman://\($i.Id)"})}
       else {waiting: {reason: (if $init then "PodInitializing" else "ContainerCreating" end)}}
       end) as $state
    | {name: $c.name, state: $state, lastState: {},
       ready: (($init and ($state.terminated.exitCode // 1) == 0) or ($state.running != null and ($init | not))),
       restartCount: 0, image: $c.image, imageID: ($i.Image // "")}
      + (if $i != null and $started != null then {containerID: "podman://\($i.Id)"} else {} end)
      + {started: ($state.running != null)};
  [($spec.spec.initContainers // [])[] as $c | status_of($c; true)] as $init
| [$spec.spec.containers[] as $c | status_of($c; false)] as $main
# The kubelet's phase for restartPolicy Never (getPhase): a failed init container fails the pod;
# until every init container succeeded the pod is Pending; then Running while any container runs,
# Succeeded when all ended with 0, Failed when all ended and one did not.
| (if any($init[]; (.state.terminated.exitCode // 0) != 0) then "Failed"
   elif any($init[]; .state.terminated == null) then "Pending"
   elif any($main[]; .state.waiting != null) then "Pending"
   elif any($main[]; .state.running != null) then "Running"
   elif all($main[]; .state.terminated.exitCode == 0) then "Succeeded"
   else "Failed" end) as $phase
| ($podi.Created | secs) as $created
| ([$main[], $init[] | .state.terminated.finishedAt // empty] | max) as $last
| def cond($type; $ok; $reason):
    {type: $type, status: (if $ok then "True" else "False" end), lastProbeTime: null, lastTransitionTime: ($last // $created)}
    + (if $reason != null then {reason: $reason} else {} end);
  ($phase | IN("Succeeded", "Failed")) as $done
| $spec
| .metadata.namespace = (.metadata.namespace // "default")
| .metadata.uid = ($podi.Id[0:32] | "\(.[0:8])-\(.[8:12])-\(.[12:16])-\(.[16:20])-\(.[20:32])")
| .metadata.creationTimestamp = $created
| .status = ({phase: $phase,
    conditions: [
      cond("Initialized"; all($init[]; .state.terminated.exitCode == 0); (if $done then "PodCompleted" else null end)),
      cond("Ready"; $phase == "Running" and all($main[]; .ready); (if $done then "PodCompleted" else null end)),
      cond("ContainersReady"; $phase == "Running" and all($main[]; .ready); (if $done then "PodCompleted" else null end)),
      cond("PodScheduled"; true; null)],
    hostIP: "127.0.0.1", startTime: $created}
  + (if ($init | length) > 0 then {initContainerStatuses: $init} else {} end)
  # The kubelet sorts the containers' statuses by name (init containers stay in spec order): so does the
  # stand-in, as the real cluster showed (e2e/cluster.sh).
  + {containerStatuses: ($main | sort_by(.name)), qosClass: "BestEffort"})
