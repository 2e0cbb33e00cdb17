package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The provider's own count of an account's quota, in the IETF RateLimit
// header fields' structured form (RFC 8941 lists) that Cloudflare sends on
// every answer:
//
//	Ratelimit: "default";r=50;t=30              remaining r, seconds t to the reset
//	Ratelimit-Policy: "default";q=1200;w=300     quota q per window w seconds
//
// Several items may come in one field; an item without the parameters it
// needs, or with others, is ignored; a field that is not a valid list is
// ignored altogether (the local window then holds the limit).

// Remaining is one Ratelimit item: what the provider says is left.
type Remaining struct {
	Policy    string
	Remaining int
	Reset     time.Duration
}

// Policy is one Ratelimit-Policy item.
type Policy struct {
	Policy string
	Quota  int
	Window time.Duration
}

// ParseRatelimit reads a Ratelimit field.
func ParseRatelimit(field string) ([]Remaining, error) {
	items, err := parseList(field)
	if err != nil {
		return nil, err
	}
	var out []Remaining
	for _, it := range items {
		r, okR := it.params["r"]
		t, okT := it.params["t"]
		if it.name == "" || !okR || !okT || r < 0 || t < 0 {
			continue
		}
		out = append(out, Remaining{Policy: it.name, Remaining: int(min(r, 1<<31-1)), Reset: seconds(t)})
	}
	return out, nil
}

// ParsePolicy reads a Ratelimit-Policy field.
func ParsePolicy(field string) ([]Policy, error) {
	items, err := parseList(field)
	if err != nil {
		return nil, err
	}
	var out []Policy
	for _, it := range items {
		q, okQ := it.params["q"]
		w, okW := it.params["w"]
		if it.name == "" || !okQ || !okW || q <= 0 || w <= 0 {
			continue
		}
		out = append(out, Policy{Policy: it.name, Quota: int(min(q, 1<<31-1)), Window: seconds(w)})
	}
	return out, nil
}

// seconds caps what a header can ask for at a day: a hostile or broken
// answer must not block a client for years.
func seconds(n int64) time.Duration {
	return time.Duration(min(n, 86400)) * time.Second
}

// item is a list member: its name (a string or token) and its integer
// parameters; members that are not named or not integers are kept nameless.
type item struct {
	name   string
	params map[string]int64
}

var errSyntax = errors.New("not a structured-field list")

// parseList parses an RFC 8941 List, strictly: inner lists and every bare
// item type are accepted syntactically, only strings or tokens with
// integer parameters are kept.
func parseList(s string) ([]item, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []item
	if p.done() {
		return nil, nil
	}
	for {
		it, err := p.member()
		if err != nil {
			return nil, fmt.Errorf("%w at offset %d: %v", errSyntax, p.i, err)
		}
		out = append(out, it)
		p.skipOWS()
		if p.done() {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, fmt.Errorf("%w at offset %d: want a comma", errSyntax, p.i)
		}
		p.i++
		p.skipOWS()
		if p.done() {
			return nil, fmt.Errorf("%w: trailing comma", errSyntax)
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) skipSP() {
	for !p.done() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) member() (item, error) {
	var it item
	if !p.done() && p.s[p.i] == '(' {
		if err := p.innerList(); err != nil {
			return it, err
		}
	} else {
		v, err := p.bareItem()
		if err != nil {
			return it, err
		}
		if name, ok := v.(string); ok {
			it.name = name
		}
	}
	params, err := p.parameters()
	it.params = params
	return it, err
}

func (p *sfParser) innerList() error {
	p.i++ // (
	for {
		p.skipSP()
		if p.done() {
			return errors.New("unterminated inner list")
		}
		if p.s[p.i] == ')' {
			p.i++
			return nil
		}
		if _, err := p.bareItem(); err != nil {
			return err
		}
		if _, err := p.parameters(); err != nil {
			return err
		}
		if !p.done() && p.s[p.i] != ' ' && p.s[p.i] != ')' {
			return errors.New("inner list members must be separated by spaces")
		}
	}
}

// parameters reads ;key[=value] pairs, keeping integer values.
func (p *sfParser) parameters() (map[string]int64, error) {
	params := map[string]int64{}
	for !p.done() && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		var v any = true
		if !p.done() && p.s[p.i] == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		if n, ok := v.(int64); ok {
			params[key] = n
		} else {
			delete(params, key) // a later non-integer value replaces an earlier one
		}
	}
	return params, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.done() || !(isLower(p.s[p.i]) || p.s[p.i] == '*') {
		return "", errors.New("a parameter key starts with a lower-case letter or *")
	}
	for !p.done() && (isLower(p.s[p.i]) || isDigit(p.s[p.i]) || strings.IndexByte("_-.*", p.s[p.i]) >= 0) {
		p.i++
	}
	return p.s[start:p.i], nil
}

// bareItem returns an int64, a float64, a string (for strings and tokens),
// []byte or bool.
func (p *sfParser) bareItem() (any, error) {
	if p.done() {
		return nil, errors.New("an item is missing")
	}
	c := p.s[p.i]
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return nil, errors.New("unterminated byte sequence")
		}
		b := p.s[p.i+1 : p.i+1+end]
		p.i += end + 2
		return []byte(b), nil
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1] == '1', nil
		}
		return nil, errors.New("a boolean is ?0 or ?1")
	case isAlpha(c) || c == '*':
		start := p.i
		for !p.done() && (isAlpha(p.s[p.i]) || isDigit(p.s[p.i]) || strings.IndexByte(":/!#$%&'*+-.^_`|~", p.s[p.i]) >= 0) {
			p.i++
		}
		return p.s[start:p.i], nil
	}
	return nil, fmt.Errorf("unexpected %q", c)
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits, dot := 0, false
	for !p.done() && (isDigit(p.s[p.i]) || (p.s[p.i] == '.' && !dot)) {
		if p.s[p.i] == '.' {
			dot = true
		} else {
			digits++
		}
		p.i++
	}
	text := p.s[start:p.i]
	if digits == 0 || digits > 15 || strings.HasSuffix(text, ".") {
		return nil, fmt.Errorf("bad number %q", text)
	}
	if dot {
		return strconv.ParseFloat(text, 64)
	}
	return strconv.ParseInt(text, 10, 64)
}

func (p *sfParser) str() (any, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.done() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return nil, errors.New("bad escape in a string")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return nil, errors.New("a string holds only printable ASCII")
		default:
			b.WriteByte(c)
		}
	}
	return nil, errors.New("unterminated string")
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool { return isLower(c) || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
