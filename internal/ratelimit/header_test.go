package ratelimit

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

func TestParseRatelimit(t *testing.T) {
	cases := []struct {
		name  string
		field string
		want  []Remaining
		err   bool
	}{
		{"Cloudflare's example", `"default";r=50;t=30`, []Remaining{{"default", 50, 30 * time.Second}}, false},
		{"several items, spaces and tabs", "\"burst\";r=10;t=5 ,\t\"default\";r=1100;t=290", []Remaining{{"burst", 10, 5 * time.Second}, {"default", 1100, 290 * time.Second}}, false},
		{"a token name", `default;r=7;t=1`, []Remaining{{"default", 7, time.Second}}, false},
		{"parameters in any order, unknown ones kept out", `"default";t=9;x=1;r=3`, []Remaining{{"default", 3, 9 * time.Second}}, false},
		{"an item without r is ignored", `"default";t=9, "other";r=1;t=2`, []Remaining{{"other", 1, 2 * time.Second}}, false},
		{"a non-integer r is ignored", `"default";r=1.5;t=2`, nil, false},
		{"an inner list is no policy", `("a" "b");r=1;t=2, "default";r=4;t=4`, []Remaining{{"default", 4, 4 * time.Second}}, false},
		{"a negative count is ignored", `"default";r=-1;t=2`, nil, false},
		{"a reset beyond a day is capped", `"default";r=1;t=99999999`, []Remaining{{"default", 1, 24 * time.Hour}}, false},
		{"empty", ``, nil, false},
		{"superseded X-Ratelimit style value", `1200`, nil, false},
		{"trailing comma", `"default";r=1;t=2,`, nil, true},
		{"unterminated string", `"default;r=1;t=2`, nil, true},
		{"garbage", `r=1; t=2`, nil, true},
		{"upper-case key", `"default";R=1;t=2`, nil, true},
		{"sixteen-digit integer", `"default";r=1234567890123456;t=2`, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRatelimit(tc.field)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	got, err := ParsePolicy(`"burst";q=100;w=60, "default";q=1200;w=300;comment="x"`)
	want := []Policy{{"burst", 100, time.Minute}, {"default", 1200, 5 * time.Minute}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%+v, %v; want %+v", got, err, want)
	}
}

// The parser takes any input without panicking, and what it keeps it can
// write back and read again unchanged.
func FuzzParseRatelimit(f *testing.F) {
	for _, seed := range []string{`"default";r=50;t=30`, "\"a\";r=1;t=2, b;r=3;t=4", `("x" y);r=1`, `"d";r=1.5;t=?1`, `:aGk=:;r=1`, "", ",", `"\"";r=1;t=1`} {
		fuzzseed.Add(f, seed)
	}
	f.Fuzz(func(t *testing.T, field string) {
		got, err := ParseRatelimit(field)
		if err != nil {
			return
		}
		var parts []string
		for _, r := range got {
			if r.Remaining < 0 || r.Reset < 0 || r.Reset > 24*time.Hour {
				t.Fatalf("%q gave %+v", field, r)
			}
			parts = append(parts, fmt.Sprintf("%q;r=%d;t=%d", r.Policy, r.Remaining, int(r.Reset.Seconds())))
		}
		again, err := ParseRatelimit(strings.Join(parts, ", "))
		if err != nil || !reflect.DeepEqual(again, got) && len(got) > 0 {
			t.Fatalf("%q: %+v written back reads %+v, %v", field, got, again, err)
		}
	})
}

func TestParseLimit(t *testing.T) {
	cases := []struct {
		name, in string
		want     Limit
		err      bool
	}{
		{"Cloudflare's documented quota", "1200/5m", Limit{1200, 5 * time.Minute}, false},
		{"written back", Limit{1200, 5 * time.Minute}.String(), Limit{1200, 5 * time.Minute}, false},
		{"spaces", " 100 / 30s ", Limit{100, 30 * time.Second}, false},
		{"no window", "1200", Limit{}, true},
		{"no requests", "/5m", Limit{}, true},
		{"zero requests", "0/5m", Limit{}, true},
		{"a window under a second", "10/500ms", Limit{}, true},
		{"not a duration", "10/five minutes", Limit{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLimit(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseLimit(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}
