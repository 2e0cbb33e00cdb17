package ratelimit

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

// Ratelimit-Policy, as FuzzParseRatelimit does Ratelimit: any field parses
// without a panic, every policy kept has a quota and a window within bounds
// (a hostile answer must not stall a client for more than a day), and what
// is kept written back reads the same.
func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{`"default";q=1200;w=300`, `"burst";q=100;w=60, "default";q=1200;w=300;comment="x"`, `default;q=1;w=1`,
		`"d";q=0;w=1`, `"d";q=1;w=-1`, `"d";q=1;w=99999999`, `("a" b);q=1;w=1`, `"d";q=1.5;w=2`, "", ",", `"\"";q=1;w=1`, `"d";q=99999999999;w=1`} {
		fuzzseed.Add(f, seed)
	}
	f.Fuzz(func(t *testing.T, field string) {
		got, err := ParsePolicy(field)
		if err != nil {
			return
		}
		var parts []string
		for _, p := range got {
			if p.Policy == "" || p.Quota <= 0 || p.Window <= 0 || p.Window > 24*time.Hour {
				t.Fatalf("%q gave %+v", field, p)
			}
			parts = append(parts, fmt.Sprintf("%q;q=%d;w=%d", p.Policy, p.Quota, int(p.Window.Seconds())))
		}
		again, err := ParsePolicy(strings.Join(parts, ", "))
		if err != nil || len(got) > 0 && !reflect.DeepEqual(again, got) {
			t.Fatalf("%q: %+v written back reads %+v, %v", field, got, again, err)
		}
	})
}
