package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/certbridge/certbridge/check"
)

func newCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Tell why a credential does not work, before creating a Certificate",
	}
	creds := &cobra.Command{
		Use:   "credentials",
		Short: "Check cloud credentials taken from environment variables; no cluster needed",
	}
	var output string
	report := func(cmd *cobra.Command, r check.Report) error {
		var err error
		switch output {
		case "json":
			err = r.WriteJSON(cmd.OutOrStdout())
		case "", "text":
			err = r.WriteText(cmd.OutOrStdout())
		default:
			return fmt.Errorf("-o %s: use text or json", output)
		}
		if err != nil {
			return err
		}
		if !r.Passed() {
			return errors.New("some checks failed; each ✗ line says what to change")
		}
		return nil
	}
	var cf check.CloudflareOptions
	cloudflare := &cobra.Command{
		Use:   "cloudflare",
		Short: "Check CLOUDFLARE_API_TOKEN (or CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return report(cmd, check.CloudflareCredentials(cmd.Context(), os.Getenv, cf))
		},
	}
	cloudflare.Flags().StringSliceVar(&cf.Zones, "zone", nil, "zones the credential must see (repeatable)")
	cloudflare.Flags().BoolVar(&cf.WriteTest, "write-test", false, "also create and delete a uniquely named TXT record in each zone")
	cloudflare.Flags().StringVar(&cf.BaseURL, "cloudflare-api-url", "", "Cloudflare API base URL (default production)")
	var ali check.AliDNSOptions
	alidns := &cobra.Command{
		Use:   "alidns",
		Short: "Check ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (+ ALIBABA_CLOUD_SECURITY_TOKEN)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return report(cmd, check.AliDNSCredentials(cmd.Context(), os.Getenv, ali))
		},
	}
	alidns.Flags().StringSliceVar(&ali.Domains, "domain", nil, "domains that must be in the account (repeatable)")
	alidns.Flags().BoolVar(&ali.WriteTest, "write-test", false, "also add and delete a uniquely named TXT record in each domain")
	alidns.Flags().StringVar(&ali.Endpoint, "alidns-endpoint", "", "Alibaba Cloud DNS endpoint (default alidns.aliyuncs.com)")
	creds.PersistentFlags().StringVarP(&output, "output", "o", "text", "text or json")
	creds.AddCommand(cloudflare, alidns)
	cmd.AddCommand(creds)
	return cmd
}
