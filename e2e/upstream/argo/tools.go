//go:build tools

// Package tools pins upstream Argo Workflows' executor, argoexec, which e2e/upstream/build-argoexec builds
// for e2e/argo-upstream.sh to run side by side with baton, and its workflow-controller, which
// e2e/upstream/build-workflow-controller builds for e2e/argo-controller.sh to drive baton's executor image on
// a real cluster. Test peers only: never shipped, never in an image of the project's. The Go module proxy
// marks v4.0.5 as having reported security flaws; that does not matter for binaries that run only in local
// tests against baton.
package tools

import (
	_ "github.com/argoproj/argo-workflows/v4/cmd/argoexec"
	_ "github.com/argoproj/argo-workflows/v4/cmd/workflow-controller"
)
