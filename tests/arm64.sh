#!/usr/bin/env bash
# The root package's integration tests (tests/*.rs, tests/hardening) against the arm64 binary, run
# by qemu-user through binfmt_misc: `make static TARGET=aarch64-unknown-linux-musl` (and baton-cel
# beside it), then `cargo test --test '*'` with BATON_TEST_BIN pointing at it (tests/common/under_test.rs).
# Tests that cannot pass emulated say why and check nothing (SKIPPED-EMULATED), or leave out the
# signals qemu-user does not carry (NARROWED-EMULATED); natively none is skipped.
#
# Installs what it needs on a Debian machine (qemu-user-static, binfmt-support, the cross linker,
# the test tools) and registers qemu-aarch64 with binfmt_misc (root; mounts it when it is not).
# Ends with one line, "arm64: N passed, M failed, K skipped under emulation"; exits 1 on failure,
# 2 when emulation cannot be set up. Extra arguments go to cargo test (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'arm64.sh: %s\n' "$*" >&2; }
started=$(date +%s)
TARGET=aarch64-unknown-linux-musl
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/$TARGET/release/baton

# What the tests run besides baton: strace, util-linux's setpriv, unshare, prlimit; and qemu.
pkgs=()
for cmd_pkg in qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
    aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu strace:strace setpriv:util-linux unshare:util-linux \
    prlimit:util-linux file:file; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || pkgs+=("${cmd_pkg#*:}")
done
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

# binfmt_misc: the kernel hands every arm64 ELF to qemu-aarch64-static (flags F and P: it works
# in containers and chroots, and argv[0] is kept).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || { say "cannot mount binfmt_misc (needs root on the host, not in an unprivileged container)"; exit 2; }
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || update-binfmts --enable qemu-aarch64 \
  || { say "cannot register qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64)"; exit 2; }

say "building the arm64 binaries (make static TARGET=$TARGET; baton-cel)"
make --no-print-directory static TARGET=$TARGET >&2
cargo build --quiet --release --target $TARGET --bin baton-cel
"$BIN" --version >/dev/null 2>&1 || { say "$BIN does not run: binfmt_misc has no working qemu-aarch64 entry"; exit 2; }
say "$BIN runs under $(qemu-aarch64-static --version | head -1)"

log=$(mktemp "${TMPDIR:-/tmp}/baton-arm64.XXXXXX")
trap 'rm -f "$log"' EXIT
say "cargo test -p baton --test '*' with BATON_TEST_BIN=$BIN"
set +e
BATON_TEST_BIN=$BIN cargo test -p baton --locked --test '*' --no-fail-fast "$@" -- --show-output >"$log" 2>&1
rc=$?
set -e

# Failures in full; then every test that checked less under emulation, with the reason.
if [ $rc -ne 0 ]; then
  sed -n '/^failures:$/,/^test result: FAILED/p' "$log"
  grep -E '^error' "$log" || true
fi
grep -ho '^\(SKIPPED\|NARROWED\)-EMULATED .*' "$log" | sort -u >&2 || true
passed=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '; [0-9]+ failed' "$log" | awk '{s += $2} END {print s + 0}')
skipped=$(grep -o '^SKIPPED-EMULATED [^:]*' "$log" | sort -u | wc -l)
narrowed=$(grep -o '^NARROWED-EMULATED [^:]*' "$log" | sort -u | wc -l)
# A build error or a crashed test binary reports no count: never a pass.
[ $rc -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "arm64: $((passed - skipped)) passed, $failed failed, $skipped skipped under emulation" \
  "($narrowed passed without the signals qemu-user does not carry); $(( $(date +%s) - started )) s"
[ $rc -eq 0 ]
