#!/bin/sh
# A stand-in for the upstream argoexec (Argo's own executor binary) in baton's e2e, where no Argo
# image can be pulled. It does the part of upstream's work that a container-set pod needs:
#   argoexec init  copies `argoexec` from PATH (baton, in the image argo.Containerfile builds) to
#                  /var/run/argo/argoexec (mode 0555), and $ARGO_TEMPLATE to /var/run/argo/template
#                  (mode 0444), as upstream's init does;
#   argoexec wait  waits for the exitcode file of every main container (the template's container-set
#                  members, else main), then reports the exit codes and the outputs of main (each
#                  parameter file's content, each artifact archive's entries) on stdout and in its
#                  termination message, where upstream's wait reports them to the controller.
# It runs as /bin/argoexec-upstream, reached through baton's delegation (BATON_ARGOEXEC_UPSTREAM).
set -u
ARGO=/var/run/argo
FLATTEN=/usr/share/argo-standin/flatten.awk

case "${1:-}" in
init)
  self=$(command -v argoexec) || { echo "init: no argoexec on PATH" >&2; exit 1; }
  cp "$self" "$ARGO/.argoexec.tmp" && chmod 0555 "$ARGO/.argoexec.tmp" && mv -f "$ARGO/.argoexec.tmp" "$ARGO/argoexec" \
    || { echo "init: cannot install $ARGO/argoexec" >&2; exit 1; }
  printf '%s' "${ARGO_TEMPLATE:?}" > "$ARGO/template" && chmod 0444 "$ARGO/template" \
    || { echo "init: cannot write $ARGO/template" >&2; exit 1; }
  echo "init: copied $self to $ARGO/argoexec and wrote $ARGO/template"
  ;;
wait)
  trap 'echo "wait: stopped before every main container ended"; exit 143' TERM INT
  flat=$(awk -f "$FLATTEN" < "$ARGO/template")
  field() { printf '%s\n' "$flat" | awk -F '\t' -v re="$1" '$1 ~ re { print $2 }'; }
  mains=$(field '^containerSet\.containers\.[0-9]+\.name$')
  [ -n "$mains" ] || mains=main
  for m in $mains; do
    until [ -e "$ARGO/ctr/$m/exitcode" ]; do sleep 0.05; done
  done
  report="exitcodes"
  for m in $mains; do report="$report $m=$(cat "$ARGO/ctr/$m/exitcode")"; done
  for p in $(field '^outputs\.parameters\.[0-9]+\.valueFrom\.path$'); do
    if [ -f "$ARGO/outputs/parameters$p" ]; then v=$(cat "$ARGO/outputs/parameters$p"); else v=MISSING; fi
    report="$report; parameter $p=$v"
  done
  for a in $(field '^outputs\.artifacts\.[0-9]+\.path$'); do
    a=${a%/}
    if [ -f "$ARGO/outputs/artifacts$a.tgz" ]; then v=$(tar tzf "$ARGO/outputs/artifacts$a.tgz" | tr '\n' ' '); else v=MISSING; fi
    report="$report; artifact $a=$v"
  done
  echo "wait: $report"
  printf '%s' "$report" > /dev/termination-log
  ;;
*)
  echo "argoexec stand-in: ${1:-(no subcommand)} is not part of this stand-in" >&2
  exit 1
  ;;
esac
