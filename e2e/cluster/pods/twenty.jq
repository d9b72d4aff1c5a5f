# The 20-step pod of the figure (e2e/cluster.sh bench): s01 .. s20, each after the one before, each
# `true` (the figure is baton's handoff and the node's work, not the steps'). s01 waits 2 s first so
# that every container is up when the chain starts: the handoffs then measure baton, not start-up.
# jq -n --arg baton IMAGE --arg step IMAGE -f twenty.jq
def step($i):
  ("s" + (if $i < 10 then "0" else "" end) + ($i | tostring)) as $name
  | {name: $name, image: $step, imagePullPolicy: "Never",
     command: (["/var/run/baton/bin/baton", "run", "--name=" + $name, "--termination-path=/dev/termination-log"]
               + (if $i > 1 then ["--after=s" + (if $i - 1 < 10 then "0" else "" end) + (($i - 1) | tostring)] else [] end)
               + ["--", "sh", "-c", (if $i == 1 then "sleep 2" else "true" end)]),
     volumeMounts: [{name: "baton", mountPath: "/var/run/baton"}]};
{apiVersion: "v1", kind: "Pod", metadata: {name: "baton-e2e-20"},
 spec: {restartPolicy: "Never",
        initContainers: [{name: "baton-init", image: $baton, imagePullPolicy: "Never",
                          command: ["/baton", "init", "--dir", "/var/run/baton"],
                          volumeMounts: [{name: "baton", mountPath: "/var/run/baton"}]}],
        containers: [range(1; 21) as $i | step($i)],
        volumes: [{name: "baton", emptyDir: {}}]}}
