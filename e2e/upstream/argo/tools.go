//go:build tools

// Package tools pins upstream Argo Workflows' executor, argoexec, which e2e/upstream/build-argoexec builds
// for e2e/argo-upstream.sh to run side by side with baton. Test peer only: never shipped, never in an image
// of the project's. The Go module proxy marks v4.0.5 as having reported security flaws; that does not
// matter for a binary that runs only in local test pods against baton.
package tools

import (
	_ "github.com/argoproj/argo-workflows/v4/cmd/argoexec"
)
