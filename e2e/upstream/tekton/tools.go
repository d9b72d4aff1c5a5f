//go:build tools

// Package tools pins the commands of upstream Tekton that e2e/upstream/build-tekton-entrypoint builds
// (the entrypoint; the controller and the images it names, for e2e/tekton-controller.sh), so go.sum
// covers them.
package tools

import (
	_ "github.com/tektoncd/pipeline/cmd/controller"
	_ "github.com/tektoncd/pipeline/cmd/entrypoint"
	_ "github.com/tektoncd/pipeline/cmd/nop"
	_ "github.com/tektoncd/pipeline/cmd/sidecarlogresults"
	_ "github.com/tektoncd/pipeline/cmd/workingdirinit"
)
