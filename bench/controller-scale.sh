#!/usr/bin/env bash
# bench/controller-scale.sh [--quick] [--no-build] [--out DIR]
# `batonctl watch --annotate` on thousands of pods of a real API server (issue 22, item 4): pods whose
# statuses change through the API, as a kubelet would write them, with no node running them (a
# scheduling gate). The driver (crates/baton-controller/examples/scale_bench.rs) measures the time from
# each status write to the annotation that shows it, the annotations written per change, the watcher's
# memory (peak and final RSS, anonymous memory) and its CPU time per pod update. It:
#   1. builds batonctl as it ships (static, musl, release) and the driver;
#   2. uses the cluster of $KUBECONFIG, or brings up e2e/cluster/up's and takes it down at the end;
#   3. runs two rows, each in a namespace of its own, deleted after it:
#      steady   — 2,000 pods, 2 step ends each, 40 changes/s (below the default --kube-api-qps 50);
#      overload — 1,000 pods, 2 step ends each, 200 changes/s (4 times the limit: writes queue);
#      (--quick: 300 and 200 pods);
#   4. writes its section (between <!-- controller-scale --> markers) into DIR/benchmarks.md (DIR:
#      --out, default docs/) and prints it. Exits 1 when a target is missed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
quick=0
build=1
out=$repo/docs
args=("$@")
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        --out) mkdir -p "${2:?--out needs a folder}"; out=$(realpath "$2"); shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/controller-scale.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
say() { echo "bench/controller-scale.sh: $*" >&2; }

# 1. batonctl as it ships, and the driver.
triple=x86_64-unknown-linux-musl
batonctl=$repo/target/$triple/release/batonctl
driver=$repo/target/release/examples/scale_bench
if ((build)); then
    rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple" >&2
    say "building batonctl (release, $triple) and the driver"
    (cd "$repo" && env -u CARGO_TARGET_DIR CC_x86_64_unknown_linux_musl=musl-gcc \
        cargo build --quiet --release --target "$triple" -p baton-controller --bin batonctl >&2)
    (cd "$repo" && env -u CARGO_TARGET_DIR cargo build --quiet --release -p baton-controller --example scale_bench >&2)
fi
[[ -x $batonctl && -x $driver ]] || { say "$batonctl or $driver is missing: run without --no-build"; exit 1; }
head=$(git -C "$repo" rev-parse --short HEAD)
dirty=$(git -C "$repo" status --porcelain -- crates Cargo.toml Cargo.lock | wc -l)
built="static batonctl ($triple, release profile) of the working tree at $head"
if ((dirty)); then built+=" with $dirty uncommitted paths"; fi

# 2. The cluster.
own=0
namespaces=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    for ns in "${namespaces[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
    if ((own)); then "$repo/e2e/cluster/down" >&2 || true; fi
    rm -f "${log:-}"
}
trap cleanup EXIT
if [[ -z ${KUBECONFIG:-} ]]; then
    say "bringing up e2e/cluster/up's cluster"
    KUBECONFIG=$("$repo/e2e/cluster/up" | tail -n 1)
    export KUBECONFIG
    own=1
fi
# e2e/cluster/up's kubectl, when that is the cluster.
[[ -f /var/tmp/baton-cluster/bin ]] && PATH=$(cat /var/tmp/baton-cluster/bin):$PATH
server=$(kubectl version -o json --request-timeout=5s 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') \
    || { say "kubectl cannot reach the API server of KUBECONFIG=$KUBECONFIG"; exit 1; }

# 3. The rows.
if ((quick)); then steady=300 overload=200; else steady=2000 overload=1000; fi
log=$(mktemp "${TMPDIR:-/tmp}/baton-scale.XXXXXX")
results=()
row() { # label pods steps rate [watch args…]
    local label=$1 pods=$2 steps=$3 rate=$4; shift 4
    local ns
    ns=baton-scale-$label-$(date +%s)
    namespaces+=("$ns")
    say "$label: $pods pods, $steps step ends each, $rate changes/s"
    local result
    result=$("$driver" "$batonctl" "$ns" "$pods" "$steps" "$rate" 19090 "$@" 2>"$log") \
        || { say "$label: the driver failed: $(tail -n 3 "$log")"; exit 1; }
    results+=("$label $result")
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
}
load_start=$(cut -d' ' -f1 /proc/loadavg)
row steady "$steady" 2 40
row overload "$overload" 2 200
load_end=$(cut -d' ' -f1 /proc/loadavg)

# 4. The section.
status=0
section=$(python3 - "$server" "$built" "$(nproc)" "$load_start" "$load_end" "bench/controller-scale.sh${args[*]:+ ${args[*]}}" "${results[@]}" <<'EOF'
import json, sys
server, built, cpus, load_start, load_end, command = sys.argv[1:7]
rows = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in sys.argv[7:]}
def mib(kib): return f"{kib / 1024:.1f} MiB"
def ms(v): return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"
table = ["| row | pods | changes | rate | writes per change | not shown | p50 | p90 | p99 | max | CPU per update | peak RSS | RSS / anon at end |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for label, r in rows.items():
    m, l = r["memory_kib"], r["latency_ms"]
    table.append(f"| {label} | {r['pods']:,} | {r['changes']:,} | {r['rate_per_s']:.0f}/s | {r['writes_per_change']:.2f} | {r['changes_not_shown']} "
                 f"| {ms(l['p50'])} | {ms(l['p90'])} | {ms(l['p99'])} | {ms(l['max'])} | {r['cpu_us_per_update']:.0f} µs "
                 f"| {mib(m['peak_rss'])} | {mib(m['rss_end'])} / {mib(m['anon_end'])} |")
s = rows["steady"]
targets = [
    ("peak RSS < 60 MiB", s["memory_kib"]["peak_rss"] < 60 * 1024, mib(s["memory_kib"]["peak_rss"])),
    ("one write per change, none lost", s["writes_per_change"] <= 1.0 and s["changes_not_shown"] == 0 and all(r["changes_not_shown"] == 0 for r in rows.values()),
     f"{s['writes_per_change']:.2f}, {sum(r['changes_not_shown'] for r in rows.values())} not shown"),
    ("p99 < 1 s from a change to its annotation", s["latency_ms"]["p99"] < 1000, ms(s["latency_ms"]["p99"])),
]
missed = [name for name, ok, _ in targets if not ok]
o = rows["overload"]
print(f"""<!-- controller-scale: written by bench/controller-scale.sh; do not edit by hand -->
## The controller at scale: `batonctl watch --annotate` on {s['pods']:,} pods

Pods labelled `baton.dev/injected=true`, each with 2 steps, on the real API server of e2e/cluster/up
(Kubernetes {server}). No node runs them (a scheduling gate); the driver
(`crates/baton-controller/examples/scale_bench.rs`) writes their statuses through the API as a kubelet
would — a step terminated with baton's record as its termination message, then the next, then phase
Succeeded — one change at a time at a steady rate, round by round over all pods. The watcher runs with its
defaults (`--concurrent-writes 8 --kube-api-qps 50 --kube-api-burst 100`) and is started once the pods
exist, so its first list holds all of them. Latency is from the API server's answer to a status write to
the first event of the driver's own watch whose annotation shows that step ended; *not shown* counts
changes no annotation ever showed. CPU is the watcher's user + system time over the changes divided by the
pod updates it handled (each change, and each annotation coming back); memory is `/proc/PID/status`
(`VmHWM`, `VmRSS`, `RssAnon`).

{chr(10).join(table)}

Targets (the steady row): {"; ".join(f"{name} — **{'met' if ok else 'missed'}** ({value})" for name, ok, value in targets)}.

The overload row writes changes at 4 times `--kube-api-qps`: the writes queue (one per pod at most,
`batonctl_watch_queued_writes` shows how many), latency grows to the time the queue takes to drain
({ms(o['latency_ms']['max'])} at most here), and no change is lost or written twice
({o['writes_per_change']:.2f} writes per change). Raise `--kube-api-qps` where step ends come faster, or
use `--batch` to merge a pod's changes.

Measured with `{command}`: {built}; {cpus} CPUs, 1-minute load average {load_start} at the start and
{load_end} at the end (the API server, etcd and the watcher share them).
<!-- /controller-scale -->""")
sys.exit(1 if missed else 0)
EOF
) || status=$?
python3 - "$out/benchmarks.md" "$section" <<'EOF'
import os, re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else ""
pattern = re.compile(r"<!-- controller-scale.*?<!-- /controller-scale -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
EOF
echo "$section"
exit "$status"
