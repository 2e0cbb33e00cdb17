package cache

import (
	"fmt"
	"testing"
)

func TestMapStaysWithinItsBound(t *testing.T) {
	var m Map[int]
	m.Max = 3
	for i := range 10 {
		m.Put(fmt.Sprint(i), i)
		if m.Len() > 3 {
			t.Fatalf("after %d puts the map holds %d entries, bound 3", i+1, m.Len())
		}
	}
	if _, ok := m.Get("9"); !ok {
		t.Error("the entry just put was dropped")
	}
	m.Put("9", 90) // replacing an entry drops nothing
	if m.Len() != 3 {
		t.Errorf("replacing an entry changed the size to %d", m.Len())
	}
}

func TestGetOrCreateCreatesOnce(t *testing.T) {
	var m Map[*int]
	calls := 0
	create := func() *int { calls++; v := calls; return &v }
	a, b := m.GetOrCreate("k", create), m.GetOrCreate("k", create)
	if a != b || calls != 1 {
		t.Errorf("two GetOrCreate of one key made %d values (same: %v)", calls, a == b)
	}
	if v, ok := m.Take("k"); !ok || v != a {
		t.Error("Take did not return the entry")
	}
	if _, ok := m.Get("k"); ok {
		t.Error("Take left the entry")
	}
}
