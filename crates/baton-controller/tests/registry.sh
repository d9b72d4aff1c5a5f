#!/usr/bin/env bash
# The registry path of `batonctl inject`, against a real registry: Debian's docker-registry on a
# loopback port in a temporary folder, three images built locally and pushed with podman (one with
# ENTRYPOINT + CMD, one with CMD only, one multi-platform index), then the ignored tests of
# tests/inject.rs that read them (INJECT_REGISTRY=127.0.0.1:PORT).
#
# Skips (exit 0, saying so) only when Debian's docker-registry package cannot be installed.
# Run from anywhere: crates/baton-controller/tests/registry.sh
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$REPO"
export CONTAINERS_CONF="$REPO/e2e/containers.conf"
say() { printf 'registry.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

install() {
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

if ! command -v docker-registry >/dev/null 2>&1; then
  say "installing Debian's docker-registry package (apt-get install docker-registry)"
  if ! command -v apt-get >/dev/null 2>&1 || ! install docker-registry || ! command -v docker-registry >/dev/null 2>&1; then
    say "SKIP: Debian's docker-registry package cannot be installed here: the registry path of batonctl inject was NOT tested"
    exit 0
  fi
fi
if ! command -v podman >/dev/null 2>&1; then
  say "installing podman and runc (apt-get install podman runc)"
  install podman runc || die "podman cannot be installed; it builds and pushes the test images"
fi

work=$(mktemp -d /tmp/inject-registry.XXXXXX)
registry_pid=""
list=""
images=()
cleanup() {
  if [ -n "$registry_pid" ]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
  fi
  [ -z "$list" ] || podman manifest rm "$list" >/dev/null 2>&1 || true
  [ ${#images[@]} -eq 0 ] || podman rmi -f "${images[@]}" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port: the first of a range that nothing answers on.
port=""
for p in $(seq 35170 35270); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || die "no free loopback port in 35170-35270"
addr="127.0.0.1:$port"

cat > "$work/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $addr
EOF
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
# The registry is ready when its API root answers (bounded: 10 s).
for _ in $(seq 100); do
  curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; die "docker-registry exited"; }
  sleep 0.1
done
curl -fsS "http://$addr/v2/" >/dev/null || { cat "$work/registry.log" >&2; die "docker-registry does not answer on $addr"; }
say "docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}') on $addr"

# Images from scratch: a file each, and the config under test. Nothing runs them.
mkdir -p "$work/ctx"
echo "not a program" > "$work/ctx/hello"
build() { # build TAG PLATFORM CONTAINERFILE-LINES...
  local tag=$1 platform=$2; shift 2
  printf '%s\n' "FROM scratch" "COPY hello /hello" "$@" > "$work/Containerfile"
  podman build -q --platform "$platform" -f "$work/Containerfile" -t "$tag" "$work/ctx" >/dev/null
  images+=("$tag")
}
build "$addr/inject/app:1" linux/amd64 'ENTRYPOINT ["/hello"]' 'CMD ["--greet", "world"]'
build "$addr/inject/cmd-only:1" linux/amd64 'CMD ["sh", "-c", "echo hi"]'
build "localhost/inject-multi:amd64" linux/amd64 'ENTRYPOINT ["/entry-amd64"]'
build "localhost/inject-multi:arm64" linux/arm64 'ENTRYPOINT ["/entry-arm64"]'
for tag in "$addr/inject/app:1" "$addr/inject/cmd-only:1"; do
  podman push -q --tls-verify=false "$tag" >/dev/null
done
list="localhost/inject-multi:list"
podman manifest create "$list" >/dev/null
# arm64 first: a client that took the first entry would get the wrong one on amd64.
podman manifest add "$list" containers-storage:localhost/inject-multi:arm64 >/dev/null
podman manifest add "$list" containers-storage:localhost/inject-multi:amd64 >/dev/null
podman manifest push -q --all --tls-verify=false "$list" "docker://$addr/inject/multi:1" >/dev/null
say "pushed inject/app:1, inject/cmd-only:1 and inject/multi:1 (linux/arm64 + linux/amd64)"

INJECT_REGISTRY=$addr cargo test -q -p baton-controller --test inject -- --ignored --test-threads=2
