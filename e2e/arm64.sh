#!/usr/bin/env bash
# The podman e2e suite (e2e/run.sh, every scenario) on arm64 images, in real containers: the baton
# image built for linux/arm64 from the arm64 binary (make static), so that baton-init
# and every step's `baton run` are arm64 code, run by qemu-user through binfmt_misc
# (tests/qemu-arm64.sh). The steps' own commands are the step image's busybox, this machine's
# (Debian's arm64 busybox would need `dpkg --add-architecture arm64` on the machine).
# Own tags (localhost/baton:arm64-e2e, localhost/busybox-step:arm64-e2e): the default ones stay as
# they are. Scenario names may be given (e2e/run.sh lists them); `e2e/arm64.sh image pipeline` is
# the short run. Handoffs may take up to HANDOFF_MS=500 (100 natively): qemu translates the
# waiter's code as it first runs it (measured here: up to 160 ms while other builds ran); the run
# checks behaviour, not speed.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/qemu-arm64.sh || exit 2
export BATON_TARGET=aarch64-unknown-linux-musl
export BATON_IMAGE=${BATON_IMAGE:-localhost/baton:arm64-e2e}
export STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:arm64-e2e}
export BATONCTL=${BATONCTL:-none}   # the harness's own reader: batonctl runs on the host, not in the pod
export HANDOFF_MS=${HANDOFF_MS:-500}
exec e2e/run.sh "$@"
