//go:build tools

// Package tools pins etcd for the tests' control plane. The etcd server module
// replaces its siblings with relative paths, so `go install` refuses it; this
// module requires the siblings at the same tag instead.
package tools

import _ "go.etcd.io/etcd/server/v3"
