//go:build tools

// Package tools pins the Kubernetes control-plane binaries the tests run.
// k8s.io/kubernetes replaces its staging modules with local paths, so it cannot
// be installed with `go install`; this module replaces each with its published tag.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
