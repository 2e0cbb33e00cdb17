package dnstxt

import (
	"strings"
	"testing"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

// What the solver writes it must read back: Value(Quote(v)) is v for every
// byte string (quotes, backslashes, invalid UTF-8 and all), and Quote's
// character-strings are the 255-byte pieces of v in order, since a longer
// one is no DNS character-string.
func FuzzQuote(f *testing.F) {
	for _, seed := range []string{"", "abc", `"`, `\`, `\"`, `a" "b`, "\x00\xff", "é",
		strings.Repeat("x", 255), strings.Repeat(`"`, 256), strings.Repeat(`\`, 300) + "z"} {
		fuzzseed.Add(f, seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		q := Quote(v)
		if got := Value(q); got != v {
			t.Fatalf("Value(Quote(%q)) = %q", v, got)
		}
		parts, ok := Split(q)
		if !ok {
			t.Fatalf("Split(Quote(%q)) refused %s", v, q)
		}
		want := chunk(v)
		if len(parts) != len(want) {
			t.Fatalf("Quote(%q) has %d strings, want %d", v, len(parts), len(want))
		}
		for i, p := range parts {
			if len(p) > 255 || p != want[i] {
				t.Fatalf("string %d of Quote(%q) is %d bytes %q, want the 255-byte piece %q", i, v, len(p), p, want[i])
			}
		}
	})
}

// Content another client wrote (CleanUp reads every record at a name) never
// makes Split panic or yield a string longer than 255 bytes; what it reads
// it can write back and read again unchanged.
func FuzzSplit(f *testing.F) {
	for _, seed := range []string{"", `""`, `"abc"`, `"ab" "cd"`, `"a\"b"`, `"abc`, `"ab" cd`, `"a\`, `"\\"`, "bare value", `  "a"  `, `"a"   "b"`} {
		fuzzseed.Add(f, seed)
	}
	f.Fuzz(func(t *testing.T, content string) {
		parts, ok := Split(content)
		if !ok {
			if Value(content) != content {
				t.Fatalf("Value of refused content %q is %q, want it unchanged", content, Value(content))
			}
			return
		}
		for i, p := range parts {
			if len(p) > 255 {
				t.Fatalf("Split(%q): string %d is %d bytes", content, i, len(p))
			}
		}
		v := Value(content)
		if v != strings.Join(parts, "") {
			t.Fatalf("Value(%q) = %q, not its strings joined", content, v)
		}
		if again := Value(Quote(v)); again != v {
			t.Fatalf("%q reads %q, written back it reads %q", content, v, again)
		}
	})
}
