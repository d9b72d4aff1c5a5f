#!/usr/bin/env bash
# Runs every test of baton: unit and integration tests of the workspace, then the e2e suite in real
# containers (podman). Installs what the tests need on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")"

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

echo "== cargo test (workspace)"
cargo test --workspace --locked

echo "== fuzz targets (crates/baton-controller/fuzz)"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "test.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked -q || true
fi
if command -v cargo-fuzz >/dev/null 2>&1; then
  # cargo-fuzz passes nightly flags (sanitizer coverage); RUSTC_BOOTSTRAP lets stable accept them.
  ( cd crates/baton-controller/fuzz
    RUSTC_BOOTSTRAP=1 cargo fuzz build -O
    log=$(mktemp)
    for target in message pod; do
      if ! RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" -- -max_total_time=10 > "$log" 2>&1; then
        tail -40 "$log"; echo "fuzz target $target failed (crash input under fuzz/artifacts/$target)" >&2; exit 1
      fi
      echo "fuzz $target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log")"
    done
    rm -f "$log" )
else
  echo "test.sh: cargo-fuzz is not available: compile-checking the fuzz targets only"
  cargo check --manifest-path crates/baton-controller/fuzz/Cargo.toml
fi

echo "== static binary"
make --no-print-directory static

echo "== e2e (podman)"
e2e/run.sh
echo "== e2e: Tekton-shaped TaskRun pod (podman)"
e2e/tekton.sh
echo "== registry: batonctl inject reads ENTRYPOINT/CMD from docker-registry"; crates/baton-controller/tests/registry.sh
