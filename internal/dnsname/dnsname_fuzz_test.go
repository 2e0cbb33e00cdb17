package dnsname

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

// maxErrorLen bounds Normalize's error: it is quoted into the solver's
// answer to cert-manager, so it may name a label's position, never repeat
// a name of any length.
const maxErrorLen = 200

// Normalize is what every ChallengeRequest's resolvedFQDN goes through: for
// any string it returns a name that is lower case, ASCII, without trailing
// dot or empty label, that DNS can carry, and that Normalize leaves as it
// is — or an error of bounded size. A string that is not UTF-8 is refused.
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{"_acme-challenge.example.com.", "_ACME-Challenge.Example.COM", "example.com..", ".", "", "a..b",
		"_acme-challenge.bücher.example.", "xn--bcher-kva.example", "xn--.example", "ÉCOLE.fr", "\u212a.example", "İ.example",
		"a\x80b.example", "xn--é.example", strings.Repeat("ü", 300) + ".example", "xn--" + strings.Repeat("é", 150) + ".example",
		strings.Repeat("a", 63) + ".example", strings.Repeat("a", 64) + ".example", strings.Repeat("ü", 56) + ".example",
		strings.Repeat("abcdefg.", 30) + "example", strings.Repeat("abcdefg.", 31) + "example"} {
		fuzzseed.Add(f, seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := Normalize(name)
		if err == nil && !utf8.ValidString(name) {
			// Its invalid bytes would be read as U+FFFD, and the record
			// written at another name than the one asked for.
			t.Fatalf("Normalize(%q) = %q: a name that is not UTF-8 was accepted", name, out)
		}
		if err != nil {
			if n := len(err.Error()); n > maxErrorLen {
				t.Fatalf("Normalize(%q): a %d-byte error: %v", name, n, err)
			}
			return
		}
		if out == "" || strings.HasSuffix(out, ".") || strings.Contains(out, "..") || strings.HasPrefix(out, ".") {
			t.Fatalf("Normalize(%q) = %q: empty, trailing dot or empty label", name, out)
		}
		if len(out) > MaxName {
			t.Fatalf("Normalize(%q) = a name of %d characters, which DNS cannot carry", name, len(out))
		}
		for _, l := range strings.Split(out, ".") {
			if len(l) > MaxLabel {
				t.Fatalf("Normalize(%q) = %q: a label of %d characters, which DNS cannot carry", name, out, len(l))
			}
		}
		if out != strings.ToLower(out) || !isASCII(out) {
			t.Fatalf("Normalize(%q) = %q: not lower-case ASCII", name, out)
		}
		if isASCII(name) && out != Canonical(name) {
			t.Fatalf("Normalize(%q) = %q, want Canonical's %q for an ASCII name", name, out, Canonical(name))
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("Normalize is not idempotent: %q → %q → %q, %v", name, out, again, err)
		}
	})
}
