// Command noopwebhook is the reference make bench compares `certbridge
// webhook`'s memory with: cert-manager's webhook server, the same library
// and version, serving a solver named cloudflare that does nothing. It takes
// the chart's webhook arguments and ignores certbridge's own flags, so the
// harness starts it exactly as it starts certbridge.
//
//	noopwebhook webhook --group-name=GROUP [cert-manager's webhook server flags] [certbridge's flags, ignored]
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd"
	"k8s.io/client-go/rest"
)

// certbridgeOnly are the flags of `certbridge webhook` that cert-manager's
// server does not know.
var certbridgeOnly = []string{"--group-name", "--cloudflare-", "--alidns-", "--alibaba-", "--metrics-bind-address", "--solver-timeout", "--peer"}

func main() {
	var group string
	args := []string{os.Args[0]}
	for _, a := range os.Args[1:] {
		if a == "webhook" {
			continue
		}
		if v, ok := strings.CutPrefix(a, "--group-name="); ok {
			group = v
		}
		if !hasAnyPrefix(a, certbridgeOnly) {
			args = append(args, a)
		}
	}
	if group == "" {
		fmt.Fprintln(os.Stderr, "noopwebhook: no --group-name=")
		os.Exit(2)
	}
	os.Args = args
	cmd.RunWebhookServer(group, noop{})
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// noop answers every challenge with success and writes nothing.
type noop struct{}

func (noop) Name() string                                   { return "cloudflare" }
func (noop) Present(*v1alpha1.ChallengeRequest) error       { return nil }
func (noop) CleanUp(*v1alpha1.ChallengeRequest) error       { return nil }
func (noop) Initialize(*rest.Config, <-chan struct{}) error { return nil }
