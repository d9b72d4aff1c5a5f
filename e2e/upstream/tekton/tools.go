//go:build tools

// Package tools pins upstream Tekton's entrypoint, which e2e/upstream/build-tekton-entrypoint builds,
// so go.sum covers it.
package tools

import (
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
)
