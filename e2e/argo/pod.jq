# An Argo template (JSON, as the controller puts it into ARGO_TEMPLATE) -> the Pod Argo Workflows'
# controller builds for it with the emissary, legacy layout (init + wait), in the shape of
# e2e/argo/containerset.yaml (workflow/controller/workflowpod.go): `init` runs `argoexec init` with
# ARGO_TEMPLATE; `wait` first among the containers, /tmp from tmp-dir-argo (subPath "0") and the
# mounts of the container named main (if any) mirrored under /mainctrfs; every main container (the container-set members, else the
# template's `container`, named main) and every sidecar rewritten to
# `/var/run/argo/argoexec emissary <log flags> -- <command>`, args untouched; the emptyDir
# var-run-argo at /var/run/argo everywhere; ARGO_* variables in the controller's order.
# Arguments: $pod (the pod's and the workflow's name), $init (the executor image `init` runs),
# $wait (the image `wait` runs), $step (the image of every main container and sidecar).
# e2e/argo-upstream.sh plays each pod twice, $init being upstream's argoexec image, then baton's.
def env($name): [{name: "ARGO_CONTAINER_NAME", value: $name},
  {name: "ARGO_NODE_ID", value: $pod}, {name: "ARGO_INCLUDE_SCRIPT_OUTPUT", value: "true"},
  {name: "ARGO_DEADLINE", value: "0001-01-01T00:00:00Z"}, {name: "ARGO_WORKFLOW_NAME", value: $pod},
  {name: "ARGO_TERMINATION_GRACE_PERIOD_SECONDS", value: "3"}];
def pod_env: [{name: "ARGO_POD_NAME", valueFrom: {fieldRef: {apiVersion: "v1", fieldPath: "metadata.name"}}},
  {name: "ARGO_POD_UID", valueFrom: {fieldRef: {apiVersion: "v1", fieldPath: "metadata.uid"}}},
  {name: "ARGO_WORKFLOW_NAME", value: $pod}, {name: "ARGO_WORKFLOW_UID", value: "3f0c7d8e-5a1b-4c2d-9e8f-7a6b5c4d3e21"}];
def log_flags: ["--loglevel", "info", "--log-format", "text", "--gloglevel", "0"];
def var_run_argo: {name: "var-run-argo", mountPath: "/var/run/argo"};
def wrapped($mounts): {name, image: $step,
    command: (["/var/run/argo/argoexec", "emissary"] + log_flags + ["--"] + .command), args,
    env: env(.name), resources: {}, volumeMounts: ($mounts + [var_run_argo])}
  | with_entries(select(.value != null));
. as $t
| (if .containerSet then .containerSet.containers else [.container + {name: "main"}] end) as $mains
| (if .containerSet then .containerSet.volumeMounts else .container.volumeMounts end // []) as $mounts
| {apiVersion: "v1", kind: "Pod",
   metadata: {name: $pod,
     labels: {"workflows.argoproj.io/completed": "false", "workflows.argoproj.io/workflow": $pod},
     annotations: {"kubectl.kubernetes.io/default-container": ($mains[-1].name),
       "workflows.argoproj.io/node-id": $pod, "workflows.argoproj.io/node-name": $pod}},
   spec: {restartPolicy: "Never", terminationGracePeriodSeconds: 3,
     volumes: ([{name: "var-run-argo", emptyDir: {}}, {name: "tmp-dir-argo", emptyDir: {}}] + ($t.volumes // [])),
     initContainers: [{name: "init", image: $init, imagePullPolicy: "IfNotPresent",
       command: (["argoexec", "init"] + log_flags),
       env: (pod_env + [{name: "ARGO_CONTAINER_NAME", value: "init"}, {name: "ARGO_TEMPLATE", value: ($t | tojson)}]
             + env("init")[1:5]),
       resources: {}, volumeMounts: [var_run_argo]}],
     containers: ([{name: "wait", image: $wait, imagePullPolicy: "IfNotPresent",
         command: (["argoexec", "wait"] + log_flags),
         env: (pod_env + env("wait")),
         resources: {},
         volumeMounts: ([if any($mains[]; .name == "main") then $mounts[] | .mountPath = "/mainctrfs" + .mountPath
                          else empty end]
           + [{name: "tmp-dir-argo", mountPath: "/tmp", subPath: "0"}, var_run_argo])}]
       + [$mains[] | wrapped($mounts)]
       + [($t.sidecars // [])[] | wrapped(.volumeMounts // [])])}}
