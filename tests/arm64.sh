#!/usr/bin/env bash
# The root package's integration tests (tests/*.rs, tests/hardening) against the arm64 binary, run
# by qemu-user through binfmt_misc: `make static TARGET=aarch64-unknown-linux-musl` (and baton-cel
# beside it), then `cargo test --test '*'` with BATON_TEST_BIN pointing at it (tests/common/under_test.rs).
# Tests that cannot pass emulated say why and check nothing (SKIPPED-EMULATED), or leave out the
# signals qemu-user does not carry (NARROWED-EMULATED); natively none is skipped.
#
# Installs what it needs on a Debian machine (tests/qemu-arm64.sh: qemu-user-static, binfmt_misc;
# make static: the Rust target and the cross linker; the test tools), as root.
# Ends with one line, "arm64: N passed, M failed, K skipped under emulation"; exits 1 on failure,
# 2 when emulation cannot be set up. Extra arguments go to cargo test (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'arm64.sh: %s\n' "$*" >&2; }
started=$(date +%s)
TARGET=aarch64-unknown-linux-musl
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/$TARGET/release/baton

tests/qemu-arm64.sh || exit 2
# What the tests run besides baton: strace, util-linux's setpriv, unshare, prlimit.
pkgs=()
for cmd_pkg in strace:strace setpriv:util-linux unshare:util-linux prlimit:util-linux file:file; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || pkgs+=("${cmd_pkg#*:}")
done
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

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
