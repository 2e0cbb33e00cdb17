package testutil

import (
	"encoding/base64"
	"strings"
)

// LeakForms are the forms a secret value must not appear in: itself and
// trimmed (a Secret value is used trimmed), its base64 in each encoding (how
// a Secret object prints its data), and the first 8 characters of the value
// and of its base64 (a "partial" value in a log line is still a leak).
func LeakForms(v string) []string {
	var out []string
	for _, s := range []string{v, strings.TrimSpace(v)} {
		if s == "" {
			continue
		}
		out = append(out, s, s[:min(8, len(s))])
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			b := enc.EncodeToString([]byte(s))
			out = append(out, b, b[:min(8, len(b))])
		}
	}
	return out
}

// FindLeak returns the first of values found in text in one of its
// LeakForms, and that form.
func FindLeak(values []string, text string) (value, form string, found bool) {
	for _, v := range values {
		for _, f := range LeakForms(v) {
			if strings.Contains(text, f) {
				return v, f, true
			}
		}
	}
	return "", "", false
}
