// Package dnsname normalises DNS names once, at the boundary, so that every
// later comparison is a plain string comparison.
package dnsname

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Canonical is name in lower case without a trailing dot, the form
// certbridge compares and the providers store names in.
func Canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// Normalize is Canonical with internationalised labels in punycode, as
// cert-manager sends them. Labels are otherwise kept as they are:
// "_acme-challenge" is no host name, and the providers accept it. A name
// that is not UTF-8 is refused: its invalid bytes would be read as U+FFFD,
// naming another name than the one given. So is one that DNS cannot carry:
// over MaxName characters, or with a label over MaxLabel, once in punycode.
func Normalize(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("not UTF-8")
	}
	name = Canonical(name)
	if name == "" {
		return "", fmt.Errorf("empty name")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "" {
			return "", fmt.Errorf("empty label")
		}
		if isASCII(l) {
			continue
		}
		a, err := idna.ToASCII(l)
		if err != nil {
			// idna's error repeats the whole label, of any length; the
			// caller quotes the name, cut.
			return "", fmt.Errorf("label %d is not a valid internationalised name", i+1)
		}
		labels[i] = strings.ToLower(a)
	}
	for i, l := range labels {
		if len(l) > MaxLabel {
			return "", fmt.Errorf("label %d is %d characters long; DNS allows %d", i+1, len(l), MaxLabel)
		}
	}
	if name = strings.Join(labels, "."); len(name) > MaxName {
		return "", fmt.Errorf("the name is %d characters long; DNS allows %d", len(name), MaxName)
	}
	return name, nil
}

// The longest label and name DNS carries (RFC 1035: 63 and 255 octets on
// the wire, which is 253 characters written without the trailing dot).
const (
	MaxLabel = 63
	MaxName  = 253
)

func isASCII(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

// Parents lists the names a zone holding name can have, nearest first:
// name's parents down to two labels. name itself is left out: a DNS01
// record name (_acme-challenge.…) is never a zone's apex.
func Parents(name string) []string {
	name = Canonical(name)
	var out []string
	for {
		_, parent, ok := strings.Cut(name, ".")
		if !ok || !strings.Contains(parent, ".") {
			return out
		}
		out = append(out, parent)
		name = parent
	}
}

// IsSubdomain reports whether name is zone or below it.
func IsSubdomain(name, zone string) bool {
	name, zone = Canonical(name), Canonical(zone)
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// Relative is name relative to zone ("@" for the apex), as the Alibaba
// API's RR field wants it.
func Relative(name, zone string) string {
	name, zone = Canonical(name), Canonical(zone)
	if name == zone {
		return "@"
	}
	return strings.TrimSuffix(name, "."+zone)
}

// ASCII is Normalize, or, for a name Normalize refuses, Canonical: for
// comparing names a provider returned, which are not the user's to fix.
func ASCII(name string) string {
	if n, err := Normalize(name); err == nil {
		return n
	}
	return Canonical(name)
}

// Display is how messages name a DNS name: an internationalised one as
// people write it and in punycode, as DNS carries it ("例子.中国
// (xn--fsqu00a.xn--fiqs8s)"); any other name as it is.
func Display(name string) string {
	labels := strings.Split(name, ".")
	changed := false
	for i, l := range labels {
		if !strings.HasPrefix(l, "xn--") {
			continue
		}
		// Lookup's rules, label by label: "_acme-challenge" is no host
		// name, and a label that does not decode to one is shown as sent.
		if u, err := idna.Lookup.ToUnicode(l); err == nil && u != l {
			labels[i], changed = u, true
		}
	}
	if !changed {
		return name
	}
	return strings.Join(labels, ".") + " (" + name + ")"
}

// JoinTried words the names a zone was looked for under, most specific
// first: every one when there are few, else the first two, the last and
// how many, so that a name of many labels does not give a message of many
// kilobytes. Each is named as Display names it.
func JoinTried(names []string) string {
	if len(names) <= 4 {
		shown := make([]string, len(names))
		for i, n := range names {
			shown[i] = Display(n)
		}
		return strings.Join(shown, ", ")
	}
	return fmt.Sprintf("%s, %s, …, %s (%d names)", Display(names[0]), Display(names[1]), Display(names[len(names)-1]), len(names))
}
