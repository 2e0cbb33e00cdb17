package input

import (
	"strconv"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     string // whole quotation, or
		prefix   string // its start, and
		suffix   string // its end
		maxBytes int
	}{
		{name: "short strings are quoted whole", in: "apiTokenSecretRef", want: `"apiTokenSecretRef"`},
		{name: "quotes and control characters are escaped", in: "a\"b\n", want: `"a\"b\n"`},
		{
			name: "a long string is cut to 100 characters and says its length", in: strings.Repeat("x", 150),
			want: strconv.Quote(strings.Repeat("x", 100) + "… (150 characters)"),
		},
		{
			name: "escapes do not make a quotation longer than 300 bytes", in: strings.Repeat("\U0010ffff", 150),
			prefix: `"\U0010ffff`, suffix: `… (150 characters)"`, maxBytes: MaxQuotedBytes,
		},
		{
			name: "a short string of escapes is cut too, and says its length", in: strings.Repeat("\x01", 90),
			prefix: `"\x01`, suffix: `… (90 characters)"`, maxBytes: MaxQuotedBytes,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Quote(tt.in)
			if tt.want != "" && got != tt.want {
				t.Fatalf("Quote = %s, want %s", got, tt.want)
			}
			if !strings.HasPrefix(got, tt.prefix) || !strings.HasSuffix(got, tt.suffix) {
				t.Errorf("Quote = %s, want it to start %s and end %s", got, tt.prefix, tt.suffix)
			}
			if tt.maxBytes > 0 && len(got) > tt.maxBytes {
				t.Errorf("Quote is %d bytes, want at most %d", len(got), tt.maxBytes)
			}
			if _, err := strconv.Unquote(got); err != nil {
				t.Errorf("Quote = %s does not unquote: %v", got, err)
			}
		})
	}
}
