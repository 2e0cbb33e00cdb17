//go:build tools

// Package tools pins controller-gen, which generates the issuer's CRDs and
// deepcopy functions (make generate; make verify checks they are current).
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
