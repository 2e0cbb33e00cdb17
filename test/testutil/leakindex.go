package testutil

import "strings"

// LeakIndex is FindLeak for many values over much text: it finds any of the
// values in any of its LeakForms in one pass over the text, where FindLeak
// searches once per form (thousands of canary keys over megabytes of logs).
type LeakIndex struct {
	// width is the length of the shortest form; forms holds every form by
	// its first width bytes.
	width int
	forms map[string][]leakForm
}

type leakForm struct{ value, form string }

// NewLeakIndex indexes the LeakForms of values; empty values have none.
func NewLeakIndex(values []string) *LeakIndex {
	x := &LeakIndex{forms: map[string][]leakForm{}}
	var all []leakForm
	for _, v := range values {
		for _, f := range LeakForms(v) {
			all = append(all, leakForm{v, f})
			if x.width == 0 || len(f) < x.width {
				x.width = len(f)
			}
		}
	}
	for _, f := range all {
		x.forms[f.form[:x.width]] = append(x.forms[f.form[:x.width]], f)
	}
	return x
}

// Find returns the leftmost leak in text: the value and the form found.
func (x *LeakIndex) Find(text string) (value, form string, found bool) {
	if x.width == 0 {
		return "", "", false
	}
	for i := 0; i+x.width <= len(text); i++ {
		for _, f := range x.forms[text[i:i+x.width]] {
			if strings.HasPrefix(text[i:], f.form) {
				return f.value, f.form, true
			}
		}
	}
	return "", "", false
}
