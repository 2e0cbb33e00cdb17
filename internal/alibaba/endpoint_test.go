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
