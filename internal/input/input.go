// Package input holds the rules for repeating what a user wrote back to
// them: cut to MaxQuoted characters, so that a huge or hostile value never
// floods a message, a Challenge's status or a log line.
package input

import (
	"strconv"
	"unicode/utf8"
)

// MaxQuoted is how many characters of a user's string a message repeats.
const MaxQuoted = 100

// Truncate is s cut to MaxQuoted characters, "…" and the full length
// marking a cut.
func Truncate(s string) string {
	if utf8.RuneCountInString(s) <= MaxQuoted {
		return s
	}
	r := []rune(s)
	return string(r[:MaxQuoted]) + "… (" + strconv.Itoa(len(r)) + " characters)"
}

// MaxQuotedBytes bounds a quotation's bytes: a character that is not
// printable quotes as up to 10 bytes (\U0010ffff), so 100 of them would
// take a kilobyte.
const MaxQuotedBytes = 3 * MaxQuoted

// Quote is Truncate(s) as a Go-quoted string, cut further while its
// escapes make it longer than MaxQuotedBytes.
func Quote(s string) string {
	q := strconv.Quote(Truncate(s))
	if len(q) <= MaxQuotedBytes {
		return q
	}
	r := []rune(s)
	keep := min(len(r), MaxQuoted)
	for ; keep > 0; keep-- {
		q = strconv.Quote(string(r[:keep]) + "… (" + strconv.Itoa(len(r)) + " characters)")
		if len(q) <= MaxQuotedBytes {
			break
		}
	}
	return q
}
