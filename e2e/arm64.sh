#!/usr/bin/env bash
# One example pod on arm64 images, in real containers: e2e/run.sh's `image` and `pipeline` scenarios
# with the baton image built for linux/arm64 from the arm64 binary (make static), so that baton-init
# and every step's `baton run` are arm64 code, run by qemu-user through binfmt_misc
# (tests/qemu-arm64.sh). The steps' own commands are the step image's busybox, this machine's
# (Debian's arm64 busybox would need `dpkg --add-architecture arm64` on the machine).
# Own tags (localhost/baton:arm64-e2e, localhost/busybox-step:arm64-e2e): the default ones stay as
# they are. Other scenario names may be given instead (see e2e/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/qemu-arm64.sh || exit 2
export BATON_TARGET=aarch64-unknown-linux-musl
export BATON_IMAGE=${BATON_IMAGE:-localhost/baton:arm64-e2e}
export STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:arm64-e2e}
export BATONCTL=${BATONCTL:-none}   # the harness's own reader: batonctl runs on the host, not in the pod
[ $# -gt 0 ] || set -- image pipeline
exec e2e/run.sh "$@"
