#!/usr/bin/env bash
# Runs every test of baton: unit and integration tests of the workspace, then the e2e suite in real
# containers (podman). Installs what the tests need on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")"

need_pkgs=()
for cmd_pkg in podman:podman runc:runc busybox:busybox-static setpriv:util-linux unshare:util-linux file:file; do
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

echo "== static binary"
make --no-print-directory static

echo "== e2e (podman)"
e2e/run.sh
echo "== e2e: Tekton-shaped TaskRun pod (podman)"
e2e/tekton.sh
