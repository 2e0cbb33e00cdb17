package dnstxt

import (
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	long := strings.Repeat("a", 300)
	cases := []struct {
		name    string
		content string
		want    []string
		ok      bool
	}{
		{"bare", "abc", []string{"abc"}, true},
		{"quoted", `"abc"`, []string{"abc"}, true},
		{"several strings", `"ab" "cd"`, []string{"ab", "cd"}, true},
		{"escaped quote", `"a\"b"`, []string{`a"b`}, true},
		{"bare long value is cut at 255 bytes", long, []string{long[:255], long[255:]}, true},
		{"unterminated", `"abc`, nil, false},
		{"text between strings", `"ab" cd`, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Split(tc.content)
			if ok != tc.ok || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("Split(%q) = %q, %v; want %q, %v", tc.content, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"abc", `with "quotes" and \ backslash`, strings.Repeat("x", 600)} {
		if got := Value(Quote(v)); got != v {
			t.Errorf("Value(Quote(%q)) = %q", v, got)
		}
	}
	if Quote("abc") != `"abc"` {
		t.Errorf("Quote(abc) = %s", Quote("abc"))
	}
}
