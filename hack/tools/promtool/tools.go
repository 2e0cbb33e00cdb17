//go:build tools

// Package tools pins promtool, which checks the chart's PrometheusRule with
// its own unit tests (make test).
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
