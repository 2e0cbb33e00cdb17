package dnsname

import (
	"strings"
	"testing"
)

func TestNormalizeLimits(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat("a", 61) + "." + strings.Repeat("b", 61) + "." + strings.Repeat("c", 61) + "." + strings.Repeat("d", 59) + ".example"
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "a label of 63 characters is a label", in: label63 + ".example.com.", want: label63 + ".example.com"},
		{name: "a label of 64 is not", in: "_acme-challenge." + label63 + "a.example.com", wantErr: "label 2 is 64 characters long; DNS allows 63"},
		{name: "a name of 253 characters is a name", in: name253 + ".", want: name253},
		{name: "a name of 254 is not", in: "a" + name253, wantErr: "the name is 254 characters long; DNS allows 253"},
		{name: "punycode counts as written to DNS", in: strings.Repeat("ü", 60) + ".example", wantErr: "label 1 is"},
	}
	if len(name253) != 253 {
		t.Fatalf("the test's name is %d characters", len(name253))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Normalize: %q, %v; want an error starting %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestJoinTried(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{name: "none", want: ""},
		{name: "up to four are listed", names: Parents("_acme-challenge.a.b.c.example.com"), want: "a.b.c.example.com, b.c.example.com, c.example.com, example.com"},
		{name: "more are summed up with the first two and the last", names: Parents("_acme-challenge.a.b.c.d.example.com"),
			want: "a.b.c.d.example.com, b.c.d.example.com, …, example.com (5 names)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JoinTried(tt.names); got != tt.want {
				t.Errorf("JoinTried = %q, want %q", got, tt.want)
			}
		})
	}
	// The longest name there is, of one-letter labels, stays short.
	long := strings.Repeat("a.", 125) + "com"
	if got := JoinTried(Parents(long)); len(got) > 3*MaxName+40 {
		t.Errorf("JoinTried of a %d-label name is %d bytes", strings.Count(long, ".")+1, len(got))
	}
}

// Providers answer with names in Unicode or in punycode, in any case;
// messages name an internationalised name both ways.
func TestASCIIAndDisplay(t *testing.T) {
	tests := []struct {
		name, in, ascii, display string
	}{
		{name: "Chinese domain in Unicode", in: "例子.中国", ascii: "xn--fsqu00a.xn--fiqs8s", display: "例子.中国 (xn--fsqu00a.xn--fiqs8s)"},
		{name: "Chinese domain in punycode", in: "xn--fsqu00a.xn--fiqs8s", ascii: "xn--fsqu00a.xn--fiqs8s", display: "例子.中国 (xn--fsqu00a.xn--fiqs8s)"},
		{name: "Chinese label under an ASCII domain", in: "_acme-challenge.商店.Example.com.", ascii: "_acme-challenge.xn--czrs0t.example.com",
			display: "_acme-challenge.商店.example.com (_acme-challenge.xn--czrs0t.example.com)"},
		{name: "mixed case ASCII", in: "WWW.Example.COM", ascii: "www.example.com", display: "www.example.com"},
		{name: "mixed case punycode", in: "XN--FSQU00A.XN--FIQS8S", ascii: "xn--fsqu00a.xn--fiqs8s", display: "例子.中国 (xn--fsqu00a.xn--fiqs8s)"},
		{name: "not a name: kept, lower case", in: "a..B", ascii: "a..b", display: "a..b"},
		{name: "broken punycode shown as it is", in: "xn--a.example", ascii: "xn--a.example", display: "xn--a.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ascii := ASCII(tt.in)
			if ascii != tt.ascii {
				t.Errorf("ASCII(%q) = %q, want %q", tt.in, ascii, tt.ascii)
			}
			if got := Display(ascii); got != tt.display {
				t.Errorf("Display(%q) = %q, want %q", ascii, got, tt.display)
			}
		})
	}
}
