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

// Quote is Truncate(s) as a Go-quoted string.
func Quote(s string) string { return strconv.Quote(Truncate(s)) }
