#!/usr/bin/env bash
# Makes this machine run arm64 (aarch64) ELF binaries: installs Debian's qemu-user-static and
# binfmt-support when missing, mounts binfmt_misc and registers qemu-aarch64 (flags F and P: it works
# inside containers, argv[0] is kept). Needs root on the host. Used by tests/arm64.sh and e2e/arm64.sh;
# exits 2, saying why, when the kernel cannot be set up (e.g. in an unprivileged container).
set -euo pipefail
say() { printf 'qemu-arm64.sh: %s\n' "$*" >&2; }
pkgs=()
command -v qemu-aarch64-static >/dev/null 2>&1 || pkgs+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || pkgs+=(binfmt-support)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || { say "cannot mount binfmt_misc (needs root on the host, not in an unprivileged container)"; exit 2; }
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || update-binfmts --enable qemu-aarch64 \
  || { say "cannot register qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64)"; exit 2; }
