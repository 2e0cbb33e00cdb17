//go:build tools

// Package tools pins helm for the chart's tests (lint, template, the
// server-side dry run); the Makefile builds it into the cache.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
