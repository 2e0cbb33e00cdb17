//go:build tools

// Package tools pins the Kubernetes binaries the tests run: the control plane
// and, for the local node, kubelet and kube-proxy.
// k8s.io/kubernetes replaces its staging modules with local paths, so it cannot
// be installed with `go install`; this module replaces each with its published tag.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
