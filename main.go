// Command certbridge connects cert-manager to Cloudflare and Alibaba Cloud.
package main

import (
	"os"

	// make image's empty base has no CA bundle: the Mozilla roots compiled in
	// here are what the Cloudflare and Alibaba Cloud clients verify against
	// there. Go uses them only where the system has no roots of its own.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/certbridge/certbridge/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
