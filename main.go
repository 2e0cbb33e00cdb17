// Command certbridge connects cert-manager to Cloudflare and Alibaba Cloud.
package main

import (
	"os"

	"github.com/certbridge/certbridge/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
