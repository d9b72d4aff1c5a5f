#!/usr/bin/env bash
# Runs every test of baton, in this order:
#   1. cargo test --workspace: unit tests and the integration tests of every crate
#   2. make static: the release binaries (x86_64 and aarch64), checked static, stripped, in budget
#   3. the e2e suites in real containers on podman: e2e/run.sh (pods, the kubelet's part played),
#      e2e/tekton.sh (a TaskRun-shaped pod), e2e/argo.sh (an Argo container-set pod), e2e/play.sh
#      (batonctl play, and the plain examples through batonctl inject | batonctl play)
#   4. crates/baton-controller/tests/registry.sh: batonctl inject against a real registry
#   5. the real cluster, briefly: e2e/cluster.sh smoke pipeline, when its Kubernetes binaries are
#      already built (e2e/cluster/build's cache) and no test cluster is running; skipped otherwise
#      (and with TEST_CLUSTER=0, as .ci/run sets it: it runs the whole suite itself)
# and ends with one summary line. `./test.sh --fuzz` also builds the fuzz targets and runs each for
# 10 s (cargo-fuzz); CI (.ci/run) does, and then runs the longer checks itself: the whole suite on the
# real cluster (building Kubernetes when needed) and the arm64 binary's tests under qemu-user.
# Installs what the tests need on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")"

FUZZ=0
for arg in "$@"; do
  case $arg in
    --fuzz) FUZZ=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
log=$(mktemp -d "${TMPDIR:-/tmp}/baton-test.XXXXXX")
stage="setup"
trap 'rc=$?; [ $rc -eq 0 ] || echo "test.sh: FAILED in $stage after $(( $(date +%s) - started )) s"; rm -rf "$log"' EXIT

need_pkgs=()
for cmd_pkg in podman:podman runc:runc busybox:busybox-static setpriv:util-linux unshare:util-linux \
    nsenter:util-linux prlimit:util-linux file:file strace:strace jq:jq; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need_pkgs+=("${cmd_pkg#*:}")
done
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing Debian packages: ${need_pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "test.sh: adding the Rust target x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl
fi

stage="cargo test"
echo "== cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee "$log/cargo.log"
tests=$(grep -Eo '^test result: ok\. [0-9]+ passed' "$log/cargo.log" | awk '{s += $4} END {print s + 0}')

fuzzed="not run (./test.sh --fuzz)"
if [ "$FUZZ" = 1 ]; then
  stage="fuzzing"
  echo "== fuzz targets (crates/baton-controller/fuzz)"
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "test.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked -q || true
  fi
  command -v cargo-fuzz >/dev/null 2>&1 || { echo "test.sh: cargo-fuzz cannot be installed" >&2; exit 1; }
  # cargo-fuzz passes nightly flags (sanitizer coverage); RUSTC_BOOTSTRAP lets stable accept them.
  ( cd crates/baton-controller/fuzz
    RUSTC_BOOTSTRAP=1 cargo fuzz build -O
    for target in message pod; do
      if ! RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" -- -max_total_time=10 > "$log/fuzz.log" 2>&1; then
        tail -40 "$log/fuzz.log"; echo "fuzz target $target failed (crash input under fuzz/artifacts/$target)" >&2; exit 1
      fi
      echo "fuzz $target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log/fuzz.log")"
    done )
  fuzzed="2 targets, 10 s each"
fi

stage="make static"
echo "== static binary"
make --no-print-directory static

stage="e2e"
echo "== e2e (podman)"
e2e/run.sh 2>&1 | tee "$log/e2e.log"
echo "== e2e: Tekton-shaped TaskRun pod (podman)"
e2e/tekton.sh 2>&1 | tee -a "$log/e2e.log"
echo "== e2e: Argo-shaped container-set pod (podman)"
e2e/argo.sh 2>&1 | tee -a "$log/e2e.log"
echo "== e2e: batonctl play (podman)"; e2e/play.sh 2>&1 | tee -a "$log/e2e.log"
stage="registry"
echo "== registry: batonctl inject reads ENTRYPOINT/CMD from docker-registry"
crates/baton-controller/tests/registry.sh
checks=$(grep -c '^PASS ' "$log/e2e.log" || true)

stage="cluster"
cluster="not run (its Kubernetes binaries are not built yet: e2e/cluster/build, or .ci/run)"
k8s_bin="${BATON_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/baton-cluster}/$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' e2e/cluster/go.mod)/bin"
if [ "${TEST_CLUSTER:-1}" = 0 ]; then
  cluster="not run (TEST_CLUSTER=0: .ci/run runs the whole real-cluster suite afterwards)"
elif pgrep -x kube-apiserver >/dev/null 2>&1 || pgrep -x kubelet >/dev/null 2>&1; then
  cluster="not run (a cluster is already running on this machine)"
elif [ "$(id -u)" = 0 ] && [ -x "$k8s_bin/kubelet" ] && [ -x "$k8s_bin/kube-apiserver" ]; then
  echo "== the real cluster, briefly: e2e/cluster.sh smoke pipeline"
  e2e/cluster.sh smoke pipeline 2>&1 | tee "$log/cluster.log"
  cluster="$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$log/cluster.log" | tail -n 1 || echo "no summary") (e2e/cluster.sh smoke pipeline)"
fi

stage="done"
took=$(( $(date +%s) - started ))
echo "test.sh: passed: $tests cargo tests, $checks e2e checks, fuzzing $fuzzed, real cluster $cluster; in $((took / 60)) min $((took % 60)) s"
