package alibaba

import (
	"strings"
	"testing"
)

// One rule for every endpoint flag of the webhook, the issuer and check.
func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in   string
		want Endpoint
		err  string
	}{
		{"", Endpoint{}, ""},
		{"alidns.aliyuncs.com", Endpoint{"HTTPS", "alidns.aliyuncs.com"}, ""},
		{"127.0.0.1:38621", Endpoint{"HTTPS", "127.0.0.1:38621"}, ""},
		{"https://cas.aliyuncs.com/", Endpoint{"HTTPS", "cas.aliyuncs.com"}, ""},
		{"http://127.0.0.1:38621", Endpoint{"HTTP", "127.0.0.1:38621"}, ""},
		{"ftp://127.0.0.1", Endpoint{}, "--alidns-endpoint \"ftp://127.0.0.1\": the scheme must be http or https"},
		{"http://127.0.0.1/api", Endpoint{}, "without path or query"},
		{"http://127.0.0.1?x=1", Endpoint{}, "without path or query"},
		{"http://user:pw@host", Endpoint{}, "without path or query"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEndpoint("--alidns-endpoint", tc.in)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one holding %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("%+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckOIDCProviderARN(t *testing.T) {
	cases := []struct{ name, in, err string }{
		{"empty: not configured", "", ""},
		{"RRSA provider", "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789abcdef", ""},
		{"a role's ARN", "acs:ram::1234567890123456:role/dns", `--alibaba-oidc-provider-arn "acs:ram::1234567890123456:role/dns" is not an OIDC provider's ARN`},
		{"the issuer URL", "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c1", "is not an OIDC provider's ARN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOIDCProviderARN("--alibaba-oidc-provider-arn", tc.in)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("got %v, want %q", err, tc.err)
			}
		})
	}
}
