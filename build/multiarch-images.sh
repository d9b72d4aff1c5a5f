#!/usr/bin/env bash
# The release images for linux/amd64 and linux/arm64, each joined in a manifest list (podman manifest):
#   $PREFIX/baton:$VERSION           Dockerfile              scratch + baton
#   $PREFIX/baton-tekton:$VERSION    tekton.Containerfile    scratch + baton, baton-cel
#   $PREFIX/batonctl:$VERSION        batonctl.Containerfile  scratch + batonctl, the CA bundle
#   $PREFIX/argoexec-baton:$VERSION  argo.Containerfile      ARGO_UPSTREAM_IMAGE's image of each platform + baton
# Each platform's image is also tagged :$VERSION-amd64 / :$VERSION-arm64. The scratch images need no
# emulation to build (COPY only); the Argo one needs its upstream image for both platforms, local or
# pullable (quay.io/argoproj/argoexec is multi-arch); ARGO_UPSTREAM_IMAGE=none leaves it out.
# Publish with: podman manifest push --all $PREFIX/baton:$VERSION docker://REGISTRY/baton:$VERSION
#
# Builds the binaries first (release, musl, static; Debian's musl-tools and gcc-aarch64-linux-gnu for
# ring's C code in batonctl), in a temp build context, never the repository (target/ is large).
# Environment: PREFIX (default localhost), VERSION (default 0.1.0: the tags the e2e suites use, so
# pick another on a shared machine), ARGO_UPSTREAM_IMAGE (default quay.io/argoproj/argoexec:v4.1.2).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'multiarch-images.sh: %s\n' "$*" >&2; }
export CONTAINERS_CONF=$PWD/e2e/containers.conf
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PREFIX=${PREFIX:-localhost}
VERSION=${VERSION:-0.1.0}
ARGO_UPSTREAM_IMAGE=${ARGO_UPSTREAM_IMAGE:-quay.io/argoproj/argoexec:v4.1.2}
# platform=Rust target=C compiler for ring (batonctl)
PLATFORMS=(amd64=x86_64-unknown-linux-musl=musl-gcc arm64=aarch64-unknown-linux-musl=aarch64-linux-gnu-gcc)

pkgs=()
command -v musl-gcc >/dev/null 2>&1 || pkgs+=(musl-tools)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || pkgs+=(gcc-aarch64-linux-gnu)
command -v podman >/dev/null 2>&1 || pkgs+=(podman runc)
command -v jq >/dev/null 2>&1 || pkgs+=(jq)
[ -f /etc/ssl/certs/ca-certificates.crt ] || pkgs+=(ca-certificates)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

say "building the binaries (make static; baton-cel; batonctl) for ${PLATFORMS[*]}"
make --no-print-directory static >&2
ctx=$(mktemp -d "${TMPDIR:-/tmp}/baton-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
for p in "${PLATFORMS[@]}"; do
  IFS== read -r arch triple cc <<<"$p"
  cargo build --quiet --release --target "$triple" --bin baton-cel
  env "CC_${triple//-/_}=$cc" cargo build --quiet --release --target "$triple" -p baton-controller --bin batonctl
  mkdir -p "$ctx/$arch"
  for bin in baton baton-cel batonctl; do cp "$CARGO_TARGET_DIR/$triple/release/$bin" "$ctx/$arch/"; done
done

# image NAME FILE ARGS...: builds FILE for each platform, then the manifest list NAME:VERSION of them.
image() {
  local name=$1 file=$2 arch ref list
  shift 2
  list="$PREFIX/$name:$VERSION"
  # A list (or image) left by an earlier run under the same name.
  podman manifest rm "$list" >/dev/null 2>&1 || podman untag "$list" >/dev/null 2>&1 || true
  podman manifest create "$list" >/dev/null
  for p in "${PLATFORMS[@]}"; do
    arch=${p%%=*}
    ref="$list-$arch"
    # ARCH in the build arguments: this platform's folder of the context.
    podman build -q --platform "linux/$arch" -f "$file" "${@//ARCH/$arch}" -t "$ref" "$ctx" >/dev/null
    podman manifest add "$list" "containers-storage:$ref" >/dev/null
    say "$ref: $(podman image inspect "$ref" --format '{{.Os}}/{{.Architecture}}, {{.Size}} bytes')"
  done
  say "$list: manifest list of $(podman manifest inspect "$list" | jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(", ")')"
}

image baton Dockerfile --build-arg BATON_BIN=ARCH/baton
image baton-tekton tekton.Containerfile --build-arg BATON_BIN=ARCH/baton --build-arg CEL_BIN=ARCH/baton-cel
image batonctl batonctl.Containerfile --build-arg BATONCTL_BIN=ARCH/batonctl --build-arg CA_BUNDLE=ca-certificates.crt
if [ "$ARGO_UPSTREAM_IMAGE" = none ]; then
  say "argoexec-baton: left out (ARGO_UPSTREAM_IMAGE=none)"
else
  image argoexec-baton argo.Containerfile --build-arg BATON_BIN=ARCH/baton --build-arg "UPSTREAM_IMAGE=$ARGO_UPSTREAM_IMAGE"
fi
