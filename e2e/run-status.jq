# The harness's own reader: Pod JSON -> run status, in the shape of `batonctl status -o json`
# (namespace, pod, phase, steps[] with name, kind, step, state, source, succeeded, exitCode, reason,
# startedAt, finishedAt, results, error). It is the fallback of demo.sh and the cross-check of run.sh;
# batonctl is the real reader (it also explains cut messages). Compressed results are passed on as
# resultsDeflate, which lib.sh (run_status) expands.
def record: (.state.terminated.message // "") as $m
  | ($m | try fromjson catch null) | if type == "object" and .baton == 1 then . else null end;
def step($kind):
  . as $cs | record as $r
  | if $r != null then
      {name, kind: $kind, step: $r.step, state: "terminated", source: "baton",
       succeeded: ($r.reason | IN("Completed", "Continued", "Stopped", "Skipped")),
       exitCode: $r.exitCode, reason: $r.reason, startedAt: $r.startedAt, finishedAt: $r.finishedAt,
       results: ($r.results // {}), error: $r.error}
      + (if $r.resultsDeflate then {resultsDeflate: $r.resultsDeflate} else {} end)
    elif .state.terminated then
      .state.terminated as $t
      | {name, kind: $kind, state: "terminated", source: "kubelet", succeeded: ($t.exitCode == 0),
         exitCode: $t.exitCode, reason: $t.reason, startedAt: $t.startedAt, finishedAt: $t.finishedAt,
         results: {}, error: (if ($t.message // "") != "" and $t.exitCode != 0 then $t.message else null end)}
    elif .state.running then {name, kind: $kind, state: "running", source: "kubelet", startedAt: .state.running.startedAt, results: {}}
    else {name, kind: $kind, state: "waiting", source: "kubelet", reason: .state.waiting.reason, results: {}}
    end;
# The statuses in the spec's order, as batonctl lists the steps: the kubelet sorts containerStatuses by name.
def in_spec_order($statuses; $specs): [$specs[]?.name as $n | ($statuses // [] | map(select(.name == $n)))[0] // empty];
([in_spec_order(.status.initContainerStatuses; .spec.initContainers)[] | step("init")]
 + [in_spec_order(.status.containerStatuses; .spec.containers)[] | step("container")]) as $steps
| {namespace: .metadata.namespace, pod: .metadata.name,
   phase: (if .status.phase == "Failed" then "Failed"
           elif all($steps[]; .state == "terminated") then (if all($steps[]; .succeeded) then "Succeeded" else "Failed" end)
           elif any($steps[]; .state != "waiting") then "Running"
           else "Pending" end),
   steps: $steps,
   results: (reduce $steps[] as $s ({}; . + $s.results))}
