package ratelimit

import (
	"time"

	"github.com/dunglas/httpsfv"
)

// The provider's own count of an account's quota, in the IETF RateLimit
// header fields' structured form (RFC 9651 lists) that Cloudflare sends on
// every answer:
//
//	Ratelimit: "default";r=50;t=30              remaining r, seconds t to the reset
//	Ratelimit-Policy: "default";q=1200;w=300     quota q per window w seconds
//
// Several items may come in one field; an item without the integer
// parameters it needs is ignored; a field that is not a valid list is
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
	var out []Remaining
	err := eachItem(field, "r", "t", func(name string, r, t int64) {
		if r >= 0 && t >= 0 {
			out = append(out, Remaining{Policy: name, Remaining: int(min(r, 1<<31-1)), Reset: seconds(t)})
		}
	})
	return out, err
}

// ParsePolicy reads a Ratelimit-Policy field.
func ParsePolicy(field string) ([]Policy, error) {
	var out []Policy
	err := eachItem(field, "q", "w", func(name string, q, w int64) {
		if q > 0 && w > 0 {
			out = append(out, Policy{Policy: name, Quota: int(min(q, 1<<31-1)), Window: seconds(w)})
		}
	})
	return out, err
}

// eachItem calls use for every member of the list in field that is named
// (a string or a token) and has integer parameters a and b.
func eachItem(field, a, b string, use func(name string, a, b int64)) error {
	list, err := httpsfv.UnmarshalList([]string{field})
	if err != nil {
		return err
	}
	for _, m := range list {
		it, ok := m.(httpsfv.Item)
		if !ok {
			continue // an inner list names no policy
		}
		var name string
		switch v := it.Value.(type) {
		case string:
			name = v
		case httpsfv.Token:
			name = string(v)
		}
		av, okA := integer(it.Params, a)
		bv, okB := integer(it.Params, b)
		if name != "" && okA && okB {
			use(name, av, bv)
		}
	}
	return nil
}

func integer(p *httpsfv.Params, key string) (int64, bool) {
	if p == nil {
		return 0, false
	}
	v, ok := p.Get(key)
	n, isInt := v.(int64)
	return n, ok && isInt
}

// seconds caps what a header can ask for at a day: a hostile or broken
// answer must not block a client for years.
func seconds(n int64) time.Duration {
	return time.Duration(min(n, 86400)) * time.Second
}
