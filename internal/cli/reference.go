package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// FlagReference is one command's own flags, as docs/configuration.md
// tabulates them (hack/flagdoc).
type FlagReference struct {
	// Command is the command line that takes them, "certbridge webhook".
	Command string
	Flags   *pflag.FlagSet
}

// Reference lists every command's own flags: certbridge's, not those of
// the libraries it mounts (cert-manager's webhook server, klog).
func Reference() []FlagReference {
	webhook := pflag.NewFlagSet("webhook", pflag.ContinueOnError)
	var f webhookFlags
	f.add(webhook)
	out := []FlagReference{{Command: "certbridge webhook", Flags: webhook}}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "webhook" && c.Runnable() && c.HasAvailableLocalFlags() {
			out = append(out, FlagReference{Command: c.CommandPath(), Flags: c.LocalFlags()})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
	return out
}
