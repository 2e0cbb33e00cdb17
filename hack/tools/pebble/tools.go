//go:build tools

// Package tools pins Pebble, the ACME server the end-to-end tests issue from.
package tools

import _ "github.com/letsencrypt/pebble/v2/cmd/pebble"
