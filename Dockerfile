# The baton image: nothing but the static binary, at /baton.
#
# It runs as the init container of a pod and copies itself into the shared emptyDir:
#     command: ["/baton", "init", "--dir", "/var/run/baton"]
# and every step container then runs /var/run/baton/bin/baton, whatever its own image holds.
#
# Build (no network: the binary comes from the project's own static build, as ko and goreleaser do):
#     make static
#     podman build -t localhost/baton:0.1.0 .        # or: docker build -t ... .
# Another binary (another target, a downloaded release): --build-arg BATON_BIN=path/in/context
FROM scratch

ARG BATON_BIN=target/x86_64-unknown-linux-musl/release/baton
ARG VERSION=0.1.0

LABEL org.opencontainers.image.title="baton" \
      org.opencontainers.image.description="In-pod entrypoint for workflow steps: wait, run, forward signals, reap, report. Run '/baton init' in an init container." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# --chmod needs BuildKit or buildah; the build keeps the mode the static build gave (0755).
COPY ${BATON_BIN} /baton

# Non-root by default (the "nonroot" UID of distroless); baton init needs only a writable emptyDir.
USER 65532:65532
ENTRYPOINT ["/baton"]
CMD ["init", "--dir", "/var/run/baton"]
