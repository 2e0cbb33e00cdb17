// Package check tells a user why a credential does not work, before any
// Certificate is created: each finding is a line with ✓ or ✗ and, for ✗, the
// fix. No finding ever holds a credential's value.
package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/certbridge/certbridge/internal/dnsname"
)

// Finding is one checked fact.
type Finding struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Reason is the provider package's name for why a ✗ happened
	// (credential_rejected, zone_not_active, …): the same the webhook's
	// error carries for the same cause.
	Reason string `json:"reason,omitempty"`
}

// Report is what one check command found.
type Report struct {
	Target   string    `json:"target"`
	Findings []Finding `json:"findings"`
}

func (r *Report) pass(check, detail string) {
	r.Findings = append(r.Findings, Finding{Check: check, OK: true, Detail: detail})
}

func (r *Report) fail(check, detail, fix string) {
	r.Findings = append(r.Findings, Finding{Check: check, OK: false, Detail: detail, Fix: fix})
}

// failBecause is fail with the provider's reason.
func (r *Report) failBecause(reason, check, detail, fix string) {
	r.Findings = append(r.Findings, Finding{Check: check, OK: false, Detail: detail, Fix: fix, Reason: reason})
}

// Passed reports whether every finding is ✓.
func (r Report) Passed() bool {
	for _, f := range r.Findings {
		if !f.OK {
			return false
		}
	}
	return len(r.Findings) > 0
}

// WriteText writes the human form: one line a finding, a fix under each ✗.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", r.Target)
	for _, f := range r.Findings {
		mark := "✓"
		if !f.OK {
			mark = "✗"
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", mark, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", f.Fix)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Report
		Passed bool `json:"passed"`
	}{r, r.Passed()})
}

// value reads a credential from the environment, noting padding (F3).
func value(r *Report, env func(string) string, name string, sources map[string]string) (string, bool) {
	raw := env(name)
	v := strings.TrimSpace(raw)
	if v == "" {
		return "", false
	}
	if v != raw {
		r.pass(label(name, sources), "has leading or trailing whitespace; the webhook trims it, but a Secret made with `echo … | base64` carries the same newline")
	}
	return v, true
}

// label is how findings name a credential: its variable, or where the
// caller says the value came from (a Secret and key).
func label(name string, sources map[string]string) string {
	if s, ok := sources[name]; ok {
		return s
	}
	return name
}

// distinctNames drops a leading "*." and repeats, and writes each name as
// DNS carries it (lower case, punycode), as cert-manager asks the webhook
// for it: example.com, *.example.com and Example.COM need one zone, and
// 例子.中国 is xn--fsqu00a.xn--fiqs8s.
func distinctNames(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		c := dnsname.ASCII(strings.TrimPrefix(strings.TrimSpace(n), "*."))
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
